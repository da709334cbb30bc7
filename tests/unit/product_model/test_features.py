from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from product_model.features import FeatureSpec, ProductFeaturizer, as_list, as_text, parse_price


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("$12.99", 12.99), ("$3.99 - $9.99", 6.99), ("$1,299.00", 1299.0), (5, 5.0)],
)
def test_parse_price(raw: object, expected: float) -> None:
    assert parse_price(raw) == pytest.approx(expected)


@pytest.mark.parametrize("raw", [None, "", "free", float("nan"), -3, "<span>n/a</span>"])
def test_unparseable_price_is_nan(raw: object) -> None:
    assert math.isnan(parse_price(raw))


def test_field_shapes() -> None:
    assert as_text(["a", None, "b"]) == "a  b"
    assert as_text(float("nan")) == ""
    assert as_list("x") == ["x"] and as_list("  ") == [] and as_list(None) == []
    assert as_list({"Priority": "optional"}) == ["Priority=optional"]


def products() -> list[dict]:
    return [
        {
            "asin": "python3-yaml",
            "title": "YAML parser for Python",
            "brand": "Python Team",
            "description": ["Parses YAML."],
            "also_buy": ["python3"],
            "price": "$1.00",
            "details": {"Homepage": "https://pyyaml.org/wiki"},
        },
        {
            "asin": "0ad",
            "title": "Strategy game",
            "description": "Ancient warfare",
            "category": ["game::strategy"],
            "image": ["a.jpg", "b.jpg"],
        },
        {"asin": "python3-toml", "title": "TOML parser for Python", "brand": "Python Team"},
        {"asin": "1ad", "title": "Another strategy game", "also_view": ["0ad"]},
    ]


def test_featurizer_handles_missing_fields_lists_and_frames() -> None:
    featurizer = ProductFeaturizer(min_df=1)
    matrix = featurizer.fit_transform(products())
    assert matrix.shape[0] == 4 and matrix.dtype == np.float32
    again = featurizer.transform(pd.DataFrame(products()))
    assert np.allclose(matrix.toarray(), again.toarray())
    names = set(featurizer.get_feature_names_out())
    assert "tokens=details:homepage=pyyaml.org" in names
    assert "tokens=brand:python_team" in names
    assert len(names) == matrix.shape[1]


def test_unseen_and_empty_products_transform() -> None:
    featurizer = ProductFeaturizer(min_df=1).fit(products())
    matrix = featurizer.transform([{}, {"title": "🚀 東京", "unknown_field": 3}])
    assert matrix.shape == (2, len(featurizer.get_feature_names_out()))
    assert (matrix.toarray() >= 0).all()


def test_generic_numeric_columns_are_scaled_non_negative() -> None:
    spec = FeatureSpec(
        text_columns=("name",),
        token_columns=(),
        id_column=None,
        numeric_columns=("weight",),
        amazon_counts=False,
    )
    rows = [{"name": "a b", "weight": -5}, {"name": "b c", "weight": "12"}, {"name": "c"}]
    featurizer = ProductFeaturizer(spec=spec, min_df=1)
    matrix = featurizer.fit_transform(rows).toarray()
    assert matrix.min() >= 0 and matrix.max() <= 1


def test_linear_character_block_comes_last_and_has_its_fixed_width() -> None:
    words = ProductFeaturizer(min_df=1)
    with_chars = ProductFeaturizer(min_df=1, linear_chars=5000)
    plain, padded = words.fit_transform(products()), with_chars.fit_transform(products())
    assert padded.shape[1] == plain.shape[1] + 5000  # far fewer distinct n-grams: empty columns
    assert np.array_equal(padded[:, : plain.shape[1]].toarray(), plain.toarray())
    assert padded[:, plain.shape[1] :].nnz > 0
    assert len(with_chars.get_feature_names_out()) == padded.shape[1]
    again = with_chars.transform(pd.DataFrame(products()))
    assert np.allclose(again.toarray(), padded.toarray())
    blank = [{"title": "", "asin": "x"}, {"title": None, "asin": "y"}]
    assert ProductFeaturizer(min_df=1, linear_chars=7).fit_transform(blank)[:, -7:].nnz == 0
