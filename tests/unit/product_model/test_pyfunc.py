"""The saved model is self-contained: its pickle refers to `product_model` and libraries only."""

from __future__ import annotations

import io
import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from product_model.pyfunc import (
    PIPELINE_FILE,
    ProductClassifierModel,
    save_pipeline,
    top_k_labels,
    with_answers,
)
from product_model.tags import MULTILABEL, TagDecoder
from tests.support import write_tag_catalog
from training.catalog import load_catalog
from training.config import TrainConfig
from training.config_files import make_config
from training.pipeline import build_pipeline, feature_spec, for_serving, model_input
from training.tag_catalog import load_tag_catalog
from training.tag_model import fit_tag_model

PROJECT_PACKAGES = {"product_model", "training", "serving"}


class RecordingUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes) -> None:
        super().__init__(io.BytesIO(data))
        self.modules: set[str] = set()

    def find_class(self, module: str, name: str):
        self.modules.add(module)
        return super().find_class(module, name)


def test_served_pipeline_needs_only_the_model_package(small_catalog) -> None:
    for smote, compact in ((True, True), (False, True), (True, False)):
        config = TrainConfig(
            data=str(small_catalog),
            n_estimators=3,
            smote=smote,
            smote_strategy="share:0.5",
            select_k_best=500,
            compact=compact,
        )
        frame = load_catalog(config).frame
        y = frame["label"].to_numpy()
        pipeline = build_pipeline(config, y).fit(model_input(frame, config), y)
        unpickler = RecordingUnpickler(pickle.dumps(for_serving(pipeline, compact)))
        unpickler.load()
        project = {m for m in unpickler.modules if m.split(".")[0] in PROJECT_PACKAGES}
        assert project, "the pickle should refer to the model package"
        outside = {m for m in project if m.split(".")[0] != "product_model"}
        assert not outside, f"the model refers to {outside}, which it does not carry"


def test_top_k_labels_order_and_bounds() -> None:
    proba = np.array([[0.1, 0.7, 0.2], [0.5, 0.25, 0.25]])
    classes = np.array(["a", "b", "c"])
    assert top_k_labels(proba, classes, 2) == [[("b", 0.7), ("c", 0.2)], [("a", 0.5), ("b", 0.25)]]
    assert len(top_k_labels(proba, classes, 99)[0]) == 3
    assert len(top_k_labels(proba, classes, 0)[0]) == 1


def test_wrapper_is_tiny_when_pickled() -> None:
    assert len(pickle.dumps(ProductClassifierModel())) < 1000


KINDS = {"clothing": ["jacket", "shirt", "coat"], "electronics": ["headphones", "charger"]}
MODIFIERS = {"kids": ["kids", "junior"], "waterproof": ["waterproof", "rainproof"]}


def tag_model_with_thresholds(
    tmp_path: Path, thresholds: dict[str, float]
) -> ProductClassifierModel:
    """A real multilabel model (features and compact forest fitted on a small tag catalog),
    saved and loaded as the pyfunc loads it, answering with the given per-tag thresholds."""
    catalog = write_tag_catalog(tmp_path / "tags.csv", KINDS, MODIFIERS, count=120)
    values: dict[str, Any] = {"data": str(catalog)}
    values |= {"task": MULTILABEL}
    values |= {"text_columns": ["title"], "token_columns": [], "id_column": "sku"}
    values |= {"label_column": "tags", "label_separator": "|", "amazon_counts": False}
    values |= {"min_tag_count": 5, "n_estimators": 20, "trees_per_chunk": 10, "min_df": 1}
    config = make_config(values | {"n_jobs": 1})
    frame = load_tag_catalog(config).frame
    tags = sorted(thresholds)
    fitted = fit_tag_model(config, frame, tags, MULTILABEL)
    decoder = TagDecoder(MULTILABEL, tuple(tags), tuple(thresholds[t] for t in tags))
    contract = feature_spec(config).contract(frame, config.label_column).to_dict()
    metadata = {"contract": contract | {"task": MULTILABEL, "tags": decoder.to_dict()}}
    save_pipeline(fitted.served, tmp_path / PIPELINE_FILE)
    (tmp_path / "metadata.json").write_text(json.dumps(metadata))
    model = ProductClassifierModel()
    model.load(tmp_path / PIPELINE_FILE, tmp_path / "metadata.json")
    return model


def test_a_multilabel_label_is_the_most_probable_tag_answered(tmp_path: Path) -> None:
    """The kinds can never pass (threshold above 1): a kids jacket's most probable tag is
    `clothing`, but `kids` is what the model answers, so it is the label; a plain jacket passes
    no tag and answers its most probable one alone."""
    never, half = 1.01, 0.5
    model = tag_model_with_thresholds(
        tmp_path, {"clothing": never, "electronics": never, "kids": half, "waterproof": half}
    )
    frame = pd.DataFrame({"sku": ["a", "b"], "title": ["Acme kids jacket", "Acme jacket"]})
    answer = model.predict(None, frame, params={"top_k": 2})
    assert answer["top_labels"].map(lambda labels: labels[0]).tolist() == ["clothing"] * 2
    assert answer["tags"].tolist() == [["kids"], ["clothing"]]
    assert answer["label"].tolist() == ["kids", "clothing"]
    assert answer["probability"].tolist() == [p[0] for p in answer["tag_probabilities"]]
    kids_jacket = answer.iloc[0]
    assert kids_jacket["probability"] < kids_jacket["top_probabilities"][0]


def test_with_answers_takes_a_multilabel_label_from_its_first_tag() -> None:
    decoder = TagDecoder(MULTILABEL, ("x", "y", "z"), (0.9, 0.2, 0.3))
    proba = np.array([[0.5, 0.25, 0.35], [0.4, 0.1, 0.2]])
    argmax = pd.DataFrame({"label": ["x", "x"], "probability": [0.5, 0.4]})
    frame = with_answers(argmax, decoder.answers(proba), MULTILABEL, " > ")
    assert frame["tags"].tolist() == [["z", "y"], ["x"]]
    assert frame["label"].tolist() == ["z", "x"]
    assert frame["probability"].tolist() == [0.35, 0.4]
