"""The folds every trial is scored on, and its score: the task's gate metric, averaged over k folds
of the training split.

- single_label: `StratifiedKFold` on the label; each fold fits the single-label pipeline and is
  scored by macro-F1.
- multilabel, path: plain `KFold` (stratification is not defined for label sets); each fold fits
  the model `product-train` fits for the task (`fit_tag_model`: features, the chunked
  multi-output forest, per-tag thresholds from the fold's own out-of-bag rows) on the tags found
  on 2+ of its rows, and is scored by the gate's metric for the task (`--gate-metric`; micro-F1
  for tags, samples-F1 for paths) on the tag sets the model answers.

The holdout split stays untouched: the final comparison (README, bench/bench_tuning.py) uses it.
The folds are fixed by the seed, so every trial — and the defaults — is scored on the same rows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold, StratifiedKFold

from product_model.tags import PATH_SEPARATOR, SINGLE_LABEL
from training.catalog import Catalog, load_catalog
from training.catalog_split import check_min_df, split_catalog, split_definition
from training.config import TrainConfig
from training.errors import DataError
from training.evaluate import macro_f1
from training.pipeline import build_pipeline, model_input
from training.tag_catalog import load_tag_catalog, split_tag_catalog
from training.tag_evaluate import set_scores
from training.tag_model import fit_tag_model

# How each gate metric is named in log lines, the summary and the best config's header.
METRIC_NAMES = {"f1_macro": "macro-F1", "f1_micro": "micro-F1", "f1_samples": "samples-F1"}


def metric_label(metric: str) -> str:
    """`f1_micro` → `micro-F1` (a metric without a short name is shown as it is)."""
    return METRIC_NAMES.get(metric, metric)


def holdout_split(catalog: Catalog, config: TrainConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The training and holdout rows of a single-label catalog, exactly as `product-train` splits
    them (by a hash of each product's key: a product stays on its side in every run)."""
    return split_catalog(catalog, split_definition(config))


@dataclass
class Folds:
    """The training split, the k (fit, validation) index pairs every trial is scored on, the
    metric they are scored by, and (multilabel, path) the tags of the training split."""

    train: pd.DataFrame
    splits: list[tuple[np.ndarray, np.ndarray]]
    metric: str = "f1_macro"
    tags: list[str] = field(default_factory=list)
    joiner: str = PATH_SEPARATOR  # how a path catalog's node names join their levels
    source: str = ""  # the catalog file, and its SHA-256 (as `product-train` tags its run)
    sha256: str = ""

    def data_tags(self) -> dict[str, str]:
        """The catalog's tags for an MLflow run: `data.source` and `data.sha256`."""
        return {"data.source": self.source, "data.sha256": self.sha256}


def make_folds(config: TrainConfig, k: int) -> Folds:
    """The folds of the training split that `product-train` would train on for `config.task`."""
    if config.task != SINGLE_LABEL:
        return _tag_folds(config, k)
    catalog = load_catalog(config)
    train, _ = holdout_split(catalog, config)
    train = train.reset_index(drop=True)
    folds = StratifiedKFold(k, shuffle=True, random_state=config.seed)
    splits = list(folds.split(train, train["label"]))
    return Folds(
        train, splits, config.task_gate_metric, source=catalog.source, sha256=catalog.sha256
    )


def _tag_folds(config: TrainConfig, k: int) -> Folds:
    catalog = load_tag_catalog(config)
    train, _, tags = split_tag_catalog(catalog, split_definition(config))
    check_min_df(config, train)
    train = train.reset_index(drop=True)
    if len(train) < 2 * k:
        raise DataError(
            f"{len(train)} training rows cannot make {k} folds of 2+ rows; use fewer --folds"
        )
    folds = KFold(k, shuffle=True, random_state=config.seed)
    return Folds(
        train,
        list(folds.split(train)),
        config.task_gate_metric,
        tags,
        catalog.joiner,
        catalog.source,
        catalog.sha256,
    )


def score_folds(config: TrainConfig, folds: Folds, report: Callable[[int, float], None]) -> float:
    """The mean score over the folds; `report(fold, score)` after each one (it may prune)."""
    scores = []
    for number, (fit_rows, check_rows) in enumerate(folds.splits):
        fit, check = folds.train.iloc[fit_rows], folds.train.iloc[check_rows]
        if config.task == SINGLE_LABEL:
            scores.append(_single_label_score(config, fit, check))
        else:
            scores.append(_tag_score(config, fit, check, folds, number))
        report(number, scores[-1])
    return float(np.mean(scores))


def _single_label_score(config: TrainConfig, fit: pd.DataFrame, check: pd.DataFrame) -> float:
    y_fit = fit["label"].to_numpy()
    pipeline = build_pipeline(config, y_fit)
    pipeline.fit(model_input(fit, config), y_fit)
    predicted = pipeline.predict(model_input(check, config))
    return macro_f1(check["label"].to_numpy(), predicted)


def _tag_score(
    config: TrainConfig, fit: pd.DataFrame, check: pd.DataFrame, folds: Folds, number: int
) -> float:
    """The fold's tag model scored on its validation rows; a tag it could not learn (on fewer
    than 2 of its fitting rows) counts as missed wherever the truth has it."""
    counts = Counter(tag for tags in fit["label"] for tag in tags)
    tags = sorted(tag for tag, n in counts.items() if n >= 2)
    if len(tags) < 2:
        raise DataError(
            f"fold {number + 1} of the training split has {len(tags)} tag(s) on 2+ of its rows; "
            "a tag model needs 2 or more (use fewer --folds, or a catalog with more rows)"
        )
    model = fit_tag_model(config, fit, tags, config.task, folds.joiner)
    predicted = model.decoder.label_sets(model.served.predict_proba(model_input(check, config)))
    return set_scores(check["label"].tolist(), predicted, folds.tags)[folds.metric]
