from __future__ import annotations

import math

import pandas as pd
import pytest

from batch.model import ModelInputs
from batch.scoring import check_columns, has_text, model_frame
from training.errors import ConfigError, DataError

INPUTS = ModelInputs(("title", "description", "brand", "asin"), ("title", "description"), "asin")


def test_rows_need_text_in_one_of_the_text_columns() -> None:
    frame = pd.DataFrame(
        {
            "title": ["A game", "", None, "  ", math.nan],
            "description": [[], ["a paragraph"], [], ["", " "], None],
            "brand": ["x", "x", "a brand is not text", "x", "x"],
        }
    )
    assert has_text(frame, INPUTS.text_columns).tolist() == [True, True, False, False, False]


def test_the_model_gets_its_own_columns_that_the_catalog_has() -> None:
    frame = pd.DataFrame({"asin": [1], "title": ["t"], "price": ["$3"], "extra": [1]})
    columns = model_frame(frame, INPUTS)
    assert list(columns.columns) == ["title", "asin"]
    assert columns["asin"].tolist() == ["1"]


def test_columns_are_checked_before_scoring() -> None:
    check_columns(["asin", "description"], INPUTS, "c.jsonl")
    with pytest.raises(DataError, match="id column 'asin' not found"):
        check_columns(["title"], INPUTS, "c.jsonl")
    with pytest.raises(DataError, match="none of the model's text columns"):
        check_columns(["asin", "brand"], INPUTS, "c.jsonl")
    with pytest.raises(ConfigError, match="--id-column"):
        check_columns(["title"], ModelInputs(("title",), ("title",), None), "c.jsonl")
