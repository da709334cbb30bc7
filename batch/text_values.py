"""A text field's values as the model reads them, by one rule whatever the chunk.

pandas types a chunk's column from the values it happens to hold: numbers alone make an int64 or
float64 column (`12345.0` once a null sits beside them), booleans a bool column, and MLflow
refuses those where the model's signature says `string`, while the same values beside a string
in another chunk pass as they are. So every text field is read here value by value, before the
model sees it: text stays text; a number or a boolean is read as its text (`12345`, `2.5`,
`true`; a whole number without `.0`, as ids are written, since pandas cannot tell `2` from `2.0`
in a float column), as a CSV catalog gives it; a missing value stays missing; lists and objects
are left to the model, which reads them as their words (`features.as_text`). Anything else
(bytes, dates, times) has no text the model was trained on: the run stops naming the file, the
column, the rows and what was found there. The Spark engine applies the same rule
(`batch.spark_values`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training.catalog_keys import EXACT_FLOAT_INTEGERS
from training.errors import DataError

SHOWN_ROWS = 5  # row numbers named in the message
SHOWN_CHARS = 40  # of the first value found
TEXT_EXPECTED = "the model reads text there: write the column as text"


class UnreadableValueError(Exception):
    """A value no rule reads as text."""


def number_text(value: float) -> str:
    """A float as its text: whole numbers without `.0` (as integers), others as Python
    writes them (`2.5`, `1e-05`), infinities `inf`."""
    if abs(value) < EXACT_FLOAT_INTEGERS and value.is_integer():
        return str(int(value))
    return repr(value)


def text_value(value: Any) -> Any:
    """One value of a text field as the model reads it: text, None, or a list or an object
    (which the model flattens into words itself); `UnreadableValueError` for anything else."""
    if isinstance(value, str) or value is None:
        return value
    if isinstance(value, list | tuple | np.ndarray | Mapping):
        return value
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return None if math.isnan(value) else number_text(float(value))
    if isinstance(value, numbers.Number):  # a Parquet decimal, its scale the column's
        return None if value != value else str(value)
    if pd.isna(value):  # pandas' NA and NaT
        return None
    raise UnreadableValueError(value)


def what_it_is(value: Any) -> str:
    """A value's kind in a user's words, for the message."""
    if isinstance(value, bytes | bytearray | memoryview):
        return "bytes"
    if isinstance(value, pd.Timestamp | np.datetime64) or hasattr(value, "isoformat"):
        return "dates or times"
    if isinstance(value, pd.Timedelta | np.timedelta64):
        return "durations"
    return f"values of type {type(value).__name__}"


def texts_as_read(
    frame: pd.DataFrame, columns: tuple[str, ...], source: Path | str, first_row: int
) -> pd.DataFrame:
    """`frame` with each of `columns` that it has read by `text_value` (an object column);
    a `DataError` naming the file, the column, the rows (catalog positions from `first_row`)
    and what was found, for values no rule reads."""
    read = frame.copy(deep=False)  # the chunk's own columns are left as they are
    for column in (c for c in columns if c in frame.columns):
        read[column] = read_column(frame[column], source, first_row)
    return read


def read_column(values: pd.Series, source: Path | str, first_row: int) -> pd.Series:
    """One column read by `text_value`, as objects; `DataError` for values no rule reads."""
    read, bad = [], []
    for at, value in enumerate(values.tolist()):
        try:
            read.append(text_value(value))
        except UnreadableValueError:
            bad.append((at, value))
    if bad:
        raise DataError(unreadable_message(source, str(values.name), bad, first_row))
    return pd.Series(read, index=values.index, dtype=object, name=values.name)


def unreadable_message(
    source: Path | str, column: str, bad: list[tuple[int, Any]], first_row: int
) -> str:
    """What was found where text was expected, and where."""
    rows = [str(first_row + at) for at, _ in bad[:SHOWN_ROWS]]
    more = f" and {len(bad) - SHOWN_ROWS} more" if len(bad) > SHOWN_ROWS else ""
    shown = repr(bad[0][1])
    shown = shown if len(shown) <= SHOWN_CHARS else shown[: SHOWN_CHARS - 3] + "..."
    return (
        f"{source}: column '{column}' holds {what_it_is(bad[0][1])} ({shown}) in row"
        f"{'s' if len(bad) > 1 else ''} {', '.join(rows)}{more} (counted from 0); "
        f"{TEXT_EXPECTED}"
    )
