"""Duplicate rows of a catalog, keyed the same way for every task.

The key is the product's id (`--id-column`), else its normalised text: the same key fixes the
product's holdout side (`training/split.py`), and the warning names it so that a user who sees
many rows dropped knows which column decided (an id column that is not unique, or products
described by the same text).
"""

from __future__ import annotations

import logging
import re

import pandas as pd

from product_model.features import as_text
from training.config import TrainConfig

log = logging.getLogger(__name__)
_SPACES = re.compile(r"\s+")


def duplicated_rows(
    frame: pd.DataFrame, text: pd.Series, config: TrainConfig, text_columns: list[str]
) -> pd.Series:
    """Rows repeating an earlier row's id (blank ids never repeat), or, without an id column,
    its `text` (the text columns joined) with case and spaces folded; a warning counts them and
    names the key. `text` is aligned with `frame`."""
    if config.id_column and config.id_column in frame.columns:
        ids = frame[config.id_column].map(as_text).str.strip()
        duplicated = ids.duplicated() & (ids != "")
        key = f"the id column '{config.id_column}'"
    else:
        normalized = text.loc[frame.index].str.casefold().str.replace(_SPACES, " ", regex=True)
        duplicated = normalized.duplicated()
        key = f"the normalised text of {', '.join(text_columns)} (no id column)"
    if duplicated.any():
        log.warning("dropped %d duplicate row(s), keyed by %s", int(duplicated.sum()), key)
    return duplicated
