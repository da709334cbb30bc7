"""The Spark engine reads numeric text as the local engine does (Python's `float`), not as
Spark's own cast reads it (`1d`, `0x1p3` are numbers to Java), so that both engines give the
same numbers to the model and count the same values as not numbers. No Spark needed."""

from __future__ import annotations

import re

import pytest

from batch.spark_numbers import DECIMAL_TEXT

NUMBERS = ["7", "+5", "-0.5", "5.", ".5", "1e3", "-.5E-3", "1_000", "1_000.000_1e1_0"]
NOT_NUMBERS = ["n/a", "9,99", "1d", "1f", "0x10", "0x1p3", "1__0", "_1", "1e", "e5", ".", "1.2.3"]


def python_reads(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("text", NUMBERS + NOT_NUMBERS)
def test_spark_takes_as_decimal_text_what_python_reads_as_a_number(text: str) -> None:
    assert bool(re.fullmatch(DECIMAL_TEXT, text)) == python_reads(text) == (text in NUMBERS)
