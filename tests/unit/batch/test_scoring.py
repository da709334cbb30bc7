from __future__ import annotations

import math
import unicodedata

import pandas as pd
import pytest

from batch.model import ModelInputs
from batch.scoring import (
    check_columns,
    has_text,
    model_frame,
    model_names,
    warn_missing_inputs,
    with_model_names,
)
from training.errors import DataError

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
    check_columns(["title"], ModelInputs(("title",), ("title",), None), "c.jsonl")  # by row


def test_a_column_the_signature_still_refuses_is_named_in_the_project_s_words() -> None:
    """MLflow's message (the whole chunk, then numpy's `<U0`) is not passed on."""
    from batch.scoring import refused_column

    mlflow_says = (
        "Failed to enforce schema of data '   Size\n0  3' with schema '['Size': string]'. "
        "Error: Incompatible input types for column Size. Can not safely convert int64 to <U0."
    )
    frame = pd.DataFrame({"Size": [3]})
    assert refused_column(mlflow_says, frame) == (
        "the model's signature refuses column 'Size', which holds numbers here"
    )
    assert refused_column("Failed to enforce schema", frame) == (
        "the model's signature refuses these values"
    )


def test_missing_id_and_text_columns_are_named_with_their_near_matches() -> None:
    """A catalog whose columns differ from the model's only by case or spaces stopped without
    the hint the missing-input warning gives."""
    inputs = ModelInputs(("Product Name", "Blurb", "SKU"), ("Product Name", "Blurb"), "SKU")
    with pytest.raises(DataError) as error:
        check_columns(["sku", "product name", "blurb"], inputs, "case.csv")
    assert str(error.value) == (
        "case.csv: id column 'SKU' (is it 'sku'?) not found; columns are: blurb, product name, "
        "sku; set --id-column"
    )
    with pytest.raises(DataError) as error:
        check_columns(["SKU", "ProductName", "blurb", "Other"], inputs, "case.csv")
    assert str(error.value) == (
        "case.csv: none of the model's text columns ('Product Name' (is it 'ProductName'?), "
        "'Blurb' (is it 'blurb'?)) exist; columns are: Other, ProductName, SKU, blurb"
    )


class TagPyfunc:
    """Answers like a multilabel model's pyfunc: one row per product, with its tags."""

    def predict(self, frame: pd.DataFrame, params: dict) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "label": ["x"] * len(frame),
                "probability": [0.8] * len(frame),
                "top_labels": [["x", "y"]] * len(frame),
                "top_probabilities": [[0.8, 0.3]] * len(frame),
                "tags": [["x"]] * len(frame),
                "tag_probabilities": [[0.8]] * len(frame),
            }
        )


def test_a_multilabel_model_adds_its_tag_columns(tmp_path) -> None:
    import pyarrow.parquet as pq

    from batch.model import ModelRef, ScoringModel
    from batch.scoring import OUTPUT_COLUMNS, output_schema, score_chunk
    from batch.writers import open_writer

    model = ScoringModel(ModelRef("u", "m", "1"), INPUTS, TagPyfunc(), ("x", "y"), "multilabel")
    frame = pd.DataFrame({"asin": ["a", "b"], "title": ["A game", ""]})
    scored = score_chunk(model, frame, 2)
    assert scored["tags"].tolist() == [["x"], []]  # the row without text gets none
    assert list(output_schema("single_label").names) == list(OUTPUT_COLUMNS)
    schema = output_schema("multilabel")
    assert list(scored.columns) == list(schema.names)
    writer = open_writer("parquet", tmp_path / "out.parquet", schema)
    writer.write(scored)
    writer.close()
    assert pq.read_table(tmp_path / "out.parquet").column("tag_probabilities").to_pylist() == [
        [0.8],
        [],
    ]


def test_without_an_id_column_rows_carry_their_catalog_position() -> None:
    import pyarrow as pa

    from batch.model import ModelRef, ScoringModel
    from batch.scoring import output_schema, score_chunk

    inputs = ModelInputs(("title",), ("title",), None)
    model = ScoringModel(ModelRef("u", "m", "1"), inputs, TagPyfunc(), ("x", "y"))
    scored = score_chunk(model, pd.DataFrame({"title": ["A game", "", "Another"]}), 2, 10)
    assert scored["row"].tolist() == [10, 11, 12]
    schema = output_schema("single_label", by_row=True)
    assert schema.field(0) == pa.field("row", pa.int64())
    assert list(scored.columns) == list(schema.names)


def test_columns_named_in_another_unicode_normal_form_are_the_models() -> None:
    """A header with a decomposed "ö" looks like the model's column but was silently missing."""
    inputs = ModelInputs(("Größe (KB)", "Kurzbeschreibung"), ("Kurzbeschreibung",), None)
    nfd = unicodedata.normalize("NFD", "Größe (KB)")
    assert model_names([nfd, "Kurzbeschreibung", "other"], inputs) == [
        "Größe (KB)",
        "Kurzbeschreibung",
        "other",
    ]
    # the exact spelling wins; the other keeps its name (and is not read)
    assert model_names([nfd, "Größe (KB)"], inputs) == [nfd, "Größe (KB)"]
    frame = pd.DataFrame({"Kurzbeschreibung": ["a"], nfd: [" 12 "]})
    numbers = ModelInputs(inputs.columns, inputs.text_columns, None, ("Größe (KB)",))
    assert model_frame(with_model_names(frame, numbers), numbers).to_dict("records") == [
        {"Größe (KB)": 12.0, "Kurzbeschreibung": "a"}
    ]


def test_values_there_that_are_not_numbers_are_counted_per_numeric_column() -> None:
    """They are read as missing; blanks and nulls are plain missing values, not counted."""
    from batch.scoring import count_not_numbers

    numeric = ("price", "weight", "size")
    inputs = ModelInputs(("title", *numeric), ("title",), None, numeric)
    price = ["9.99", " 7 ", "", "  ", None, math.nan, "n/a", "9,99", "abc", "inf", True, {"a": 1}]
    frame = pd.DataFrame(
        {
            "title": ["t"] * len(price),
            "price": price,
            "weight": [1, 2.5, None, math.nan, float("inf"), 3, 4, 5, 6, 7, 8, 9],
        }
    )
    assert count_not_numbers(frame, inputs) == {"price": 6, "weight": 1}
    assert model_frame(frame, inputs)["price"].notna().sum() == 2  # what the model gets
    assert count_not_numbers(frame[["title"]], inputs) == {}  # columns the catalog lacks


SHELF = ModelInputs(
    ("SKU", "Item Name", "Long Text", "Vendor", "Size KB"),
    ("Item Name", "Long Text"),
    "SKU",
    ("Size KB",),
    ("SKU",),
)


def missing_input_warnings(
    columns: list[str], inputs: ModelInputs, caplog: pytest.LogCaptureFixture
) -> list[str]:
    caplog.clear()
    with caplog.at_level("WARNING", logger="batch.scoring"):
        warn_missing_inputs(columns, inputs, "c.csv")
    return [record.getMessage() for record in caplog.records]


def test_a_model_input_the_catalog_lacks_is_named_with_its_near_match(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A catalog with `vendor` for the model's `Vendor` was scored without it, silently."""
    columns = ["SKU", "Item Name", "Long Text", "vendor", "Size KB"]
    assert missing_input_warnings(columns, SHELF, caplog) == [
        "c.csv: the catalog has no column for the model's input 'Vendor' (is it 'vendor'?); "
        "its products are scored without it"
    ]


def test_several_missing_inputs_make_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    columns = ["SKU", "Item Name", " size kb ", "Section"]
    assert missing_input_warnings(columns, SHELF, caplog) == [
        "c.csv: the catalog has no column for the model's inputs 'Long Text', 'Vendor', "
        "'Size KB' (is it ' size kb '?); its products are scored without them"
    ]


def test_ids_are_no_inputs_to_warn_about(caplog: pytest.LogCaptureFixture) -> None:
    """The model's id field is not read to predict: a run by row (`--id-column ''`) or by
    another id column does not miss it."""
    by_row = ModelInputs(SHELF.columns, SHELF.text_columns, None, ("Size KB",), ("SKU",))
    assert (
        missing_input_warnings(["Item Name", "Long Text", "Vendor", "Size KB"], by_row, caplog)
        == []
    )
    assert missing_input_warnings(list(SHELF.columns), SHELF, caplog) == []
