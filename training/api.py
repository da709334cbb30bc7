"""One training run, end to end: load → split → fit → evaluate → log → register → gate.

Aliases move only at the very end, after everything else succeeded, so a failed or interrupted run
leaves the registry as it found it (a version it registered keeps its complete model files).
"""

from __future__ import annotations

import logging
import platform
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import mlflow.data
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from sklearn.model_selection import StratifiedKFold, cross_val_score, train_test_split

from training import tracking
from training.catalog import Catalog, load_catalog
from training.config import TrainConfig
from training.errors import TrackingError
from training.evaluate import Evaluation, evaluate, write_reports
from training.pipeline import build_pipeline, feature_spec, for_serving, resampled_counts

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    run_id: str
    model_uri: str
    model_version: str
    promoted: bool
    decision: str
    metrics: dict[str, float] = field(default_factory=dict)
    champion_f1: float | None = None


@contextmanager
def stage(name: str, timings: dict[str, float]) -> Iterator[None]:
    """Log the start and duration of a long step."""
    log.info("%s ...", name)
    start = time.perf_counter()
    yield
    timings[name] = time.perf_counter() - start
    log.info("%s done in %.1fs", name, timings[name])


def split(catalog: Catalog, config: TrainConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    return train_test_split(
        catalog.frame,
        test_size=config.test_size,
        random_state=config.seed,
        stratify=catalog.frame["label"],
    )


def model_input(frame: pd.DataFrame, config: TrainConfig) -> pd.DataFrame:
    """The columns the model reads, as the serving API passes them."""
    present = [c for c in feature_spec(config).columns() if c in frame.columns]
    return frame[present].reset_index(drop=True)


def log_dataset(catalog: Catalog, train: pd.DataFrame, test: pd.DataFrame) -> None:
    counts = {f"data_{k}": float(v) for k, v in catalog.counts.items()}
    counts.update({"data_train_rows": float(len(train)), "data_eval_rows": float(len(test))})
    mlflow.log_metrics(counts)
    mlflow.set_tags({"data.source": catalog.source, "data.sha256": catalog.sha256})
    mlflow.log_dict(
        {
            "source": catalog.source,
            "sha256": catalog.sha256,
            "counts": catalog.counts,
            "class_counts": catalog.labels.value_counts().to_dict(),
        },
        "data/summary.json",
    )
    for frame, context in ((train, "training"), (test, "evaluation")):
        with warnings.catch_warnings():  # MLflow registers two local-file source types
            warnings.simplefilter("ignore", UserWarning)
            dataset = mlflow.data.from_pandas(  # type: ignore[attr-defined]
                frame[["label"]],
                source=catalog.source,
                name=f"{Path(catalog.source).name}@{catalog.sha256[:12]}",
                targets="label",
            )
        mlflow.log_input(dataset, context=context)


def fit_and_evaluate(
    config: TrainConfig,
    train: pd.DataFrame,
    test: pd.DataFrame,
    smote: bool,
    timings: dict[str, float],
) -> tuple[Any, Evaluation, dict[str, int]]:
    y_train = train["label"].to_numpy()
    pipeline = build_pipeline(config, y_train, smote=smote)
    with stage(f"fitting ({'with' if smote else 'without'} SMOTE, {len(train)} rows)", timings):
        pipeline.fit(model_input(train, config), y_train)
    after = resampled_counts(pipeline, y_train)
    with stage("compacting the forest", timings):
        served = for_serving(pipeline, config.compact)
    with stage("evaluating", timings):
        proba = served.predict_proba(model_input(test, config))
        evaluation = evaluate(test["label"].to_numpy(), proba, served.classes_)
    return served, evaluation, after


def cross_validate(config: TrainConfig, train: pd.DataFrame) -> dict[str, float]:
    y = train["label"].to_numpy()
    folds = StratifiedKFold(config.cv_folds, shuffle=True, random_state=config.seed)
    scores = cross_val_score(
        build_pipeline(config, y), model_input(train, config), y, cv=folds, scoring="f1_macro"
    )
    return {"cv_f1_macro_mean": float(np.mean(scores)), "cv_f1_macro_std": float(np.std(scores))}


def compare_without_smote(
    config: TrainConfig, train: pd.DataFrame, test: pd.DataFrame, timings: dict[str, float]
) -> dict[str, float]:
    with mlflow.start_run(run_name="without-smote", nested=True):
        mlflow.log_param("smote", False)
        _, evaluation, _ = fit_and_evaluate(config, train, test, smote=False, timings=timings)
        mlflow.log_metrics(evaluation.metrics)
    return {f"no_smote_{k}": v for k, v in evaluation.metrics.items()}


def model_metadata(
    config: TrainConfig, catalog: Catalog, evaluation: Evaluation, run_id: str
) -> dict[str, Any]:
    return {
        "model_name": config.model_name,
        "run_id": run_id,
        "metrics": evaluation.metrics,
        "input_fields": list(model_input(catalog.frame.head(1), config).columns),
        "data_sha256": catalog.sha256,
        "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
    }


def train(config: TrainConfig) -> TrainResult:
    """Run one training and return what was registered and decided."""
    timings: dict[str, float] = {}
    tracking_uri = tracking.resolve_tracking_uri(config.tracking_uri)
    with stage(f"connecting to MLflow at {tracking_uri}", timings):
        client = tracking.connect(tracking_uri, config.tracking_timeout_seconds)
        experiment = tracking.with_retries(
            lambda: mlflow.set_experiment(config.experiment_name),
            config.tracking_timeout_seconds,
            "MLflow tracking server",
        )
    with stage("loading the catalog", timings):
        catalog = load_catalog(config)
        train_rows, test_rows = split(catalog, config)
    log.info(
        "%d rows in %d classes (%d train, %d eval)",
        len(catalog.frame),
        catalog.counts["classes"],
        len(train_rows),
        len(test_rows),
    )
    try:
        with mlflow.start_run(
            experiment_id=experiment.experiment_id, run_name=config.run_name
        ) as run:
            return _tracked_run(
                config, client, catalog, train_rows, test_rows, run.info.run_id, timings
            )
    except MlflowException as error:
        raise TrackingError(f"MLflow request failed: {str(error).splitlines()[0][:300]}") from None


def _tracked_run(
    config: TrainConfig,
    client: Any,
    catalog: Catalog,
    train_rows: pd.DataFrame,
    test_rows: pd.DataFrame,
    run_id: str,
    timings: dict[str, float],
) -> TrainResult:
    mlflow.log_params({k: str(v) for k, v in config.model_dump().items()})
    log_dataset(catalog, train_rows, test_rows)
    served, evaluation, after = fit_and_evaluate(
        config, train_rows, test_rows, config.smote, timings
    )
    metrics = dict(evaluation.metrics)
    if config.compare_without_smote and config.smote:
        metrics |= compare_without_smote(config, train_rows, test_rows, timings)
    if config.cv_folds > 1:
        with stage(f"{config.cv_folds}-fold cross-validation", timings):
            metrics |= cross_validate(config, train_rows)
    mlflow.log_metrics(metrics)
    before = {str(k): int(v) for k, v in Counter(train_rows["label"]).items()}
    with tempfile.TemporaryDirectory() as scratch:
        for path in write_reports(evaluation, before, after, Path(scratch)):
            mlflow.log_artifact(str(path), artifact_path="evaluation")
    mlflow.log_metrics(
        {f"f1_class_{_metric_name(k)}": float(v) for k, v in evaluation.per_class["f1"].items()}
    )

    with stage("logging and registering the model", timings):
        example = model_input(test_rows, config).head(3)
        model_uri = tracking.log_model(
            served,
            model_metadata(config, catalog, evaluation, run_id),
            example,
            tuple(config.numeric_columns),
        )
        version = tracking.register(client, model_uri, run_id, config.model_name)
    # The champion gets every raw column: it may read fields this run's model does not.
    eval_input = test_rows.drop(columns=["label"]).reset_index(drop=True)
    with stage("re-scoring the champion", timings):
        decision = tracking.decide(
            client,
            config.model_name,
            metrics["f1_macro"],
            eval_input,
            test_rows["label"].to_numpy(),
            config.force_promote,
        )
    mlflow.log_metrics({f"time_{_metric_name(k)}_seconds": v for k, v in timings.items()})
    mlflow.set_tags(
        {
            "promotion.decision": "promoted" if decision.promote else "kept",
            "promotion.reason": decision.reason,
            "model.version": version.version,
        }
    )
    if decision.champion_f1 is not None:
        mlflow.log_metric("champion_f1_macro_rescored", decision.champion_f1)
    if decision.promote:
        tracking.promote(client, config.model_name, version.version)
    return TrainResult(
        run_id=run_id,
        model_uri=model_uri,
        model_version=str(version.version),
        promoted=decision.promote,
        decision=decision.reason,
        metrics=metrics,
        champion_f1=decision.champion_f1,
    )


def _metric_name(text: str) -> str:
    return "".join(c if c.isalnum() or c in "_-." else "_" for c in str(text).lower())[:200]
