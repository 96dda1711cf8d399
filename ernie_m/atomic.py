"""Writes that appear under their final name only once complete: a crash or a full disk mid-write leaves the
previous file or directory as it was. The one implementation every writer in the project uses."""
from __future__ import annotations

import contextlib
import os
import shutil
from typing import Iterator

from safetensors import SafetensorError

# What a failed write raises: OSError from Python and Paddle's file IO, SafetensorError from safetensors (a full
# disk there is "os error 28", not an OSError), RuntimeError from Paddle's C++ serialisation.
WRITE_ERRORS = (OSError, SafetensorError, RuntimeError)


@contextlib.contextmanager
def atomic_file(path: str) -> Iterator[str]:
    """Yields a temporary path beside `path`; on success it is renamed onto `path`, on failure removed."""
    temporary = f"{path}.tmp-{os.getpid()}"
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def replace_directory(temporary: str, final: str) -> None:
    """Move a finished directory into place, replacing an older one of the same name."""
    if os.path.exists(final):
        shutil.rmtree(final)
    os.replace(temporary, final)


@contextlib.contextmanager
def atomic_directory(final: str, temporary: str = None) -> Iterator[str]:
    """Yields an empty temporary directory (default: `<final>.tmp`); on success it replaces `final`, on failure it is
    removed. Callers that write from several processes create and rename it themselves (`replace_directory`)."""
    temporary = temporary or final.rstrip("/") + ".tmp"
    shutil.rmtree(temporary, ignore_errors=True)
    os.makedirs(temporary)
    try:
        yield temporary
        replace_directory(temporary, final)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


@contextlib.contextmanager
def atomic_outputs(final: str) -> Iterator[str]:
    """Yields an empty temporary directory beside `final`; on success its entries move into `final` (made if
    missing), one rename each, so every output there is either the previous one or the complete new one, and what
    else `final` holds is left alone; on failure it is removed and `final` is untouched."""
    final = final.rstrip("/") or "/"
    temporary = f"{final}.tmp-{os.getpid()}"
    shutil.rmtree(temporary, ignore_errors=True)
    os.makedirs(temporary)
    try:
        yield temporary
        if not os.path.exists(final):
            os.replace(temporary, final)
            return
        for name in os.listdir(temporary):
            source, target = os.path.join(temporary, name), os.path.join(final, name)
            if os.path.isdir(source):
                replace_directory(source, target)
            else:
                os.replace(source, target)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
