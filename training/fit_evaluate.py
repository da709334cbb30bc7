"""Fitting a single-label pipeline and scoring it: on the holdout, by k-fold cross-validation on
the training rows, and without SMOTE in a nested run for comparison."""

from __future__ import annotations

from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold

from training import tracking
from training.config import TrainConfig
from training.evaluate import Evaluation, evaluate
from training.pipeline import build_pipeline, for_serving, model_input, resampled_counts
from training.retries import RetryPolicy
from training.run_writer import RunWriter
from training.stages import stage


def fit_and_evaluate(
    config: TrainConfig,
    train: pd.DataFrame,
    test: pd.DataFrame,
    smote: bool,
    timings: dict[str, float],
) -> tuple[Any, Evaluation, dict[str, int]]:
    """The model as served, its evaluation on `test`, and its rows per class (after SMOTE)."""
    y_train = train["label"].to_numpy()
    pipeline = build_pipeline(config, y_train, smote=smote)
    what = f"fitting {'with' if smote else 'without'} SMOTE"
    with stage(f"{what} ({len(train)} rows)", timings, key=what):
        pipeline.fit(model_input(train, config), y_train)
    after = resampled_counts(pipeline, y_train)
    with stage("compacting the forest", timings):
        served = for_serving(pipeline, config.compact)
    with stage("evaluating", timings):
        proba = served.predict_proba(model_input(test, config))
        evaluation = evaluate(test["label"].to_numpy(), proba, served.classes_)
    return served, evaluation, after


def cross_validate(config: TrainConfig, train: pd.DataFrame) -> dict[str, float]:
    """Macro-F1 over stratified folds of the training rows; each fold's pipeline is built for
    its own rows (SMOTE's neighbours fit the smallest class of that fold)."""
    y = train["label"].to_numpy()
    inputs = model_input(train, config)
    folds = StratifiedKFold(config.cv_folds, shuffle=True, random_state=config.seed)
    scores = []
    for fit_rows, test_rows in folds.split(inputs, y):
        pipeline = build_pipeline(config, y[fit_rows]).fit(inputs.iloc[fit_rows], y[fit_rows])
        predicted = pipeline.predict(inputs.iloc[test_rows])
        scores.append(f1_score(y[test_rows], predicted, average="macro"))
    return {"cv_f1_macro_mean": float(np.mean(scores)), "cv_f1_macro_std": float(np.std(scores))}


def compare_without_smote(
    config: TrainConfig,
    policy: RetryPolicy,
    client: MlflowClient,
    train: pd.DataFrame,
    test: pd.DataFrame,
    timings: dict[str, float],
) -> dict[str, float]:
    """The same training without SMOTE, in a nested run (created and ended with retries)."""
    parent = mlflow.active_run()
    assert parent is not None, "called inside the training run"
    run_id = tracking.start_run_once(
        policy, client, parent.info.experiment_id, "without-smote", parent.info.run_id
    )
    writer = RunWriter(policy)
    try:
        writer.params({"smote": False})
        _, evaluation, _ = fit_and_evaluate(config, train, test, smote=False, timings=timings)
        writer.metrics(evaluation.metrics)
    except BaseException:
        tracking.end_failed_run(policy, client, run_id)
        raise
    tracking.end_run(policy, client, run_id, "FINISHED")
    return {f"no_smote_{k}": v for k, v in evaluation.metrics.items()}
