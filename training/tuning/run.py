"""Running a study: one worker's trial loop, W local worker processes, and the final export.

Roles (`product-tune --role`):
- `all` (default): set the study up, run W workers (in this process when W is 1), export the best
  config and print the summary;
- `worker`: join the study and run trials until its budget or the timeout is used up (a pod of
  the Kubernetes Indexed Job);
- `best`: wait until the study is finished, then export and summarize (the final training Job's
  first step).

Every role joins the study through `study_setup.py`, which also sets it up the first time.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import optuna
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from training.config import TrainConfig
from training.errors import ConfigError, DataError, TrackingError, TrainingError
from training.interrupts import raise_if_interrupted
from training.tuning.folds import Folds, make_folds
from training.tuning.objective import (
    WORKER_PID,
    DrawnOptionsError,
    Objective,
    ParentRun,
    end_stale_trial_run,
)
from training.tuning.report import TuningResult, collect_result
from training.tuning.storage import open_storage, redact
from training.tuning.study import (
    OVER_BUDGET,
    leave_enqueued_trials_to_worker_0,
    over_budget,
    remaining_trials,
    wait_until_finished,
)
from training.tuning.study_setup import (
    EXPERIMENT,
    PARENT_RUN,
    TuneOptions,
    connect_mlflow,
    join_study,
    parent_run_ended_if_stopped,
    queue_defaults_again,
)

log = logging.getLogger(__name__)

# Exits whose cause the worker has already told its user; no trial of theirs was left running.
USER_ERROR_CODES = (ConfigError.exit_code, DataError.exit_code, TrackingError.exit_code)
# Trials in a row that may fail on invalid drawn options before the space is called unusable
# (failed trials do not use up the budget, so the study would otherwise never end).
MAX_REJECTED_IN_A_ROW = 5


def run_worker(base: TrainConfig, options: TuneOptions) -> None:
    """Join the study (after checking the data) and run trials."""
    folds = make_folds(base, options.folds)
    client, experiment_id = connect_mlflow(base)
    study = join_study(base, options, client, experiment_id, folds.data_tags())
    run_trials(base, options, study, client, folds)


def run_trials(
    base: TrainConfig, options: TuneOptions, study: optuna.Study, client: MlflowClient, folds: Folds
) -> None:
    """Run trials until the study's budget is spent or the timeout passes. Worker 0 also runs
    the trials queued in the study (the defaults), which hold their place in the budget."""
    parent = ParentRun(
        client, study.user_attrs[EXPERIMENT], study.user_attrs[PARENT_RUN], study.study_name
    )
    objective = Objective(base, options.space, folds, parent, options.worker_index)
    deadline = time.monotonic() + (options.timeout or float("inf"))
    leave_enqueued_trials_to_worker_0(study, options.storage, options.worker_index)
    while time.monotonic() < deadline:
        raise_if_interrupted()
        optuna.storages.fail_stale_trials(study)
        queued = False
        if options.worker_index == 0:  # one worker, so that the defaults are queued once
            queue_defaults_again(study, base, options.space)  # if a dead worker's trial held them
            queued = bool(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
        remaining = remaining_trials(study, options.trials)
        if remaining is None or remaining > 0 or queued:
            within_budget = _within_budget(objective, options.trials)
            study.optimize(
                within_budget, n_trials=1, gc_after_trial=True, catch=(DrawnOptionsError,)
            )
            _stop_if_every_draw_is_rejected(objective)
        elif study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            # Others still run trials: if one's worker died, its trial goes stale and the
            # budget it held comes back to whoever is left.
            time.sleep(options.heartbeat_seconds)
        else:
            break
    study.set_user_attr(f"worker_done_{options.worker_index}", True)


def _within_budget(objective: Objective, budget: int | None) -> Callable[[optuna.Trial], float]:
    """The objective, unless the trial was started at the same moment as another for the
    budget's last place and came second: that one is stopped before it draws its options."""

    def run(trial: optuna.Trial) -> float:
        if over_budget(trial, budget):
            trial.set_user_attr(OVER_BUDGET, True)
            log.info("trial %d not run: another worker took the budget's last place", trial.number)
            raise optuna.TrialPruned("over the budget")
        return objective(trial)

    return run


def _stop_if_every_draw_is_rejected(objective: Objective) -> None:
    """ConfigError (exit 2) once `MAX_REJECTED_IN_A_ROW` trials in a row drew invalid options."""
    if objective.rejected_in_a_row >= MAX_REJECTED_IN_A_ROW:
        raise ConfigError(
            f"the last {objective.rejected_in_a_row} trials all drew options product-train "
            f"rejects ({objective.last_rejection}); fix the --search-space so that every value "
            "it can draw is valid (see `product-tune --print-space`), then rerun to resume"
        )


def run_all(base: TrainConfig, options: TuneOptions, argv: list[str]) -> TuningResult:
    """Set the study up here, run the workers, then export. Whatever stops the study early ends
    its parent run (KILLED after an interrupt, else FAILED); resuming sets it RUNNING again."""
    # Unusable data stops here, before a study exists that would remember the bad options.
    folds = make_folds(base, options.folds)
    client, experiment_id = connect_mlflow(base)
    study = join_study(base, options, client, experiment_id, folds.data_tags())
    with parent_run_ended_if_stopped(client, study.user_attrs[PARENT_RUN]):
        if options.workers == 1:
            run_trials(base, options, study, client, folds)
        else:
            del folds  # each worker builds its own
            run_local_workers(base, options, argv)
        return export(base, options, wait=False)


def _worker_command(base: TrainConfig, argv: list[str], index: int, workers: int) -> list[str]:
    command = [sys.executable, "-m", "training.tune", *argv, "--role", "worker"]
    command += ["--worker-index", str(index), "--local-worker"]
    if "n_jobs" not in base.model_fields_set:  # share the cores instead of W x all of them
        command += ["--n-jobs", str(max(1, (os.cpu_count() or 1) // workers))]
    return command


def run_local_workers(base: TrainConfig, options: TuneOptions, argv: list[str]) -> None:
    """Run W worker processes until all have stopped. A worker that dies (killed, crashed) has
    its running trial failed at once, so that the others take its place in the budget."""
    processes = [
        subprocess.Popen(_worker_command(base, argv, index, options.workers))
        for index in range(options.workers)
    ]
    codes: dict[int, int] = {}
    study = None
    try:
        while len(codes) < len(processes):
            time.sleep(0.5)
            for index, process in enumerate(processes):
                code = process.poll()
                if index in codes or code is None:
                    continue
                codes[index] = code
                if code not in (0, *USER_ERROR_CODES):
                    log.warning(
                        "worker %d stopped (exit code %d); its trial is marked failed", index, code
                    )
                    study = _fail_trials_of(base, options, process.pid)
    except KeyboardInterrupt:
        _stop(processes)
        raise
    exit_codes = [codes[index] for index in range(len(processes))]
    user_errors = sorted({code for code in exit_codes if code in USER_ERROR_CODES})
    if user_errors:
        error = TrainingError(f"workers stopped with exit code(s) {exit_codes}; see their messages")
        error.exit_code = user_errors[0]
        raise error
    remaining = remaining_trials(study, options.trials) if study is not None else 0
    if remaining:
        dead = ", ".join(
            f"{index} (exit code {code})" for index, code in sorted(codes.items()) if code
        )
        raise TrainingError(
            f"{remaining} of {options.trials} trials were not run: worker(s) {dead} stopped and "
            "no worker was left to run them; see their messages above, then rerun the same "
            "command to resume the study"
        )


def _fail_trials_of(base: TrainConfig, options: TuneOptions, pid: int) -> optuna.Study:
    """Mark the trials that a dead worker left running failed now (as its missed heartbeats
    would once another worker looked) and end their MLflow runs as KILLED."""
    client, _ = connect_mlflow(base)
    end_run = end_stale_trial_run(client)
    storage = open_storage(
        options.storage, options.heartbeat_seconds, wait_seconds=base.tracking_timeout_seconds
    )
    study = optuna.load_study(study_name=options.study_name, storage=storage)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if trial.user_attrs.get(WORKER_PID) != pid:
            continue
        try:  # FrozenTrial has no public id; Optuna's own fail_stale_trials uses the same one
            storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another process failed it first
        end_run(study, trial)
    return study


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    """Pass the interrupt on to every worker at once (a SIGTERM to this process alone, as a
    container runtime sends, reaches no worker), then wait until each has marked its trial
    failed. A worker that got the signal from the terminal too ignores this second one."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        process.wait()


def export(base: TrainConfig, options: TuneOptions, wait: bool = True) -> TuningResult:
    """Write the best config, log it to the parent run, and close that run (`wait`: once the
    study is finished; the `best` role, whose failure then ends the parent run as the study's)."""
    client, _ = connect_mlflow(base)
    study = _load_when_ready(options, base.tracking_timeout_seconds)
    if not wait:  # `run_all` ends the parent run itself if this fails
        return _write_best(client, study, base, options)
    wait_until_finished(study, options.trials, options.workers, options.wait_seconds)
    with parent_run_ended_if_stopped(client, study.user_attrs[PARENT_RUN]):
        return _write_best(client, study, base, options)


def _write_best(
    client: MlflowClient, study: optuna.Study, base: TrainConfig, options: TuneOptions
) -> TuningResult:
    metric = base.task_gate_metric
    result = collect_result(study, options.output, metric)
    run_id = study.user_attrs[PARENT_RUN]
    client.log_artifact(run_id, str(options.output), "tuning")
    client.log_metric(run_id, f"best_cv_{metric}", float(result.best.value or 0.0))
    if result.baseline is not None:
        client.log_metric(run_id, f"defaults_cv_{metric}", float(result.baseline.value or 0.0))
    client.set_tag(run_id, "optuna.best_trial", str(result.best.number))
    client.set_terminated(run_id, "FINISHED")
    return result


def _load_when_ready(options: TuneOptions, wait_seconds: float) -> optuna.Study:
    storage = open_storage(options.storage, options.heartbeat_seconds, wait_seconds=wait_seconds)
    deadline = time.monotonic() + options.wait_seconds
    while True:
        try:
            study = optuna.load_study(study_name=options.study_name, storage=storage)
            if study.user_attrs.get(PARENT_RUN):
                return study
        except KeyError:  # not created yet: the workers may still be starting
            pass
        if time.monotonic() > deadline:
            raise TrainingError(
                f"no study named {options.study_name!r} in {redact(options.storage)}; "
                "check --study-name and --storage"
            )
        time.sleep(5)
