"""`python -m ernie_m.kernels.native`: build the C++ CPU operators (the install command runs this)."""
import sys

from . import build, unavailable_reason

if __name__ == "__main__":
    path = build(verbose="--verbose" in sys.argv)
    reason = unavailable_reason()
    if reason is not None:
        raise SystemExit(f"ernie_m: built {path} but cannot use it: {reason}")
    print(f"ernie_m: native CPU kernels built: {path}")
