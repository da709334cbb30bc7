"""The fused prediction gives the pipeline's probabilities bit for bit, for every pipeline shape
training saves, every batch size and awkward products; other pipelines are left alone."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from sklearn.pipeline import Pipeline

from product_model.fused import fused_predictor
from training.catalog import load_catalog
from training.config import TrainConfig
from training.pipeline import build_pipeline, for_serving, model_input

SHAPES = {
    "select + linear scores (default)": {},
    "linear scores + character block": {"linear_char_features": 3000},
    "selection folded into the forest": {"linear_scores": False},
    "no selection, linear scores": {"select_k_best": 0},
    "no selection, no scores": {"select_k_best": 0, "linear_scores": False},
    "text only, id n-grams of the title": {
        "text_columns": ["title"],
        "token_columns": [],
        "id_column": None,
        "amazon_counts": False,
        "char_ngram_columns": ["title"],
        "numeric_columns": ["rank_number"],
    },
}

ODD_PRODUCTS: list[dict[str, Any]] = [
    {},
    {"title": "", "description": [], "price": None},
    {"title": "zzqx unknownword qqqq", "brand": "nobrand-at-all", "asin": "!!!"},
    {"title": 42, "description": {"a": "b"}, "price": "$1,234.50 - $2,000", "also_buy": None},
    {"title": "usb cable", "price": math.nan, "rank_number": "not a number", "image": ["x"]},
    {"title": "Café crème für Küche", "details": {"Brand": "https://www.example.com/x"}},
    {"title": "usb cable", "also_view": ["", None, "B00X"], "category": "Electronics"},
]


@pytest.fixture(scope="module")
def catalog(small_catalog) -> Any:
    frame = load_catalog(TrainConfig(data=str(small_catalog))).frame
    frame = frame.assign(rank_number=np.arange(len(frame)) % 7)
    return frame


def _config(options: dict[str, Any]) -> TrainConfig:
    base = {"n_estimators": 5, "smote": False, "n_jobs": 1, "select_k_best": 400}
    return TrainConfig(**(base | options))


@pytest.mark.parametrize("shape", list(SHAPES))
def test_fused_probabilities_are_the_pipelines_bit_for_bit(catalog, shape) -> None:
    config = _config(SHAPES[shape])
    labels = catalog["label"].to_numpy()
    inputs = model_input(catalog, config)
    pipeline = for_serving(build_pipeline(config, labels).fit(inputs, labels), compact=True)
    fused = fused_predictor(pipeline)
    assert fused is not None, f"{shape}: {[name for name, _ in pipeline.steps]} not fused"
    records = inputs.to_dict("records")
    batches = [records[:1], records[1:3], records[3:10], records[10:25], records[25:125]]
    batches += [ODD_PRODUCTS, ODD_PRODUCTS[:1], records[:5] + ODD_PRODUCTS]
    before_forest = Pipeline(pipeline.steps[:-1])
    for batch in batches:
        expected = before_forest.transform(batch).tocsr()
        indptr, indices, data = fused.forest_input(batch)
        assert np.array_equal(indptr, expected.indptr), f"{shape}, {len(batch)} rows"
        assert np.array_equal(indices, expected.indices), f"{shape}, {len(batch)} rows"
        assert data.dtype == expected.dtype and np.array_equal(data, expected.data)
        expected = pipeline.predict_proba(batch)
        assert np.array_equal(fused.predict_proba(batch), expected), f"{shape}, {len(batch)} rows"


def test_the_numpy_walk_before_compiling_is_fused_too(sample_model) -> None:
    fused = fused_predictor(sample_model)
    assert fused is not None
    forest = sample_model.steps[-1][1]
    products = [*ODD_PRODUCTS, {"title": "hdmi cable 2m", "brand": "Sony"}]
    forest.answer_before_compiled()
    try:
        assert np.array_equal(fused.predict_proba(products), sample_model.predict_proba(products))
    finally:
        forest._numpy_until_compiled = False


def test_pipelines_it_does_not_cover_are_not_fused(catalog, sample_model) -> None:
    stock = _config({"compact": False, "linear_scores": False})
    labels = catalog["label"].to_numpy()
    inputs = model_input(catalog, stock)
    stock_pipeline = for_serving(build_pipeline(stock, labels).fit(inputs, labels), compact=False)
    assert fused_predictor(stock_pipeline) is None
    features = sample_model.named_steps["features"]
    first = next(iter(features.vectorizers_.values()))
    norm = first._tfidf.norm
    first._tfidf.norm = "l1"
    try:
        assert fused_predictor(sample_model) is None
    finally:
        first._tfidf.norm = norm
    assert fused_predictor(Pipeline(sample_model.steps[1:])) is None
    assert fused_predictor(object()) is None
