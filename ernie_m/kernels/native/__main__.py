"""`python -m ernie_m.kernels.native`: build the C++ CPU operators (the install command runs this)."""
import sys

from . import build, unavailable_reason

if __name__ == "__main__":
    try:
        path = build(verbose="--verbose" in sys.argv)
    except KeyboardInterrupt:
        raise SystemExit("ernie_m: the native CPU kernels' build was interrupted; nothing half-built will be used")
    except Exception as error:  # no compiler, no Paddle headers: the model still runs on Paddle's ops
        detail = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        raise SystemExit(f"ernie_m: the native CPU kernels did not build ({detail}); Paddle's ops will be used. "
                         f"Run with --verbose for the compiler's output")
    reason = unavailable_reason()
    if reason is not None:
        raise SystemExit(f"ernie_m: built {path} but cannot use it: {reason}")
    print(f"ernie_m: native CPU kernels built: {path}")
