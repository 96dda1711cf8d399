"""One line out of an exception, for the one-line refusals of the command line and the training entry points."""
from __future__ import annotations

import os
import tempfile
import traceback
from typing import Sequence


def first_line(error: BaseException) -> str:
    """The message's first line (the class name for an empty message)."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def reason(error: BaseException, keywords: Sequence[str] = ("shape", "missing")) -> str:
    """The line that says what is wrong: PaddleNLP puts a header line first and the detail (a shape, a missing
    key) below it. The first line naming one of `keywords`, else the first line."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()] or [type(error).__name__]
    return next((line for line in lines if any(word in line.lower() for word in keywords)), lines[0])


def unforeseen_error_line(program: str, error: BaseException) -> str:
    """The one line an entry point prints for an error it did not foresee (a bug): the traceback goes to a file,
    so the console keeps one line and the report keeps everything."""
    try:
        descriptor, path = tempfile.mkstemp(prefix=f"{program.replace(' ', '-')}-error-", suffix=".txt")
        with os.fdopen(descriptor, "w") as handle:
            traceback.print_exception(type(error), error, error.__traceback__, file=handle)
        kept = f"the traceback is in {path}"
    except OSError as unsaved:  # a full or read-only temporary directory: still one line
        kept = f"the traceback could not be saved: {first_line(unsaved)}"
    return f"{program}: unforeseen {type(error).__name__}: {first_line(error)} (a bug; {kept}, please report it)"
