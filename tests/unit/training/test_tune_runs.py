"""`product-tune` in this process on the small catalog, a SQLite study and a SQLite MLflow store:
the defaults trial always gets scored (with `--trials 1`, and again on resume if it never
completed), and the study's parent run never stays RUNNING once the command stops."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from tests.support import signal_handlers_restored, sqlite_store, tracking_uri_restored
from training.catalog import file_sha256
from training.config_files import read_config_file
from training.errors import DataError
from training.interrupts import stop_on_signals
from training.tune import main
from training.tuning.run import _stop
from training.tuning.study_setup import end_parent_run, parent_run_ended_if_stopped

Tune = Callable[..., tuple[int, str, str]]


@pytest.fixture
def tune(
    tmp_path: Path,
    small_catalog: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Tune]:
    """Run `product-tune` here with small trials; (exit code, stdout, stderr)."""
    monkeypatch.chdir(tmp_path)
    space = tmp_path / "space.yaml"
    space.write_text("min_samples_leaf: {type: int, low: 1, high: 2}\n")
    store = sqlite_store(tmp_path)
    argv = ["--data", str(small_catalog), "--search-space", str(space), "--folds", "2"]
    argv += ["--storage", f"sqlite:///{tmp_path}/optuna.db", "--tracking-uri", store]
    argv += ["--n-estimators", "8", "--smote-strategy", "min:20", "--n-jobs", "1"]
    argv += ["--text-max-features", "5000", "--select-k-best", "2000"]

    def run(*extra: str) -> tuple[int, str, str]:
        try:
            main([*argv, *extra])
            code = 0
        except SystemExit as stop:
            code = int(stop.code or 0)
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    with signal_handlers_restored(), tracking_uri_restored():
        yield run
        stop_on_signals()  # forget the signals sent here


def study_runs(tmp_path: Path, name: str) -> tuple[optuna.Study, MlflowClient, str]:
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path}/optuna.db")
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    return study, client, study.user_attrs["mlflow_parent_run_id"]


def test_one_trial_scores_the_defaults_and_ends_the_parent_run(tune: Tune, tmp_path: Path) -> None:
    code, out, err = tune("--trials", "1", "--study-name", "one")
    assert code == 0, err
    assert "trials:          1 complete" in out and "(trial 0 = the defaults" in out
    study, client, parent = study_runs(tmp_path, "one")
    assert [t.user_attrs.get("baseline") for t in study.trials] == [True]
    assert client.get_run(parent).info.status == "FINISHED"


def test_best_yaml_keeps_the_options_given_but_the_per_run_decisions(
    tune: Tune, tmp_path: Path, small_catalog: Path
) -> None:
    """`tracking_uri` was left out, so `product-train --config best.yaml` from another folder
    trained into a new ./mlflow.db and promoted there, never meeting the study's champion."""
    given = ["--tracking-timeout-seconds", "30", "--run-name", "mine", "--force-promote"]
    code, _, err = tune(
        "--trials", "1", "--study-name", "kept", "--output", "out/best.yaml", *given
    )
    assert code == 0, err
    best = read_config_file(tmp_path / "out" / "best.yaml")
    assert best["tracking_uri"] == f"sqlite:///{tmp_path}/mlflow.db"  # the store of the study
    assert (best["tracking_timeout_seconds"], best["n_jobs"]) == (30.0, 1)
    assert "run_name" not in best and "force_promote" not in best  # one run's decisions
    assert best["data"] == str(small_catalog) and best["n_estimators"] == 8


def test_the_parent_run_records_the_catalog_and_the_options_every_trial_shares(
    tune: Tune, tmp_path: Path, small_catalog: Path
) -> None:
    """They were only in the best config, written at the end: a study stopped early had no
    record of what its trials trained on."""
    code, _, err = tune("--trials", "1", "--study-name", "shared")
    assert code == 0, err
    _, client, parent = study_runs(tmp_path, "shared")
    run = client.get_run(parent)
    assert run.data.params["data"] == str(small_catalog)
    assert run.data.params["n_estimators"] == "8"
    assert run.data.params["smote_strategy"] == "min:20"
    assert run.data.params["tracking_uri"] == f"sqlite:///{tmp_path}/mlflow.db"
    assert run.data.tags["data.source"] == str(small_catalog)
    assert run.data.tags["data.sha256"] == file_sha256(small_catalog)


def interrupt_when_the_defaults_fit(tmp_path: Path, forwarded: bool = False) -> threading.Thread:
    """SIGINT to this process (the tuning's main thread) once trial 0 is fitting its folds: its
    MLflow run holds its params, so no MLflow write is under way (an interrupt inside a SQLite
    write would leave that write's lock to the garbage collector, and the runs could not be
    ended). The files are read as plain read-only SQLite: opening the study with Optuna would
    race the tuning to create its tables. `forwarded`: a SIGTERM follows at once, as the tuning
    process passes a Ctrl-C on to a local worker that got it from the terminal too."""
    queries = {
        "optuna.db": "SELECT 1 FROM trial_user_attributes WHERE key = 'mlflow_run_id'",
        "mlflow.db": "SELECT 1 FROM params p JOIN tags t ON p.run_uuid = t.run_uuid "
        "WHERE t.key = 'optuna.trial' AND t.value = '0'",
    }

    def holds(name: str) -> bool:
        try:
            with closing(sqlite3.connect(f"file:{tmp_path}/{name}?mode=ro", uri=True)) as db:
                return bool(db.execute(queries[name]).fetchall())
        except sqlite3.Error:  # not created yet, or being written
            return False

    def watch() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if holds("optuna.db") and holds("mlflow.db"):
                time.sleep(0.2)  # the params' write has ended: the folds are being fitted
                os.kill(os.getpid(), signal.SIGINT)
                if forwarded:
                    time.sleep(0.02)
                    os.kill(os.getpid(), signal.SIGTERM)
                return
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    return watcher


def test_an_interrupted_defaults_trial_is_queued_again_when_the_study_resumes(
    tune: Tune, tmp_path: Path
) -> None:
    watcher = interrupt_when_the_defaults_fit(tmp_path)
    code, _, err = tune("--trials", "3", "--study-name", "cut")
    watcher.join()
    assert code == 130, err
    study, client, parent = study_runs(tmp_path, "cut")
    assert [t.state for t in study.trials] == [TrialState.FAIL]
    assert client.get_run(parent).info.status == "KILLED"

    code, out, err = tune("--trials", "2", "--study-name", "cut")
    assert code == 0, err
    study, client, resumed = study_runs(tmp_path, "cut")
    defaults = [t for t in study.trials if t.user_attrs.get("baseline")]
    assert [(t.number, t.state) for t in defaults] == [
        (0, TrialState.FAIL),
        (1, TrialState.COMPLETE),
    ]
    assert "defaults:        0." in out and "(trial 1)" in out
    assert len(study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))) == 2
    assert resumed == parent and client.get_run(parent).info.status == "FINISHED"
    # begun with --trials 3, resumed with 2: the budget is a tag (a param cannot change)
    run = client.get_run(parent)
    assert run.data.tags["optuna.trials"] == "2" and "trials" not in run.data.params


def test_a_local_worker_interrupted_twice_ends_its_trial_and_leaves_the_message_to_its_parent(
    tune: Tune, tmp_path: Path
) -> None:
    """With --workers 2, Ctrl-C reached the tuning process and each worker, and each printed
    the same message; the tuning process now also forwards the signal to its workers."""
    watcher = interrupt_when_the_defaults_fit(tmp_path, forwarded=True)
    code, _, err = tune("--trials", "3", "--study-name", "w", "--role", "worker", "--local-worker")
    watcher.join()
    assert code == 130, err
    assert "product-tune: error" not in err  # the tuning process that started it says it once
    study, client, _ = study_runs(tmp_path, "w")
    assert [t.state for t in study.trials] == [TrialState.FAIL]
    run = client.get_run(study.trials[0].user_attrs["mlflow_run_id"])
    assert (run.info.status, run.data.tags["optuna.state"]) == ("KILLED", "FAIL")


def test_workers_get_the_interrupt_at_once(tmp_path: Path) -> None:
    """A SIGTERM to the tuning process alone (a container runtime's) reached no worker: it
    waited 10 s for them to stop by themselves, then signalled them (31 s in all, measured)."""
    workers = [
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"]) for _ in range(2)
    ]
    time.sleep(0.5)  # started
    started = time.monotonic()
    _stop(workers)
    assert time.monotonic() - started < 5
    assert [worker.returncode for worker in workers] == [-signal.SIGTERM] * 2


def test_the_parent_run_ends_killed_after_an_interrupt_and_failed_after_an_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = MlflowClient(sqlite_store(tmp_path))
    experiment = client.get_experiment_by_name("product-categorization").experiment_id
    for error, status in ((KeyboardInterrupt("signal 15"), "KILLED"), (DataError("x"), "FAILED")):
        run_id = client.create_run(experiment).info.run_id
        with pytest.raises(type(error)), parent_run_ended_if_stopped(client, run_id):
            raise error
        assert client.get_run(run_id).info.status == status
    # MLflow refusing (here: no such run) leaves the error that stopped the study the one shown
    end_parent_run(client, "0" * 32, DataError("x"))
    assert f"could not mark the study's parent run {'0' * 32} FAILED" in caplog.text
