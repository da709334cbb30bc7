"""The MLflow pyfunc model that wraps the fitted pipeline.

Trust boundary: the fitted pipeline is stored as a zlib-compressed pickle, because skops would
have to be told to trust every custom type in it (the text cleaner, the featurizer, the compact
forest).
Loading a pickle runs code, so only load models from a registry that only your training Jobs
write to; the Kubernetes manifests give write access to MLflow to the training Job alone.

The `product_model` package is copied into every logged model (`code_paths`), so this module and
what it imports need no more than the serving dependencies: mlflow-skinny, scikit-learn,
imbalanced-learn, nltk, pandas.
"""

from __future__ import annotations

import json
import pickle
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from product_model.contract import InputContract
from product_model.forest import CompactForest
from product_model.fused import FusedPredictor, fused_predictor
from product_model.tags import PATH, TagDecoder

PIPELINE_ARTIFACT = "pipeline"
PIPELINE_FILE = "pipeline.pickle.zlib"


def save_pipeline(pipeline: Any, path: Path) -> None:
    """A pickle (protocol 5), zlib level 3: as small as joblib's compressed file, and loaded by
    the C unpickler, about three times faster than joblib's Python one."""
    path.write_bytes(zlib.compress(pickle.dumps(pipeline, protocol=5), 3))


def load_pipeline(path: Path) -> Any:
    if path.suffix == ".joblib":  # written by save_pipeline's joblib predecessor
        return joblib.load(path)
    return pickle.loads(zlib.decompress(path.read_bytes()))


METADATA_ARTIFACT = "metadata"
DEFAULT_TOP_K = 3


def top_k_labels(proba: np.ndarray, classes: np.ndarray, k: int) -> list[list[tuple[str, float]]]:
    """The k most probable labels of each row, most probable first."""
    k = max(1, min(k, proba.shape[1]))
    best = np.argsort(-proba, axis=1, kind="stable")[:, :k]
    return [
        [(str(classes[j]), float(row[j])) for j in order]
        for row, order in zip(proba, best, strict=True)
    ]


class ProductClassifierModel(PythonModel):
    """Classifies products given as catalog records, keyed by the fields of its input contract.

    `predict` (the pyfunc API, used by `mlflow models serve`) returns one row per product with the
    label, its probability and the top-k labels; `predict_proba` is the fast path the serving app
    calls directly.
    """

    def load_context(self, context: Any) -> None:
        self.load(
            Path(context.artifacts[PIPELINE_ARTIFACT]), Path(context.artifacts[METADATA_ARTIFACT])
        )

    def load(self, pipeline_path: Path, metadata_path: Path) -> None:
        self.pipeline = load_pipeline(pipeline_path)
        self.fused: FusedPredictor | None = fused_predictor(self.pipeline)
        self.metadata: dict[str, Any] = json.loads(metadata_path.read_text("utf-8"))
        self.classes = np.asarray(self.pipeline.classes_)
        self.contract = InputContract.from_dict(self.metadata["contract"])
        self.input_fields: list[str] = list(self.contract.names)
        self.profile: dict[str, Any] | None = self.metadata.get("profile")
        self.decoder = TagDecoder.from_contract(self.metadata["contract"])

    @property
    def task(self) -> str:
        return self.contract.task

    def answers(self, proba: np.ndarray) -> list[list[tuple[str, float]]] | None:
        """Per product, the tags above their thresholds (multilabel) or the path's levels with
        their probabilities (path); None for a single-label model."""
        return None if self.decoder is None else self.decoder.answers(proba)

    def oov_shares(self, products: list[dict[str, Any]] | pd.DataFrame) -> np.ndarray:
        """Per product, the share of its text tokens the model's vocabulary does not know."""
        return np.asarray(self.pipeline.named_steps["features"].oov_shares(products))

    def answer_before_compiled(self) -> None:
        """Predict with the forest's exact NumPy walk until `compile_walk()` has run, instead of
        compiling the fast walk at the first prediction (a server answers sooner)."""
        forest = self._compact_forest()
        if forest is not None:
            forest.answer_before_compiled()

    def compile_walk(self) -> None:
        """Compile the forest's fast walk now (no-op for a stock scikit-learn forest)."""
        forest = self._compact_forest()
        if forest is not None:
            forest.compile_walk()

    def _compact_forest(self) -> CompactForest | None:
        final = self.pipeline.steps[-1][1]
        return final if isinstance(final, CompactForest) else None

    def predict_proba(
        self,
        products: list[dict[str, Any]] | pd.DataFrame,
        before_walk: Callable[[], None] | None = None,
    ) -> np.ndarray:
        """Class probabilities, one row per product, columns in the order of `self.classes`
        (by the pipeline's fused form when it has one: the same numbers, sooner).
        `before_walk()` is called, when given, once the features are built and the rest, the
        forest walk, runs without the GIL (a server may start its next call then)."""
        if self.fused is not None:
            return self.fused.predict_proba(products, before_walk)
        return np.asarray(self.pipeline.predict_proba(products))

    def predict(
        self,
        context: Any,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        top_k = int((params or {}).get("top_k", DEFAULT_TOP_K))
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        proba = self.predict_proba(self.contract.coerce_frame(frame))
        ranked = top_k_labels(proba, self.classes, top_k)
        answer = pd.DataFrame(
            {
                "label": [row[0][0] for row in ranked],
                "probability": [row[0][1] for row in ranked],
                "top_labels": [[label for label, _ in row] for row in ranked],
                "top_probabilities": [[p for _, p in row] for row in ranked],
            }
        )
        chosen = self.answers(proba)
        if chosen is None or self.decoder is None:
            return answer
        return with_answers(answer, chosen, self.task, self.decoder.separator)


def with_answers(
    answer: pd.DataFrame, chosen: list[list[tuple[str, float]]], task: str, separator: str
) -> pd.DataFrame:
    """The frame of a multilabel model (`label` is the first of its answered tags, the most
    probable one, so always among `tags`; plus `tags`, `tag_probabilities`) or of a path model
    (`label` is the whole path, `probability` its deepest level's; plus `path`,
    `path_probabilities`). `top_labels` stays the ranking of every class."""
    names = [[name for name, _ in row] for row in chosen]
    probabilities = [[p for _, p in row] for row in chosen]
    if task == PATH:
        answer["label"] = [separator.join(row) for row in names]
        answer["probability"] = [row[-1] for row in probabilities]
        return answer.assign(path=names, path_probabilities=probabilities)
    answer["label"] = [row[0] for row in names]
    answer["probability"] = [row[0] for row in probabilities]
    return answer.assign(tags=names, tag_probabilities=probabilities)
