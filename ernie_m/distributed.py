"""How an entry point's process ends when it is one rank of a `paddle.distributed.launch` job.

Why ranks do not end the usual way (traced on Paddle 3.3.1, CPU, gloo): rank 0 hosts the job's TCP store, whose
libuv server runs in a thread of its own that keeps serving while the process exits. When another rank closes its
connection after rank 0 has begun running C++ static destructors, that thread's `VLOG` in
`LibUVClient::readCallback` calls glog's `InitVLOG3__`, and that call aborts without a message (glog's lock wrapper
calls `abort()` when a pthread call fails, which fits a lock that exit has already destroyed). The job has finished
and written everything, yet rank 0 dies of SIGABRT (exit -6) and the launcher reports the job failed. Measured: 6 of
120 two-rank fine-tunes (tests' tiny model, 2 busy cores) and one CI run; a backtrace handler installed as the last
exit step showed that call aborting both times it caught one.

So a rank runs its main, then does what a normal exit does that matters to us (wait for non-daemon threads, run the
`atexit` handlers: logging flushes there, multiprocessing stops the DataLoader's worker processes), flushes standard
output and error, and ends with `os._exit`, skipping the interpreter's teardown and the C++ static destructors, so
there is no exit-time window in which a peer's disconnect can reach half-destroyed statics. A single process (no
launcher, or one rank) exits the usual way.

A rank also ends when its launcher dies. The launcher starts the ranks outside its process group, so a SIGKILL of the
launcher (an OOM kill, a scheduler's preemption) would leave them training on, unsupervised, while a restarted job
writes into the same directory. Each rank asks the kernel for SIGKILL at its parent's death
(`PR_SET_PDEATHSIG`) and, where that is not available, a watchdog thread notices the parent change within a second.
"""
from __future__ import annotations

import atexit
import ctypes
import os
import signal
import sys
import threading
import time
import traceback
from typing import Callable, NoReturn

_PR_SET_PDEATHSIG = 1  # prctl(2)
_WATCHDOG_PERIOD_S = 1.0
_LAUNCHER_GONE = 143  # the status of death by SIGTERM

# Python's own status for a KeyboardInterrupt that nothing caught is death by SIGINT, which shells show as 130.
_INTERRUPTED = 130


def _world_size_from_launcher() -> int:
    """The number of ranks `paddle.distributed.launch` started (1 without it), read where Paddle reads it."""
    return int(os.environ.get("PADDLE_TRAINERS_NUM", "1") or 1)


def _status_of(exit_request: SystemExit) -> int:
    """The status Python gives `sys.exit(code)`: None -> 0, an int as is, anything else printed and 1."""
    code = exit_request.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def end_rank(status: int) -> NoReturn:
    """End this rank's process with `status` after the parts of a normal exit that keep output and files whole."""
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()  # noqa: SLF001  (no public way to run them; what sys.exit would run, in that order)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed or broken pipe: nothing more can be written to it anyway
            pass
    os._exit(status)


_watched_parent = None  # the launcher's pid, once end_with_launcher has run in this process


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (`PR_SET_PDEATHSIG`); elsewhere, or if refused,
    nothing. SIGKILL, not SIGTERM: a process blocked in native code (a rendezvous, a library load, a DataLoader
    queue) can neither run a handler nor let a watchdog in; what it leaves (the lock, a .tmp checkpoint) the next
    run clears."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def end_with_launcher() -> None:
    """Make this rank end when its parent (the launcher) dies: the kernel's parent-death signal where Linux offers
    it, and a watchdog thread in any case (the call may be refused). Does nothing outside a launched job, and
    once per process.

    Entry files call it first, before importing Paddle: the parent is read here, and a launcher that died before
    this read leaves the rank with init (pid 1) as its parent, which is the one case still told apart.
    """
    global _watched_parent
    if _watched_parent is not None or _world_size_from_launcher() <= 1:
        return
    parent = _watched_parent = os.getppid()
    die_with_parent()
    if parent == 1:
        _launcher_gone(parent)

    def watch() -> None:
        while True:
            time.sleep(_WATCHDOG_PERIOD_S)
            if os.getppid() != parent:
                _launcher_gone(parent)

    threading.Thread(target=watch, name="launcher-watchdog", daemon=True).start()
    if os.getppid() != parent:  # died between the two reads
        _launcher_gone(parent)


def _launcher_gone(parent: int) -> NoReturn:
    sys.stderr.write(f"rank {os.environ.get('PADDLE_TRAINER_ID', '?')}: the launcher (pid {parent}) is gone; "
                     f"ending this rank\n")
    sys.stderr.flush()
    os._exit(_LAUNCHER_GONE)


def run_entry(main: Callable[..., object], *args) -> NoReturn:
    """Run an entry point's `main(*args)` and end the process: the usual way alone, by `end_rank` as a rank of a job.

    The status is what Python would give: 0 when main returns, `SystemExit`'s code, 1 (with the traceback on stderr)
    for an exception, 130 for Ctrl-C.
    """
    if _world_size_from_launcher() <= 1:
        main(*args)
        sys.exit(0)
    end_with_launcher()
    try:
        main(*args)
        status = 0
    except SystemExit as exit_request:
        status = _status_of(exit_request)
    except KeyboardInterrupt:
        traceback.print_exc()
        status = _INTERRUPTED
    except BaseException:  # noqa: BLE001  (any failure must still end the rank with a status, as Python would)
        traceback.print_exc()
        status = 1
    end_rank(status)
