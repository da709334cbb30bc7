from __future__ import annotations

import sys

import pytest

from batch.model import load, model_inputs, resolve
from tests.support import Registry, tracking_uri_restored
from training.errors import ConfigError, TrackingRefusedError

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


def test_text_fields_and_the_signature_s_strings_are_read_as_text_but_ids_and_numbers() -> None:
    """The columns `batch.text_values` reads as text: a legacy model's `string` brand too (MLflow
    refuses a chunk of numbers there), not its id or its numbers."""
    strings = ["SKU", "Product Title"]
    assert model_inputs(CONTRACT, [], None, ["Weight"], strings).text_valued_columns == (
        "Product Title",
    )
    legacy = model_inputs(
        {}, ["title", "brand", "price", "asin"], None, ["price"], ["brand", "asin"]
    )
    assert legacy.text_valued_columns == ("title", "brand")


def test_the_features_are_the_inputs_but_the_ids() -> None:
    assert model_inputs(CONTRACT, [], None).feature_columns == ("Product Title", "Maker", "Weight")
    assert model_inputs(CONTRACT, [], "").feature_columns == ("Product Title", "Maker", "Weight")
    legacy = model_inputs({}, ["title", "brand", "asin"], "sku")
    assert legacy.feature_columns == ("title", "brand")


def test_a_registered_name_without_version_or_alias_says_what_to_add(
    listings_registry: Registry,
) -> None:
    """MLflow read `models:/listings` as a logged model's ID: "Logged model with ID 'listings'
    not found" (exit 5)."""
    with tracking_uri_restored(), pytest.raises(ConfigError) as refused:
        resolve("models:/listings", listings_registry.tracking_uri)
    assert str(refused.value) == (
        "--model models:/listings: a registered model needs a version or an alias: add @ALIAS "
        "or /VERSION, e.g. models:/listings@champion"
    )
    with tracking_uri_restored(), pytest.raises(TrackingRefusedError, match="no registered model"):
        resolve("models:/nothing-by-that-name", listings_registry.tracking_uri)


def test_a_missing_storage_client_is_a_set_up_error_naming_the_package(
    listings_registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`s3://` without boto3 was "cannot load it: No module named 'botocore'", exit 4 (MLflow
    unreachable), which a scheduler retries forever."""
    for module in ("boto3", "botocore"):  # as on a machine without them
        monkeypatch.setitem(sys.modules, module, None)
    with tracking_uri_restored():
        ref = resolve("s3://bucket/model", listings_registry.tracking_uri)
        with pytest.raises(ConfigError) as refused:
            load(ref, None)
    assert refused.value.exit_code == 2
    assert str(refused.value).startswith("--model s3://bucket/model: loading it needs the Python")
    assert str(refused.value).endswith("which is not installed: pip install boto3")
