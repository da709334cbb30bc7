"""Joining the study with this run's options: the settings that must not change while it lives,
the creator's one-time set-up (the MLflow parent run, the output options, the defaults as the
first trial), each worker's own sampler seed; and the parent run's life: ended KILLED or FAILED
when the study stops early, set RUNNING again when it resumes (as `mlflow.start_run(run_id=...)`
resumes a run), FINISHED by the export."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import optuna
from mlflow.entities import Param
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from training import tracking
from training.config import TrainConfig
from training.tuning.objective import BASELINE, end_stale_trial_run
from training.tuning.report import OUTPUT_OPTIONS, portable_tracking_uri, with_absolute_paths
from training.tuning.space import SearchSpace, given_options
from training.tuning.storage import open_storage, redact
from training.tuning.study import create_or_join

log = logging.getLogger(__name__)

PARENT_RUN = "mlflow_parent_run_id"
EXPERIMENT = "mlflow_experiment_id"
# Options that say how or where to run, not what to train: not compared when a study resumes.
RUN_OPTIONS = frozenset(
    {"tracking_uri", "run_name", "force_promote", "tracking_timeout_seconds", "n_jobs"}
)
# Given options the best config leaves out: decisions for one run, not for every training from
# the file (a run name would name each of them alike; force_promote would skip every gate).
PER_RUN_OPTIONS = frozenset({"run_name", "force_promote"})
TRIALS_TAG = "optuna.trials"  # the budget: a tag, as a resume may change it (a param cannot)


@dataclass
class TuneOptions:
    """The tuning options proper (the training options are a `TrainConfig`)."""

    space: SearchSpace
    trials: int | None
    timeout: float | None
    workers: int
    storage: str
    study_name: str
    folds: int
    output: Path
    worker_index: int = 0
    wait_seconds: float = 86400
    heartbeat_seconds: int = 10


def study_settings(base: TrainConfig, options: TuneOptions) -> dict[str, Any]:
    """What must not change while a study lives: trials are only comparable under these."""
    values = base.model_dump(mode="json")
    return comparable_settings(
        {
            "options": {k: v for k, v in values.items() if k not in RUN_OPTIONS},
            "space": options.space.as_dict(),
            "folds": options.folds,
        }
    )


def comparable_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """`settings` with the file paths absolute, so that a study resumed from another folder (or
    one stored before paths were stored absolute) compares the files, not how they were typed."""
    if not isinstance(settings.get("options"), dict):
        return settings
    return settings | {"options": with_absolute_paths(settings["options"])}


def output_options(base: TrainConfig) -> dict[str, Any]:
    """The options the user gave, as the best config repeats them: all but `PER_RUN_OPTIONS`,
    file paths absolute and the tracking URI portable (`portable_tracking_uri`), so that
    `product-train --config best.yaml` from any folder trains on the same catalog into the same
    store, where it meets the same champion."""
    kept = {k: v for k, v in given_options(base).items() if k not in PER_RUN_OPTIONS}
    if kept.get("tracking_uri"):
        kept["tracking_uri"] = portable_tracking_uri(kept["tracking_uri"])
    return with_absolute_paths(kept)


def connect_mlflow(base: TrainConfig) -> tuple[MlflowClient, str]:
    tracking.bound_retries(base.tracking_timeout_seconds)
    uri = tracking.resolve_tracking_uri(base.tracking_uri)
    client = tracking.connect(uri)
    try:
        experiment = mlflow.set_experiment(base.experiment_name)
    except MlflowException as error:
        raise tracking.as_tracking_error(error, f"experiment {base.experiment_name}") from None
    return client, str(experiment.experiment_id)


def enqueue_defaults(study: optuna.Study, base: TrainConfig, space: SearchSpace) -> None:
    """Queue the trial that scores the configured options (those inside the space as its params;
    the others are used as they are, see `Objective.params`)."""
    configured = base.model_dump(mode="json")
    in_space = {
        name: configured[name]
        for name, param in space.root.items()
        if param.contains(configured[name])
    }
    study.enqueue_trial(in_space, user_attrs={BASELINE: True})


def queue_defaults_again(study: optuna.Study, base: TrainConfig, space: SearchSpace) -> bool:
    """Queue the defaults trial again if none completed, runs or waits (it was interrupted, or
    its worker died): the summary sets the best trial against it. True if it was queued."""
    states = (TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING)
    if any(t.user_attrs.get(BASELINE) for t in study.get_trials(deepcopy=False, states=states)):
        return False
    log.info("the defaults trial of study %r never completed: queued again", study.study_name)
    enqueue_defaults(study, base, space)
    return True


def end_parent_run(client: MlflowClient, run_id: str, error: BaseException) -> None:
    """End the parent run of a study that stops early: KILLED after an interrupt, FAILED after
    an error. The error stays what is reported: if MLflow cannot be told, the run stays RUNNING
    until the study resumes and ends."""
    status = "KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED"
    try:
        client.set_terminated(run_id, status)
    except Exception as failure:  # MLflow down: that is the error the user gets
        first = str(failure).strip().splitlines()[0][:200] if str(failure).strip() else ""
        log.warning("could not mark the study's parent run %s %s: %s", run_id, status, first)


@contextmanager
def parent_run_ended_if_stopped(client: MlflowClient, run_id: str) -> Iterator[None]:
    """Inside this, anything that stops the study (Ctrl-C, SIGTERM, an error) ends its parent
    run (`end_parent_run`) before it goes on up."""
    try:
        yield
    except BaseException as error:
        end_parent_run(client, run_id, error)
        raise


def reopen_parent_run(client: MlflowClient, run_id: str) -> None:
    """Set the parent run of a resumed study RUNNING again (it ended when the study stopped)."""
    if client.get_run(run_id).info.status != "RUNNING":
        client.update_run(run_id, status="RUNNING")


def _set_up(
    base: TrainConfig,
    options: TuneOptions,
    client: MlflowClient,
    experiment_id: str,
    data_tags: dict[str, str],
) -> Callable[[optuna.Study], None]:
    """The study creator's one-time work: the parent run, the output options, the defaults."""

    def set_up(study: optuna.Study) -> None:
        tags = {"optuna.study": study.study_name, "optuna.storage": redact(options.storage)}
        run = client.create_run(
            experiment_id, run_name=f"tune-{study.study_name}", tags=tags | data_tags
        )
        with parent_run_ended_if_stopped(client, run.info.run_id):
            _describe_study(study, base, options, client, run.info.run_id)
            study.set_user_attr(EXPERIMENT, experiment_id)
            enqueue_defaults(study, base, options.space)

    return set_up


def _describe_study(
    study: optuna.Study, base: TrainConfig, options: TuneOptions, client: MlflowClient, run_id: str
) -> None:
    """Log the study's settings and the options every trial shares (those the user gave: the
    catalog, its columns, fixed model options) to its parent run; keep in the study what the
    export repeats. A study stopped early keeps this record too."""
    fixed = output_options(base)  # absolute: `--role best` may export from another folder
    described = {"study_name": study.study_name, "folds": options.folds}
    described |= {"storage": redact(options.storage)}
    described |= {"task": base.task, "metric": base.task_gate_metric}
    params = {name: str(value) for name, value in (fixed | described).items()}
    client.log_batch(run_id, params=[Param(k, v) for k, v in params.items()])
    client.log_dict(run_id, options.space.as_dict(), "tuning/search_space.yaml")
    study.set_user_attr(OUTPUT_OPTIONS, fixed)
    study.set_user_attr(PARENT_RUN, run_id)


def join_study(
    base: TrainConfig,
    options: TuneOptions,
    client: MlflowClient,
    experiment_id: str,
    data_tags: dict[str, str] | None = None,
) -> optuna.Study:
    """Create or resume the study (its parent run tagged with `data_tags`, the catalog's source
    and digest); worker 0 queues the defaults again if they never completed, and a resumed
    study's parent run is set RUNNING again, with this run's trial budget."""
    storage = open_storage(
        options.storage,
        options.heartbeat_seconds,
        end_stale_trial_run(client),
        wait_seconds=base.tracking_timeout_seconds,
    )
    study = create_or_join(
        storage,
        options.study_name,
        study_settings(base, options),
        _set_up(base, options, client, experiment_id, data_tags or {}),
        comparable=comparable_settings,
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0),
    )
    if options.worker_index == 0:
        queue_defaults_again(study, base, options.space)
    reopen_parent_run(client, study.user_attrs[PARENT_RUN])
    client.set_tag(study.user_attrs[PARENT_RUN], TRIALS_TAG, str(options.trials))
    # Seeded per worker and per restart, so parallel or resumed workers do not repeat draws.
    seed = base.seed + 7919 * options.worker_index + len(study.trials)
    startup = 10 if options.trials is None else max(3, min(10, options.trials // 4))
    study.sampler = optuna.samplers.TPESampler(
        seed=seed, n_startup_trials=startup, constant_liar=True
    )
    return study
