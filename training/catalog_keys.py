"""A catalog's label and id columns as the catalog writes them, whatever pandas made of them.

pandas reads a column of integers holding a missing value (a JSON null, a Parquet null) as
floats, so the label 100 would be the class "100.0" in one catalog and "100" in the next; ids are
text in the model's contract, as serving reads a JSON number id.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from product_model.contract import is_missing
from product_model.features import as_text
from training.config import TrainConfig


def keys_as_written(frame: pd.DataFrame, config: TrainConfig) -> pd.DataFrame:
    """`frame` with its label and id columns as the catalog writes them: integers stay integers
    (`integers_as_written`), so the label 100 is the class "100" whether or not another row lacks
    a label; ids become text, as the model's contract types them and serving reads a number id
    (`7` and `"7"` are one product), a missing id None."""
    keyed = {config.label_column: integers_as_written(frame[config.label_column])}
    if config.id_column and config.id_column in frame.columns:
        ids = [
            None if is_missing(v) else as_text(v)
            for v in integers_as_written(frame[config.id_column])
        ]
        keyed[config.id_column] = pd.Series(ids, index=frame.index, dtype=object)
    return frame.assign(**keyed)


def integers_as_written(values: pd.Series) -> pd.Series:
    """A column of labels or ids with each whole number as a Python int (missing values None),
    however pandas read it: an integer column holding a missing value (a JSON null, a Parquet
    null) reads as floats, `100.0`, a column mixing `100` and `112.5` too, and pandas' nullable
    integers hold `<NA>`. So the label 100 is `100` whatever other rows hold; `112.5` stays a
    float. The arrays of a list column (tags, paths; Parquet reads a list of integers holding a
    null as floats) are converted item by item. Any other column is returned as it is."""
    nullable = isinstance(values.dtype, pd.api.extensions.ExtensionDtype)
    if pd.api.types.is_integer_dtype(values.dtype) and nullable:  # `Int64`, which holds <NA>
        return values.astype(object).where(values.notna(), None)
    if pd.api.types.is_float_dtype(values.dtype):
        return pd.Series(
            [_whole_as_int(value) for value in values],
            index=values.index,
            dtype=object,
            name=values.name,
        )
    if values.dtype != object:
        return values
    floats = values.map(lambda v: isinstance(v, np.ndarray) and v.dtype.kind == "f")
    if not floats.any():
        return values
    as_lists = values[floats].map(lambda items: [_whole_as_int(item) for item in items])
    return values.where(~floats, as_lists)


# Floats count as whole numbers up to 2**53: beyond, a float no longer holds every integer.
EXACT_FLOAT_INTEGERS = 2.0**53


def _whole_as_int(value: Any) -> int | float | None:
    """None for a missing value, an int for a whole number a float holds exactly, else the
    float itself."""
    if pd.isna(value):
        return None
    number = float(value)
    if abs(number) < EXACT_FLOAT_INTEGERS and number.is_integer():
        return int(number)
    return number
