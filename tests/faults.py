"""Run pretrain/run_pretrain.py with one injected fault (for tests/test_reliability.py; not part of the library).

    python tests/faults.py FAULT -- <run_pretrain arguments>
    python -m paddle.distributed.launch --nproc_per_node 2 tests/faults.py FAULT -- <arguments>

FAULT:
    kill-during-save:N    SIGKILL this process in the middle of writing its N-th checkpoint (optimizer written,
                          model not yet)
    enospc-at-save:N      the N-th checkpoint write fails with "No space left on device"
    nan-from-call:K       every loss from the K-th training loss on is NaN
    nan-at-calls:K,L,...  the K-th, L-th, ... training losses are NaN
    exit-rank:R:K         rank R exits with status 17 at its K-th training loss (the others carry on)
"""
import errno
import os
import runpy
import signal
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from ernie_m.cpu import configure_process  # noqa: E402

configure_process()  # first, as the real entry does

from ernie_m.distributed import run_entry  # noqa: E402
from ernie_m.pretraining import trainer  # noqa: E402
from ernie_m.training import checkpoints  # noqa: E402


def _counting(original, on_call):
    calls = {"n": 0}

    def wrapper(*args, **kwargs):
        calls["n"] += 1
        return on_call(calls["n"], original, *args, **kwargs)

    return wrapper


def install(fault: str) -> None:
    kind, _, rest = fault.partition(":")
    if kind == "kill-during-save":
        target = int(rest)

        def on_write(n, original, *args, **kwargs):
            original(*args, **kwargs)
            if n == target:
                os.kill(os.getpid(), signal.SIGKILL)

        checkpoints.CheckpointManager._write_optimizer = staticmethod(
            _counting(checkpoints.CheckpointManager._write_optimizer, on_write))
    elif kind == "enospc-at-save":
        target = int(rest)

        def on_write(n, original, *args, **kwargs):
            if n == target:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return original(*args, **kwargs)

        checkpoints.CheckpointManager._write_optimizer = staticmethod(
            _counting(checkpoints.CheckpointManager._write_optimizer, on_write))
    elif kind in ("nan-from-call", "nan-at-calls"):
        calls = {int(x) for x in rest.split(",")}

        def on_loss(n, original, *args, **kwargs):
            loss, metrics = original(*args, **kwargs)
            if (n < min(calls)) if kind == "nan-from-call" else (n not in calls):
                return loss, metrics
            return loss * float("nan"), {k: float("nan") if k.endswith("_loss") else v for k, v in metrics.items()}

        trainer.masked_lm_loss = _counting(trainer.masked_lm_loss, on_loss)
    elif kind == "nan-grad-from-call":
        first = int(rest)

        def on_loss(n, original, *args, **kwargs):
            loss, metrics = original(*args, **kwargs)
            if n < first:
                return loss, metrics
            # sqrt at 0: the value adds 0 (the loss stays finite), the gradient is 0 * inf = NaN
            parameter = args[0].parameters()[0]
            return loss + (parameter * 0.0).sqrt().sum(), metrics

        trainer.masked_lm_loss = _counting(trainer.masked_lm_loss, on_loss)
    elif kind == "kill-launcher":
        # Rank 0 SIGKILLs the launcher (its parent) at loss call N; every rank first records its pid in
        # $FAULTS_PID_DIR so that the test can watch the ranks outlive, or not, their launcher.
        target = int(rest)
        rank = int(os.environ.get("PADDLE_TRAINER_ID", "0"))
        with open(os.path.join(os.environ["FAULTS_PID_DIR"], f"rank{rank}.pid"), "w") as handle:
            handle.write(str(os.getpid()))

        def on_loss(n, original, *args, **kwargs):
            if n == target and rank == 0:
                os.kill(os.getppid(), signal.SIGKILL)
            return original(*args, **kwargs)

        trainer.masked_lm_loss = _counting(trainer.masked_lm_loss, on_loss)
    elif kind == "exit-rank":
        rank, target = (int(x) for x in rest.split(":"))

        def on_loss(n, original, *args, **kwargs):
            if n == target and int(os.environ.get("PADDLE_TRAINER_ID", "0")) == rank:
                sys.stderr.write(f"faults.py: rank {rank} exits at loss {n}\n")
                sys.stderr.flush()
                os._exit(17)
            return original(*args, **kwargs)

        trainer.masked_lm_loss = _counting(trainer.masked_lm_loss, on_loss)
    else:
        raise SystemExit(f"faults.py: unknown fault {fault!r}")


if __name__ == "__main__":
    separator = sys.argv.index("--")
    install(sys.argv[1])
    entry = runpy.run_path(os.path.join(ROOT, "pretrain", "run_pretrain.py"))  # the entry file itself, not a copy
    run_entry(entry["main"], sys.argv[separator + 1:])
