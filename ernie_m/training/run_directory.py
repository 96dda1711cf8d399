"""A run owns its output directory: one run at a time (a lock), no fresh run over an earlier run's checkpoints
unless asked, leftovers of an interrupted write or deletion cleaned, and logs that restart where the run resumes."""
from __future__ import annotations

import contextlib
import fcntl
import glob
import json
import os
import shutil
from typing import Optional, Sequence

from ..atomic import atomic_file

LOCK_FILE = ".run.lock"
# What an interrupted run can leave: a checkpoint being written, a checkpoint being deleted.
LEFTOVERS = (".tmp-checkpoint-*", ".deleting-checkpoint-*")


class RunDirectoryError(Exception):
    """The directory cannot be used as asked (one line that says what to do). `status`: 2 when the command chose
    a directory it cannot use (a file, one in use, an earlier run); 1 when the disk refuses (read-only, full)."""

    def __init__(self, message: str, status: int = 2):
        super().__init__(message)
        self.status = status


class RunDirectory:
    """`claim()` locks `path` for this process (rank 0 of a job), checks what is in it against `resume` /
    `overwrite`, and cleans up; `release()` unlocks. Other ranks only use the directory.

    `outputs` are the glob patterns of what else a finished run leaves (fine-tuning's `best/`, `results.json`):
    like checkpoints, they mark an earlier run and go with `overwrite`. `overwrite_flag` is the option's name in
    the messages."""

    def __init__(self, path: str, outputs: Sequence[str] = (), overwrite_flag: str = "--overwrite"):
        self.path, self.outputs, self.overwrite_flag = path, tuple(outputs), overwrite_flag
        self._handle = None

    def claim(self, resume: bool, overwrite: bool, checkpoints) -> None:
        if os.path.lexists(self.path) and not os.path.isdir(self.path):
            raise RunDirectoryError(f"{self.path} exists and is not a directory: choose another output directory")
        try:
            os.makedirs(self.path, exist_ok=True)
        except OSError as error:
            raise RunDirectoryError(f"cannot create {self.path}: {error.strerror or error}", status=1) from None
        self._lock()
        try:
            for pattern in LEFTOVERS:
                for leftover in glob.glob(os.path.join(self.path, pattern)):
                    shutil.rmtree(leftover, ignore_errors=True)
            existing = [os.path.basename(path) for _, path in checkpoints()]
            existing += sorted(os.path.basename(path) for pattern in self.outputs
                               for path in glob.glob(os.path.join(self.path, pattern)))
            if existing and not resume:
                if not overwrite:
                    raise RunDirectoryError(
                        f"{self.path} holds an earlier run ({', '.join(existing[-3:])}): --resume to continue it, "
                        f"{self.overwrite_flag} to delete it and start over, or choose another --output_dir")
                for name in existing + ["visualdl"]:
                    _remove(os.path.join(self.path, name))
        except BaseException:
            self.release()
            raise

    def __enter__(self) -> "RunDirectory":
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()

    def _lock(self) -> None:
        try:
            handle = open(os.path.join(self.path, LOCK_FILE), "a+")
        except OSError as error:  # a read-only directory, or no inode left
            raise RunDirectoryError(f"cannot write in {self.path}: {error.strerror or error}", status=1) from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise RunDirectoryError(f"{self.path} is in use by another run (pid {holder}); wait for it to end or "
                                    f"choose another --output_dir") from None
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(str(os.getpid()))
            handle.flush()
        except OSError as error:  # a full disk
            with contextlib.suppress(OSError):  # closing flushes the same bytes again
                handle.close()
            raise RunDirectoryError(f"cannot write in {self.path}: {error.strerror or error}", status=1) from None
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)


def truncate_log(path: str, step: int) -> None:
    """Keep the records of steps up to `step` (a resumed run logs the steps after its checkpoint again; 0 for a
    fresh run); records without a step, such as a finished run's closing digest, go too."""
    if not os.path.exists(path):
        return
    kept = []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line cut by a kill
            at: Optional[int] = record.get("step", record.get("eval_step")) if isinstance(record, dict) else None
            if isinstance(at, int) and at <= step:
                kept.append(line if line.endswith("\n") else line + "\n")
    with atomic_file(path) as temporary, open(temporary, "w", encoding="utf-8") as handle:
        handle.writelines(kept)
