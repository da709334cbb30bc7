from __future__ import annotations

import pytest

from batch.model import model_inputs, resolve
from training.errors import ConfigError

CONTRACT = {
    "contract": {
        "fields": [
            {"name": "Product Title", "role": "text", "type": "string"},
            {"name": "Maker", "role": "tokens", "type": "tokens"},
            {"name": "SKU", "role": "id", "type": "string"},
            {"name": "Weight", "role": "numeric", "type": "number"},
        ]
    }
}


def test_the_contract_names_columns_text_and_id() -> None:
    inputs = model_inputs(CONTRACT, ["title"], None)
    assert inputs.columns == ("Product Title", "Maker", "SKU", "Weight")
    assert inputs.text_columns == ("Product Title",)
    assert inputs.id_column == "SKU"


def test_the_id_column_option_wins_over_the_contract() -> None:
    assert model_inputs(CONTRACT, [], "ean").id_column == "ean"


def test_without_a_contract_the_signature_and_training_defaults_apply() -> None:
    inputs = model_inputs({}, ["title", "brand", "description", "asin"], None)
    assert inputs.columns == ("title", "brand", "description", "asin")
    assert inputs.text_columns == ("title", "description")
    assert inputs.id_column == "asin"


def test_without_text_defaults_every_column_counts_as_text() -> None:
    inputs = model_inputs({"input_fields": ["name", "maker"]}, [], None)
    assert inputs.text_columns == ("name", "maker")
    assert inputs.id_column is None


def test_a_model_without_inputs_is_refused() -> None:
    with pytest.raises(ConfigError, match="no input columns"):
        model_inputs({}, [], None)


def test_a_missing_model_folder_is_a_bad_option(tmp_path) -> None:
    with pytest.raises(ConfigError, match="MLmodel file missing"):
        resolve(str(tmp_path / "nothing-here"), None)


def test_a_blank_id_column_option_means_rows_are_identified_by_position() -> None:
    assert model_inputs(CONTRACT, [], "").id_column is None
    assert model_inputs({"input_fields": ["name"]}, [], None).id_column is None


def test_numeric_columns_are_the_contracts_numbers_and_the_signatures_doubles() -> None:
    assert model_inputs(CONTRACT, [], None).numeric_columns == ("Weight",)
    legacy = model_inputs({}, ["title", "price", "asin"], None, ["price"])
    assert legacy.numeric_columns == ("price",)
