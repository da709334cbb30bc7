"""What a trial does: draw options, score them on the study's folds (`folds.py`: the task's own
model and gate metric), and log the trial as a nested MLflow run under the study's parent run."""

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
from mlflow.entities import Param
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
from pydantic import ValidationError

from training.config import TrainConfig
from training.config_files import describe_problems
from training.interrupts import raise_if_interrupted
from training.tuning.folds import Folds, metric_label, score_folds
from training.tuning.folds import holdout_split as holdout_split  # bench/bench_tuning.py's
from training.tuning.folds import make_folds as make_folds
from training.tuning.space import SearchSpace, given_options

log = logging.getLogger(__name__)

BASELINE = "baseline"
MLFLOW_RUN = "mlflow_run_id"
WORKER_PID = "worker_pid"


class DrawnOptionsError(Exception):
    """A trial drew options `product-train` rejects: that trial fails, the study goes on (the
    search-space checks make this rare: a study stored before they existed, say)."""


def trial_config(base: TrainConfig, params: dict[str, Any]) -> TrainConfig:
    """The options one trial trains with: those the user gave, and the trial's draws (validated
    as `product-train --config best.yaml` would validate them); DrawnOptionsError if invalid."""
    try:
        return TrainConfig.model_validate(given_options(base) | params)
    except ValidationError as error:
        raise DrawnOptionsError(describe_problems(error, "drawn options")) from None


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
    """Callable Optuna objective: the trial's options → their mean k-fold score (the task's gate
    metric, logged as `cv_METRIC`: `cv_f1_macro` for single_label, `cv_f1_micro` for tags)."""

    def __init__(
        self, base: TrainConfig, space: SearchSpace, folds: Folds, parent: ParentRun, worker: int
    ) -> None:
        self.base, self.space, self.folds, self.parent = base, space, folds, parent
        self.worker = worker
        self.rejected_in_a_row = 0  # trials whose drawn options were invalid, since the last good
        self.last_rejection = ""

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
        metric = self.folds.metric
        run_id = ""
        try:
            with trial_run(self.parent, trial, params) as run_id:
                config = self._checked_config(trial, params)
                score = score_folds(config, self.folds, self._reporter(trial, run_id))
                seconds = time.perf_counter() - started
                self.parent.client.log_metric(run_id, f"cv_{metric}", score)
                self.parent.client.log_metric(run_id, "trial_seconds", seconds)
            shown = f"{metric_label(metric)} {score:.4f}"
            log.info("trial %d: %s in %.0fs %s", trial.number, shown, seconds, params)
        except KeyboardInterrupt:
            # An interrupt just as the trial ended (its run already FINISHED, or being ended)
            # still fails the trial in Optuna: its run says so too.
            if run_id:
                self.parent.client.set_terminated(run_id, "KILLED")
            raise
        return score

    def _checked_config(self, trial: optuna.Trial, params: dict[str, Any]) -> TrainConfig:
        """The trial's options; DrawnOptionsError (the trial fails, logged) if they are invalid."""
        try:
            config = trial_config(self.base, params)
        except DrawnOptionsError as error:
            self.rejected_in_a_row += 1
            self.last_rejection = str(error)
            log.warning("trial %d failed, the study goes on: %s %s", trial.number, error, params)
            raise
        self.rejected_in_a_row = 0
        return config

    def _reporter(self, trial: optuna.Trial, run_id: str) -> Callable[[int, float], None]:
        scores: list[float] = []
        metric = self.folds.metric

        def report(fold: int, score: float) -> None:
            raise_if_interrupted()  # a signal whose KeyboardInterrupt the fold's fit swallowed
            scores.append(score)
            self.parent.client.log_metric(run_id, f"cv_{metric}_fold", score, step=fold)
            trial.report(float(np.mean(scores)), fold)
            if not trial.user_attrs.get(BASELINE) and trial.should_prune():
                log.info("trial %d pruned after fold %d", trial.number, fold + 1)
                mean = f"mean {metric_label(metric)} {np.mean(scores):.4f}"
                raise optuna.TrialPruned(f"{mean} after fold {fold}")

        return report
