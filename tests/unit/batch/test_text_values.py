"""A text field's values are read by one rule whatever else their chunk holds: a chunk of numbers
alone (int64, or float64 beside a null) reads as the same text as those numbers beside a string
(the run stopped with exit 3 in the first case and scored the second)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from batch.text_values import text_value, texts_as_read
from training.errors import DataError

# one JSON record per row, as a JSON-lines catalog gives them to pandas
TITLES: list[object] = [12345, 2.5, 7.0, True, False, None, "a text", {"k": "v"}, ["a", "b"]]
READ = ["12345", "2.5", "7", "true", "false", None, "a text", {"k": "v"}, ["a", "b"]]


def read(values: list[object], first_row: int = 0) -> list[object]:
    frame = pd.DataFrame.from_records([{"title": value} for value in values])
    return texts_as_read(frame, ("title",), "c.jsonl", first_row)["title"].tolist()


def test_numbers_and_booleans_read_as_their_text_and_missing_stays_missing() -> None:
    assert read(TITLES) == READ
    assert [text_value(v) for v in (np.int64(3), np.float64(0.5), np.bool_(True))] == [
        "3",
        "0.5",
        "true",
    ]
    assert text_value(math.nan) is None and text_value(pd.NA) is None


@pytest.mark.parametrize("chunk_size", [1, 2, 3])
def test_every_chunk_size_reads_the_same_text(chunk_size: int) -> None:
    """pandas types a chunk of numbers int64, float64 with a null, bool: the text is the same."""
    chunks = [TITLES[at : at + chunk_size] for at in range(0, len(TITLES), chunk_size)]
    assert [value for chunk in chunks for value in read(chunk)] == READ


def test_the_column_is_text_the_model_s_string_field_accepts() -> None:
    frame = pd.DataFrame({"title": [1, 2], "brand": [3, 4]})
    read_frame = texts_as_read(frame, ("title", "absent"), "c.jsonl", 0)
    assert read_frame["title"].dtype == object and read_frame["brand"].tolist() == [3, 4]
    assert frame["title"].tolist() == [1, 2]  # the chunk itself is left as it was


@pytest.mark.parametrize(
    ("values", "found"),
    [
        (pd.to_datetime(["2024-01-02"] * 7), "dates or times (Timestamp('2024-01-02 00:00:00'))"),
        ([b"\x00abc"] * 7, "bytes (b'\\x00abc')"),
    ],
)
def test_a_value_no_rule_reads_is_named_with_file_column_rows_and_kind(
    values: object, found: str
) -> None:
    """It was MLflow's words without the file: `Can not safely convert datetime64 to <U0`."""
    frame = pd.DataFrame({"Product Title": values})
    with pytest.raises(DataError) as error:
        texts_as_read(frame, ("Product Title",), Path("shop/feed.parquet"), 5000)
    assert str(error.value) == (
        f"shop/feed.parquet: column 'Product Title' holds {found} in rows 5000, 5001, 5002, "
        "5003, 5004 and 2 more (counted from 0); the model reads text there: write the column "
        "as text"
    )
