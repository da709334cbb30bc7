"""The saved model is self-contained: its pickle refers to `product_model` and libraries only."""

from __future__ import annotations

import io
import pickle

import numpy as np

from product_model.pyfunc import ProductClassifierModel, top_k_labels
from training.catalog import load_catalog
from training.config import TrainConfig
from training.pipeline import build_pipeline, for_serving, model_input

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
