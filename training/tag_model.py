"""Fitting a multi-label (or category-path) model: one multi-output forest over all tags.

- Features and the chi2 selection are the single-label pipeline's (chi2 sums its score over
  the tags); the forest learns the 0/1 tag matrix directly (scikit-learn forests take one).
- SMOTE is not defined for label sets. Its role, lifting rare categories, is played by two things:
  per-tag decision thresholds (a rare tag is answered from a lower probability), and, with
  `--tag-weighting rare_tags` (the default), row weights that grow with the rarity of a row's
  rarest tag. The forest's own class weights cannot do it: for several outputs scikit-learn
  multiplies them, one factor per tag.
- The forest is fitted `--trees-per-chunk` trees at a time and each chunk compacted before the
  next, because a multi-output scikit-learn tree stores a value per node *and tag*.
- Thresholds are chosen on the training rows only: each tree predicts the rows it did not see
  (its out-of-bag rows), and each tag takes the threshold that maximises its F1 on those
  predictions. The holdout is never looked at.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from imblearn.pipeline import Pipeline
from scipy import sparse
from sklearn import pipeline as sklearn_pipeline

from product_model.forest import CompactForest
from product_model.forest_build import CompactForestBuilder
from product_model.tags import PATH_SEPARATOR, TagDecoder
from training.config import TrainConfig
from training.pipeline import (
    build_forest,
    build_pipeline,
    model_input,
    warn_if_max_features_above,
)
from training.tag_catalog import indicator_matrix

log = logging.getLogger(__name__)
THRESHOLD_GRID = np.round(np.arange(0.02, 0.96, 0.02), 2)
MAX_ROW_WEIGHT = 10.0


@dataclass
class TagModel:
    served: Pipeline  # features -> compact multi-output forest; classes_ are the tags
    decoder: TagDecoder
    out_of_bag: np.ndarray  # training rows x tags, NaN where no tree left the row out


def rare_tag_weights(Y: np.ndarray) -> np.ndarray:
    """Per row, sqrt(count of the most common tag / count of the row's rarest tag), capped at
    MAX_ROW_WEIGHT and scaled to a mean of 1: rows carrying a rare tag count more."""
    counts = np.maximum(Y.sum(axis=0), 1).astype(np.float64)
    rarity = np.where(Y > 0, counts.max() / counts[None, :], 1.0).max(axis=1)
    weights = np.minimum(np.sqrt(rarity), MAX_ROW_WEIGHT)
    return weights / weights.mean()


def best_thresholds(Y: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """Per tag, the grid threshold with the best F1 on (Y, proba), the middle one when several
    tie; rows with NaN are skipped. A tag never predicted right keeps 0.5."""
    seen = ~np.isnan(proba).any(axis=1)
    Y, proba = Y[seen].astype(bool), proba[seen]
    f1 = np.zeros((len(THRESHOLD_GRID), Y.shape[1]))
    for i, threshold in enumerate(THRESHOLD_GRID):
        predicted = proba >= threshold
        tp = (predicted & Y).sum(axis=0)
        f1[i] = 2 * tp / np.maximum(predicted.sum(axis=0) + Y.sum(axis=0), 1)
    chosen = np.full(Y.shape[1], 0.5)
    for tag in np.flatnonzero(f1.max(axis=0) > 0):
        best = np.flatnonzero(f1[:, tag] >= f1[:, tag].max() - 1e-12)
        chosen[tag] = THRESHOLD_GRID[best[len(best) // 2]]
    return chosen


def feature_steps(config: TrainConfig) -> Pipeline:
    """The single-label pipeline's features and chi2 selection, without linear class scores
    (fitted per class, not per tag), sampler or forest."""
    words_only = config.model_copy(update={"linear_scores": False})
    steps = build_pipeline(words_only, np.array([]), smote=False).steps
    return Pipeline([step for step in steps if step[0] in ("features", "select")])


def tag_forest(config: TrainConfig, trees: int, chunk: int) -> Any:
    """One chunk's forest: no class weights (see the module's docstring), bootstrapped so that
    every tree has out-of-bag rows, its own seed."""
    chunk_config = config.model_copy(update={"n_estimators": trees, "class_weight": "none"})
    forest = build_forest(chunk_config)
    forest.set_params(bootstrap=True, random_state=config.seed + 7919 * chunk)
    return forest


def add_out_of_bag(forest: Any, X: sparse.csr_matrix, total: np.ndarray, seen: np.ndarray) -> None:
    """Add each tree's probabilities of 1 on its out-of-bag rows to `total` (counted in `seen`)."""
    positive = [list(classes).index(1) if 1 in classes else -1 for classes in forest.classes_]
    for tree, in_bag in zip(forest.estimators_, forest.estimators_samples_, strict=True):
        out = np.ones(X.shape[0], dtype=bool)
        out[in_bag] = False
        rows = np.flatnonzero(out)
        for k, proba in enumerate(tree.predict_proba(X[rows])):
            if positive[k] >= 0:
                total[rows, k] += proba[:, positive[k]]
        seen[rows] += 1


def fit_tag_model(
    config: TrainConfig,
    train: pd.DataFrame,
    tags: list[str],
    task: str,
    separator: str = PATH_SEPARATOR,
) -> TagModel:
    """Fit features, selection and the chunked forest on `train`; choose the thresholds. A path
    model's decoder reads node names joined by `separator` (the catalog's joiner)."""
    Y = indicator_matrix(train["label"], tags)
    if config.linear_scores:
        log.info("linear class scores (--linear-scores) apply to single_label models only")
    prefix = feature_steps(config)
    X = sparse.csr_matrix(prefix.fit_transform(model_input(train, config), Y), dtype=np.float32)
    warn_if_max_features_above(config.max_features, X.shape[1])
    weights = rare_tag_weights(Y) if config.tag_weighting == "rare_tags" else None
    total, seen = np.zeros(Y.shape, dtype=np.float64), np.zeros(len(Y), dtype=np.int64)
    builder: CompactForestBuilder | None = None
    done, chunk = 0, 0
    while done < config.n_estimators:
        trees = min(config.trees_per_chunk, config.n_estimators - done)
        forest = tag_forest(config, trees, chunk)
        forest.fit(X, Y, sample_weight=weights)
        add_out_of_bag(forest, X, total, seen)
        builder = builder or CompactForestBuilder(forest, tags)
        builder.add(forest)
        done, chunk = done + trees, chunk + 1
        log.info("fitted %d of %d trees", done, config.n_estimators)
    assert builder is not None
    out_of_bag = np.where(seen[:, None] > 0, total / np.maximum(seen, 1)[:, None], np.nan)
    thresholds = best_thresholds(Y, out_of_bag)
    decoder = TagDecoder(task, tuple(tags), tuple(float(t) for t in thresholds), separator)
    return TagModel(
        serving_pipeline(prefix, CompactForest.from_builder(builder)), decoder, out_of_bag
    )


def serving_pipeline(prefix: Pipeline, forest: CompactForest) -> sklearn_pipeline.Pipeline:
    """Features and the compact forest, the chi2 selection folded into the forest."""
    named = dict(prefix.steps)
    if "select" in named:
        forest.select_columns(named["select"].get_support(indices=True))
    return sklearn_pipeline.Pipeline([("features", named["features"]), ("forest", forest)])
