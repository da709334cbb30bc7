"""The imbalanced-learn pipeline: features → chi2 selection → linear class scores → SMOTE → tree
ensemble.

SMOTE is a sampler step, so imbalanced-learn applies it in `fit` only: evaluation and serving data
pass through untouched.
"""

from __future__ import annotations

import copy
import logging
import math
from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
from imblearn.over_sampling import SMOTE
from imblearn.pipeline import Pipeline
from scipy import sparse
from sklearn import pipeline as sklearn_pipeline
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, clone
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
from sklearn.feature_selection import SelectKBest, chi2

from product_model.features import FeatureSpec, FixedColumns, ProductFeaturizer
from product_model.forest import CompactForest
from product_model.stacking import LinearScores
from training.config import TrainConfig
from training.config_values import MinimumRows, ShareOfLargest

log = logging.getLogger(__name__)
_WARNED_MAX_FEATURES: set[int] = set()  # said once per process: a study fits it fold after fold


class RaiseToMinimum:
    """SMOTE sampling strategy: oversample every class below `minimum` rows up to `minimum`."""

    def __init__(self, minimum: int) -> None:
        self.minimum = minimum

    def __call__(self, y: np.ndarray) -> dict[Any, int]:
        return {label: self.minimum for label, n in Counter(y).items() if n < self.minimum}

    def __repr__(self) -> str:
        return f"RaiseToMinimum({self.minimum})"


class RaiseToShare(RaiseToMinimum):
    """SMOTE sampling strategy: oversample every class below `share` of the largest class."""

    def __init__(self, share: float) -> None:
        self.share = share

    def __call__(self, y: np.ndarray) -> dict[Any, int]:
        counts = Counter(y)
        self.minimum = max(2, math.ceil(self.share * max(counts.values())))
        return super().__call__(y)

    def __repr__(self) -> str:
        return f"RaiseToShare({self.share})"


def feature_spec(config: TrainConfig) -> FeatureSpec:
    return FeatureSpec(
        text_columns=tuple(config.text_columns),
        token_columns=tuple(config.token_columns),
        id_column=config.id_column,
        numeric_columns=tuple(config.numeric_columns),
        amazon_counts=config.amazon_counts,
        char_ngram_columns=tuple(config.char_ngram_columns),
    )


def model_input(frame: pd.DataFrame, config: TrainConfig) -> pd.DataFrame:
    """The columns of `frame` the model reads, as serving passes them."""
    present = [c for c in feature_spec(config).columns() if c in frame.columns]
    return frame[present].reset_index(drop=True)


def build_sampler(config: TrainConfig, smallest_class: int) -> SMOTE:
    strategy: Any = config.smote_strategy
    if isinstance(strategy, MinimumRows):
        strategy = RaiseToMinimum(strategy.rows)
    elif isinstance(strategy, ShareOfLargest):
        strategy = RaiseToShare(strategy.share)
    # SMOTE needs k neighbours inside the smallest class it oversamples.
    k_neighbors = max(1, min(config.smote_k_neighbors, smallest_class - 1))
    return SMOTE(sampling_strategy=strategy, k_neighbors=k_neighbors, random_state=config.seed)


def build_forest(config: TrainConfig) -> RandomForestClassifier | ExtraTreesClassifier:
    kind = RandomForestClassifier if config.estimator == "random_forest" else ExtraTreesClassifier
    return kind(
        n_estimators=config.n_estimators,
        max_features=config.max_features,
        max_depth=config.max_depth,
        min_samples_leaf=config.min_samples_leaf,
        class_weight=None if config.class_weight == "none" else config.class_weight,
        n_jobs=config.n_jobs,
        random_state=config.seed,
    )


def warn_if_max_features_above(max_features: Any, n_features: int) -> None:
    """scikit-learn takes a whole-number max_features above the feature count as "all of them"
    without a word, so a run or a trial would record a number the forest did not use."""
    if isinstance(max_features, bool) or not isinstance(max_features, int):
        return
    if max_features <= n_features or max_features in _WARNED_MAX_FEATURES:
        return
    _WARNED_MAX_FEATURES.add(max_features)
    log.warning(
        "max_features=%d is more than the %d features the forest is given, so every split "
        "looks at all of them, as max_features=1.0 does; give at most %d, or a fraction",
        max_features,
        n_features,
        n_features,
    )


TREES_PER_CHUNK = 50


class ChunkedCompactForest(ClassifierMixin, BaseEstimator):
    """Fits `forest` a chunk of trees at a time, compacting each chunk before the next is fitted.

    While they exist, scikit-learn's trees hold a float64 vector over all classes per node: 300
    unpruned trees of the full catalog take gigabytes, their compact form about 1/30 of that.
    Each chunk is the same forest with fewer trees and its own seed (drawn from the forest's), so
    the result is a forest of `n_estimators` trees, each grown exactly as scikit-learn grows it.
    """

    def __init__(self, forest: Any = None, trees_per_chunk: int = TREES_PER_CHUNK) -> None:
        self.forest = forest
        self.trees_per_chunk = trees_per_chunk

    def fit(self, X: Any, y: Any) -> ChunkedCompactForest:
        # Converted once here, so the chunks do not each make their own copy.
        X = X.tocsc().astype(np.float32) if sparse.issparse(X) else np.asarray(X, np.float32)
        warn_if_max_features_above(self.forest.max_features, X.shape[1])
        self.compact_ = CompactForest.from_forests(self.chunks(X, y))
        self.classes_ = self.compact_.classes_
        self.n_features_in_ = self.compact_.n_features_in_
        return self

    def chunks(self, X: Any, y: Any) -> Iterator[Any]:
        """The fitted chunks, one at a time."""
        total = self.forest.n_estimators
        sizes = [
            min(self.trees_per_chunk, total - start)
            for start in range(0, total, self.trees_per_chunk)
        ]
        seeds = np.random.SeedSequence(self.forest.random_state).generate_state(len(sizes))
        for size, seed in zip(sizes, seeds, strict=True):
            yield clone(self.forest).set_params(n_estimators=size, random_state=int(seed)).fit(X, y)

    def predict_proba(self, X: Any) -> np.ndarray:
        return self.compact_.predict_proba(X)

    def predict(self, X: Any) -> np.ndarray:
        return self.compact_.predict(X)


class SelectKBestThenTail(TransformerMixin, BaseEstimator):
    """chi2's k best columns (scikit-learn's `SelectKBest`) among all but the last `tail`, which
    are all kept: the featurizer's block for the linear class scores only (0: no such block)."""

    def __init__(self, k: int = 10, tail: int = 0) -> None:
        self.k = k
        self.tail = tail

    def fit(self, X: Any, y: Any) -> SelectKBestThenTail:
        self.n_features_in_ = X.shape[1]
        head = X.shape[1] - self.tail
        # k beyond the columns there are keeps them all, as SelectKBest would, minus its warning.
        best = SelectKBest(chi2, k=min(self.k, head)).fit(X[:, :head] if self.tail else X, y)
        self.columns_ = np.concatenate(
            [best.get_support(indices=True), np.arange(head, X.shape[1])]
        )
        return self

    def transform(self, X: Any) -> Any:
        return X[:, self.columns_]

    def get_support(self, indices: bool = False) -> np.ndarray:
        """The kept columns, as `SelectKBest.get_support`: their indices, or a mask."""
        if indices:
            return self.columns_
        mask = np.zeros(self.n_features_in_, dtype=bool)
        mask[self.columns_] = True
        return mask


def build_pipeline(config: TrainConfig, y_train: np.ndarray, smote: bool | None = None) -> Pipeline:
    """The unfitted pipeline for these training labels."""
    linear_chars = config.resolved_linear_char_features() if config.linear_scores else 0
    steps: list[tuple[str, Any]] = [
        (
            "features",
            ProductFeaturizer(
                spec=feature_spec(config),
                text_max_features=config.text_max_features,
                text_ngram_max=config.text_ngram_max,
                id_ngram_range=(config.id_ngram_min, config.id_ngram_max),
                min_df=config.min_df,
                stemmer=None if config.stemmer == "none" else config.stemmer,
                linear_chars=linear_chars,
            ),
        )
    ]
    if config.select_k_best:
        steps.append(("select", SelectKBestThenTail(config.select_k_best, tail=linear_chars)))
    if config.linear_scores:
        scores = LinearScores(
            random_state=config.seed, linear_only=linear_chars, n_jobs=config.n_jobs
        )
        steps.append(("scores", scores))
    if config.smote if smote is None else smote:
        smallest = min(Counter(y_train).values())
        steps.append(("smote", build_sampler(config, smallest)))
    forest = build_forest(config)
    steps.append(("forest", ChunkedCompactForest(forest) if config.compact else forest))
    return Pipeline(steps)


def resampled_counts(pipeline: Pipeline, y_train: np.ndarray) -> dict[str, int]:
    """Rows per class that the forest was fitted on, after SMOTE."""
    counts = Counter(str(label) for label in y_train)
    smote = pipeline.named_steps.get("smote")
    for label, added in getattr(smote, "sampling_strategy_", {}).items():
        counts[str(label)] += int(added)
    return dict(counts)


def for_serving(pipeline: Pipeline, compact: bool) -> sklearn_pipeline.Pipeline:
    """The fitted pipeline as it is saved and served.

    - the sampler is dropped: it does nothing at predict time, after fit it holds training rows,
      and its strategy classes live here, in a module the saved model does not carry;
    - SelectKBest is replaced by its fixed column list (it re-sorts all scores on every call);
      with the compact forest and no linear scores, the selection is folded into the forest;
    - optionally, the forest is converted to its compact, lossless form;
    - it is scikit-learn's own Pipeline: without a sampler, nothing needs imbalanced-learn's, and
      a server loading the model does not import imbalanced-learn (about 0.25 s of start-up).
    """
    named = dict(pipeline.steps)
    columns = named["select"].get_support(indices=True) if "select" in named else None
    fold_selection = compact and columns is not None and "scores" not in named
    steps: list[tuple[str, Any]] = [("features", named["features"])]
    if columns is not None and not fold_selection:
        steps.append(("select", FixedColumns(columns)))
    if "scores" in named:
        steps.append(("scores", named["scores"]))
    forest = named["forest"]
    if isinstance(forest, ChunkedCompactForest):
        if not compact:
            raise ValueError(
                "a forest fitted in compact chunks has no stock form: fit with compact=False"
            )
        forest = copy.copy(forest.compact_)  # select_columns below must not change the fitted one
    elif compact:
        forest = CompactForest.from_forest(forest)
    if fold_selection:
        forest.select_columns(columns)
    steps.append(("forest", forest))
    return sklearn_pipeline.Pipeline(steps)
