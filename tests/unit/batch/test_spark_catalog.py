"""The rows Spark's CSV reader flags, judged as pandas (the local engine) judges them."""

from __future__ import annotations

import pytest

from batch.spark_catalog import csv_row_problem


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        ("x1,too,many,cells,here,1,libs,EXTRA,MORE", "a row has 9 cells where the header has 6"),
        ('zz,"open quote never closed,desc,v,1,libs', "a quoted value is never closed, in the row"),
        ("short,row", None),  # pandas reads the missing cells as missing values
        ('a,"two\nlines",c', None),
        ('a, "quoted after a space",c,d,e,f', None),
        ('a,"stray" quote,c', None),  # pandas keeps the text after the closing quote
        ('a,"stray" quote,c,d,e,f,g', "a row has 7 cells where the header has 6"),
    ],
)
def test_rows_are_refused_as_pandas_refuses_them(record: str, problem: str | None) -> None:
    assert csv_row_problem(record, ",", 6) == problem


def test_the_separator_is_the_files() -> None:
    assert csv_row_problem("a;b;c", ";", 2) == "a row has 3 cells where the header has 2"
    assert csv_row_problem("a,b,c", ";", 2) is None
