"""One line out of an exception, for the one-line refusals of the command line and the training entry points."""
from __future__ import annotations

from typing import Sequence


def first_line(error: BaseException) -> str:
    """The message's first line (the class name for an empty message)."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def reason(error: BaseException, keywords: Sequence[str] = ("shape", "missing")) -> str:
    """The line that says what is wrong: PaddleNLP puts a header line first and the detail (a shape, a missing
    key) below it. The first line naming one of `keywords`, else the first line."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()] or [type(error).__name__]
    return next((line for line in lines if any(word in line.lower() for word in keywords)), lines[0])
