"""What a trial does: draw options, score them by k-fold macro-F1 on the training split, and log
the trial as a nested MLflow run under the study's parent run.

The holdout split stays untouched: the final comparison (README, bench/bench_tuning.py) uses it.
The folds are fixed by the seed, so every trial — and the defaults — is scored on the same rows.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
import pandas as pd
from mlflow.entities import Param
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
from sklearn.model_selection import StratifiedKFold

from training.catalog import Catalog, load_catalog
from training.catalog_split import split_catalog, split_definition
from training.config import TrainConfig
from training.evaluate import macro_f1
from training.pipeline import build_pipeline, model_input
from training.tuning.space import SearchSpace

log = logging.getLogger(__name__)

BASELINE = "baseline"
MLFLOW_RUN = "mlflow_run_id"
WORKER_PID = "worker_pid"


def holdout_split(catalog: Catalog, config: TrainConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The training and holdout rows, exactly as `product-train` splits them (by a hash of each
    product's key: a product stays on its side in every run)."""
    return split_catalog(catalog, split_definition(config))


@dataclass
class Folds:
    """The training split and the k (fit, validation) index pairs every trial is scored on."""

    train: pd.DataFrame
    splits: list[tuple[np.ndarray, np.ndarray]]


def make_folds(config: TrainConfig, k: int) -> Folds:
    train, _ = holdout_split(load_catalog(config), config)
    train = train.reset_index(drop=True)
    folds = StratifiedKFold(k, shuffle=True, random_state=config.seed)
    return Folds(train, list(folds.split(train, train["label"])))


def score_folds(config: TrainConfig, folds: Folds, report: Callable[[int, float], None]) -> float:
    """Mean macro-F1 over the folds; `report(fold, score)` after each one (it may prune)."""
    scores = []
    for number, (fit_rows, check_rows) in enumerate(folds.splits):
        fit, check = folds.train.iloc[fit_rows], folds.train.iloc[check_rows]
        y_fit = fit["label"].to_numpy()
        pipeline = build_pipeline(config, y_fit)
        pipeline.fit(model_input(fit, config), y_fit)
        predicted = pipeline.predict(model_input(check, config))
        scores.append(macro_f1(check["label"].to_numpy(), predicted))
        report(number, scores[-1])
    return float(np.mean(scores))


@dataclass
class ParentRun:
    """Where trial runs are logged: the tracking client, experiment and the study's parent run."""

    client: MlflowClient
    experiment_id: str
    run_id: str
    study_name: str


@contextmanager
def trial_run(parent: ParentRun, trial: optuna.Trial, params: dict[str, Any]) -> Iterator[str]:
    """A nested MLflow run for the trial; FINISHED when scored or pruned, else FAILED/KILLED."""
    baseline = bool(trial.user_attrs.get(BASELINE))
    run = parent.client.create_run(
        parent.experiment_id,
        run_name=f"{parent.study_name}-{'defaults' if baseline else f'trial-{trial.number}'}",
        tags={
            MLFLOW_PARENT_RUN_ID: parent.run_id,
            "optuna.study": parent.study_name,
            "optuna.trial": str(trial.number),
            "optuna.baseline": str(baseline).lower(),
            "optuna.worker": str(trial.user_attrs.get("worker", "")),
        },
    )
    run_id = run.info.run_id
    status, state = "FAILED", "FAIL"
    try:  # from here on, an interrupt (SIGTERM) ends the run as KILLED, never leaves it RUNNING
        trial.set_user_attr(MLFLOW_RUN, run_id)
        parent.client.log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()])
        yield run_id
        status, state = "FINISHED", "COMPLETE"
    except optuna.TrialPruned:
        status, state = "FINISHED", "PRUNED"
        raise
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        try:
            parent.client.set_tag(run_id, "optuna.state", state)
        finally:  # an interrupt while tagging must not leave the run RUNNING
            parent.client.set_terminated(run_id, status)


def end_stale_trial_run(client: MlflowClient) -> Callable[[optuna.Study, Any], None]:
    """Heartbeat callback: a trial whose worker died ends its MLflow run as KILLED."""

    def end(_study: optuna.Study, trial: Any) -> None:
        run_id = trial.user_attrs.get(MLFLOW_RUN)
        log.warning("trial %d lost its worker; marked failed", trial.number)
        if run_id:
            client.set_terminated(run_id, "KILLED")

    return end


class Objective:
    """Callable Optuna objective: the trial's options → mean k-fold macro-F1."""

    def __init__(
        self, base: TrainConfig, space: SearchSpace, folds: Folds, parent: ParentRun, worker: int
    ) -> None:
        self.base, self.space, self.folds, self.parent = base, space, folds, parent
        self.worker = worker

    def params(self, trial: optuna.Trial) -> dict[str, Any]:
        if not trial.user_attrs.get(BASELINE):
            return self.space.suggest(trial)
        # The defaults trial: values inside the space are recorded as its params (the sampler
        # learns from them); values outside it are used as they are.
        values = {}
        configured = self.base.model_dump(mode="json")
        for name, param in self.space.root.items():
            value = configured[name]
            values[name] = param.suggest(trial, name) if param.contains(value) else value
        return values

    def __call__(self, trial: optuna.Trial) -> float:
        started = time.perf_counter()
        trial.set_user_attr("worker", self.worker)
        trial.set_user_attr(WORKER_PID, os.getpid())
        params = self.params(trial)
        config = TrainConfig.model_validate(self.base.model_dump(mode="json") | params)
        run_id = ""
        try:
            with trial_run(self.parent, trial, params) as run_id:
                score = score_folds(config, self.folds, self._reporter(trial, run_id))
                seconds = time.perf_counter() - started
                self.parent.client.log_metric(run_id, "cv_f1_macro", score)
                self.parent.client.log_metric(run_id, "trial_seconds", seconds)
            log.info("trial %d: macro-F1 %.4f in %.0fs %s", trial.number, score, seconds, params)
        except KeyboardInterrupt:
            # An interrupt just as the trial ended (its run already FINISHED, or being ended)
            # still fails the trial in Optuna: its run says so too.
            if run_id:
                self.parent.client.set_terminated(run_id, "KILLED")
            raise
        return score

    def _reporter(self, trial: optuna.Trial, run_id: str) -> Callable[[int, float], None]:
        scores: list[float] = []

        def report(fold: int, score: float) -> None:
            scores.append(score)
            self.parent.client.log_metric(run_id, "cv_f1_macro_fold", score, step=fold)
            trial.report(float(np.mean(scores)), fold)
            if not trial.user_attrs.get(BASELINE) and trial.should_prune():
                log.info("trial %d pruned after fold %d", trial.number, fold + 1)
                raise optuna.TrialPruned(f"mean macro-F1 {np.mean(scores):.4f} after fold {fold}")

        return report
