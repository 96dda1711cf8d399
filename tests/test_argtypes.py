"""ernie_m.argtypes: numbers refused while arguments are parsed."""
import argparse

import pytest

from ernie_m.argtypes import integer_from, number_in


def test_integers_and_numbers_in_range():
    assert integer_from(1)("3") == 3
    for bad, message in (("0", "must be at least 1, got 0"), ("x", "expected an integer, got 'x'")):
        with pytest.raises(argparse.ArgumentTypeError, match=message):
            integer_from(1)(bad)
    assert number_in(0, 1, low_open=True)("0.5") == 0.5
    for bad in ("0", "nan", "inf", "1.5"):
        with pytest.raises(argparse.ArgumentTypeError, match=r"must be in \(0, 1\]"):
            number_in(0, 1, low_open=True)(bad)
