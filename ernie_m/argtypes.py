"""argparse types shared by the `ernie-m` command and the training entry points: a bad number is refused while the
arguments are parsed (one line, exit status 2), before any work starts."""
from __future__ import annotations

import argparse
import math


def integer_from(minimum: int):
    """An integer of at least `minimum`."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def number_in(low: float, high: float, low_open: bool = False):
    """A finite number in [low, high] ((low, high] with `low_open`)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value) or value > high or value < low or (low_open and value == low):
            raise argparse.ArgumentTypeError(f"must be in {'(' if low_open else '['}{low:g}, {high:g}], got {text}")
        return value

    return parse


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser whose usage mistakes are one line (`PROG: error: ... (--help lists the options)`, exit 2)
    instead of the usage block and the line: the entry points' errors are all one line."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (--help lists the options)\n")
