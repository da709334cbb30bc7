"""The input contract: built from the catalog's own columns, round-tripped, applied to input."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from product_model.contract import InputContract, text_type, to_numbers
from product_model.features import FeatureSpec


def test_contract_names_the_catalogs_columns_with_roles_and_types() -> None:
    frame = pd.DataFrame(
        {
            "Product Title": ["Galaxy S21", "Ryzen 7"],
            "Merchant": ["shop-1", "shop-2"],
            "Weight (g)": [171.0, math.nan],
            "sku": ["a1", "b2"],
            "label": ["phone", "cpu"],
        }
    )
    spec = FeatureSpec(
        text_columns=("Product Title",),
        token_columns=("Merchant",),
        id_column="sku",
        numeric_columns=("Weight (g)",),
        amazon_counts=False,
    )
    contract = spec.contract(frame, "Category Label")
    assert [(f.name, f.role, f.type) for f in contract.fields] == [
        ("Product Title", "text", "string"),
        ("Merchant", "tokens", "tokens"),
        ("Weight (g)", "numeric", "number"),
        ("sku", "id", "string"),
    ]
    assert contract.text_fields == ("Product Title",)
    assert InputContract.from_dict(contract.to_dict()) == contract


def test_amazon_contract_keeps_only_fields_the_catalog_has() -> None:
    frame = pd.DataFrame(
        {"asin": ["x"], "title": ["t"], "description": [["a", "b"]], "price": ["$3.99"]}
    )
    contract = FeatureSpec().contract(frame, "main_cat")
    types = {f.name: (f.role, f.type) for f in contract.fields}
    assert types == {
        "title": ("text", "string"),
        "description": ("text", "text"),
        "asin": ("id", "string"),
        "price": ("numeric", "price"),
    }


def test_coerce_frame_keeps_the_models_columns_and_parses_numbers() -> None:
    contract = FeatureSpec(
        text_columns=("name",),
        token_columns=(),
        id_column=None,
        numeric_columns=("n",),
        amazon_counts=False,
    ).contract(pd.DataFrame({"name": ["a"], "n": [1.0]}), "label")
    frame = pd.DataFrame({"name": ["a", "b", "c"], "n": ["12", " ", "x"], "other": [1, 2, 3]})
    coerced = contract.coerce_frame(frame)
    assert list(coerced.columns) == ["name", "n"]
    assert coerced["n"].iloc[0] == 12.0 and coerced["n"].iloc[1:].isna().all()


def test_to_numbers_rejects_booleans_and_infinities() -> None:
    parsed = to_numbers(pd.Series([True, "inf", "1e3", 4, None, "7 "], dtype=object))
    assert parsed.isna().tolist() == [True, True, False, False, True, False]
    assert parsed.iloc[2] == 1000.0 and parsed.iloc[5] == 7.0


def test_a_text_field_that_held_objects_or_numbers_is_typed_json() -> None:
    """Training reads a text field's objects and numbers as text (`as_text`): the contract must
    take them too, or the served model refuses the rows of its own catalog (user14: `info`)."""
    frame = pd.DataFrame(
        {
            "info": [{"name": "cmake-fedora", "tags": []}, {"name": "geo", "tags": ["x"]}],
            "texts": [["a", "b"], None],
            "title": ["t", math.nan],
            "size": [398, "49"],
            "notes": [["a", {"k": "v"}], "b"],
        }
    )
    spec = FeatureSpec(
        text_columns=("info", "texts", "title", "size", "notes"),
        token_columns=(),
        id_column=None,
        amazon_counts=False,
    )
    contract = spec.contract(frame, "lbl")
    types = {f.name: f.type for f in contract.fields}
    assert types == {
        "info": "json",
        "texts": "text",
        "title": "string",
        "size": "json",
        "notes": "json",
    }
    assert InputContract.from_dict(contract.to_dict()) == contract


def test_text_types_of_strings_and_lists_of_strings_are_unchanged() -> None:
    """`string` and `text` stay as before (existing models' contracts); Parquet list columns,
    read as arrays, are lists of strings too (and no longer crash the missing-value test)."""
    assert text_type(pd.Series(["a", None, math.nan])) == "string"
    assert text_type(pd.Series([None, math.nan], dtype=object)) == "string"
    assert text_type(pd.Series([["a"], "b", []], dtype=object)) == "text"
    assert text_type(pd.Series([np.array(["a", "b"]), np.array([], dtype=object)])) == "text"
    assert text_type(pd.Series([np.array([{"k": 1}, {"k": 2}])])) == "json"
    assert text_type(pd.Series([True, "b"])) == "json"
