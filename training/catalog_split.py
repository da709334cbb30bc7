"""A loaded catalog's training and holdout rows for one run, and the options checked against them
before anything is fitted (so a run that cannot succeed stops before MLflow is contacted)."""

from __future__ import annotations

import logging

import pandas as pd

from training.catalog import Catalog
from training.config import TrainConfig
from training.errors import ConfigError, DataError
from training.split import SplitDefinition, holdout_split

log = logging.getLogger(__name__)


def check_min_df(config: TrainConfig, train_rows: pd.DataFrame) -> None:
    """Stop before fitting when no term could be in --min-df training products."""
    if config.min_df > len(train_rows):
        raise ConfigError(
            f"--min-df {config.min_df} is more than the {len(train_rows)} training rows, so no "
            "term could be kept; lower it"
        )


def check_cv_folds(config: TrainConfig, train_rows: pd.DataFrame) -> None:
    """Stop before fitting when a class has fewer training rows than --cv-folds."""
    if config.cv_folds < 2:
        return
    counts = train_rows["label"].value_counts()
    if counts.iloc[-1] < config.cv_folds:
        raise ConfigError(
            f"--cv-folds {config.cv_folds}: class '{counts.index[-1]}' has only "
            f"{counts.iloc[-1]} training rows, fewer than the folds; use fewer folds or a "
            "higher --min-class-size"
        )


def split_definition(config: TrainConfig) -> SplitDefinition:
    """The holdout split these options define (the same in every run on the same catalog)."""
    return SplitDefinition(config.test_size, config.id_column, tuple(config.text_columns))


def split_catalog(
    catalog: Catalog, definition: SplitDefinition
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training and holdout rows; classes with fewer than 2 training rows are dropped (warned)."""
    train, holdout = holdout_split(catalog.frame, definition)
    sizes = train["label"].value_counts()
    too_few = sorted(set(catalog.frame["label"]) - set(sizes[sizes >= 2].index))
    if too_few:
        log.warning(
            "classes with fewer than 2 training rows after the holdout split are dropped: %s "
            "(raise --min-class-size to drop or fold such classes up front)",
            ", ".join(too_few[:20]),
        )
        train = train[~train["label"].isin(too_few)]
        holdout = holdout[~holdout["label"].isin(too_few)]
    if train["label"].nunique() < 2 or holdout.empty:
        raise DataError(
            f"{catalog.source}: after the holdout split, {len(train)} training rows in "
            f"{train['label'].nunique()} class(es) and {len(holdout)} holdout rows remain; "
            "training needs 2+ classes and a holdout (more rows, or another --test-size)"
        )
    return train, holdout
