"""A training run interrupted or failing after it registered its model: real `python -m training`
processes signalled at a point their log names, against a SQLite store and an `mlflow server`,
and a run whose end fails after it moved the aliases. The aliases stay (or go back) where they
were, and the version the run registered is deleted (its run, marked FAILED, keeps the model)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.integration.test_faults_training import start_training, wait_for_line
from tests.support import (
    free_port,
    sqlite_store,
    start_mlflow_server,
    stop_process,
    tracking_uri_restored,
    wait_for_http,
)
from training import tracking
from training.config import TrainConfig
from training.errors import TrackingError
from training.retries import RetryPolicy
from training.run import train

pytestmark = [pytest.mark.integration, pytest.mark.faults]
MODEL = "faulty"  # the name `start_training` registers under


def train_to_the_end(workdir: Path, uri: str, catalog: Path) -> None:
    """One run that finishes: version 1, `champion` and `challenger` on it."""
    run = start_training(workdir, uri, catalog, "--n-estimators", "10")
    _, err = run.communicate(timeout=600)
    assert run.returncode == 0, err


def interrupted_at(
    workdir: Path, uri: str, catalog: Path, line: str, signum: signal.Signals
) -> str:
    """A run sent `signum` as soon as its log holds `line`; its standard error."""
    run = start_training(workdir, uri, catalog, "--n-estimators", "10")
    wait_for_line(run, line)
    run.send_signal(signum)
    _, err = run.communicate(timeout=600)
    assert run.returncode == 130, err
    return err


def assert_registry_as_before(uri: str) -> None:
    """Version 1 alone, both aliases on it, and the interrupted run marked FAILED."""
    client = MlflowClient(uri)
    aliases = client.get_registered_model(MODEL).aliases
    assert {alias: str(version) for alias, version in aliases.items()} == {
        "champion": "1",
        "challenger": "1",
    }
    assert [str(v.version) for v in client.search_model_versions(f"name = '{MODEL}'")] == ["1"]
    experiment = client.get_experiment_by_name("product-categorization")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(run.info.status for run in runs) == ["FAILED", "FINISHED"]


def test_interrupt_during_the_gate_moves_no_alias_and_deletes_its_version(
    tmp_path: Path, small_catalog: Path
) -> None:
    uri = sqlite_store(tmp_path)
    train_to_the_end(tmp_path, uri, small_catalog)
    err = interrupted_at(
        tmp_path, uri, small_catalog, "comparing with the champion ...", signal.SIGINT
    )
    assert_registry_as_before(uri)
    assert "deleted faulty/2: its run failed" in err
    assert "interrupted" in err and "Traceback" not in err


@pytest.fixture
def server_uri(tmp_path: Path) -> Iterator[str]:
    """An `mlflow server` of its own (the test counts the model's versions)."""
    port = free_port()
    process = start_mlflow_server(tmp_path / "store", port)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health", 120, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(process)


def test_sigterm_right_after_registration_leaves_no_version_on_a_server(
    tmp_path: Path, small_catalog: Path, server_uri: str
) -> None:
    train_to_the_end(tmp_path, server_uri, small_catalog)
    err = interrupted_at(tmp_path, server_uri, small_catalog, "Created version", signal.SIGTERM)
    assert_registry_as_before(server_uri)
    assert "deleted faulty/2: its run failed" in err and "Traceback" not in err


def test_a_run_failing_after_it_moved_the_aliases_moves_them_back(
    tmp_path: Path, small_catalog: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = sqlite_store(tmp_path)
    train_to_the_end(tmp_path, uri, small_catalog)
    mark_run = tracking.end_run

    def finishing_fails(
        policy: RetryPolicy, client: MlflowClient, run_id: str, status: str
    ) -> None:
        if status == "FINISHED":  # the last step of a run, after its aliases moved
            raise TrackingError("marking the run FINISHED: MLflow did not answer")
        mark_run(policy, client, run_id, status)

    monkeypatch.setattr(tracking, "end_run", finishing_fails)
    config = TrainConfig(
        data=str(small_catalog),
        model_name=MODEL,
        tracking_uri=uri,
        n_estimators=10,
        smote_strategy="min:15",
        force_promote=True,  # both aliases move
    )
    with tracking_uri_restored(), pytest.raises(TrackingError, match="FINISHED"):
        train(config)
    assert_registry_as_before(uri)


def test_a_killed_run_s_version_is_deleted_by_the_next_run(
    tmp_path: Path, small_catalog: Path
) -> None:
    """SIGKILL (a pod killed for memory) leaves no chance to take anything back: the next run
    marks the run FAILED and deletes the version it registered, which no alias names."""
    uri = sqlite_store(tmp_path)
    train_to_the_end(tmp_path, uri, small_catalog)
    run = start_training(tmp_path, uri, small_catalog, "--n-estimators", "10")
    wait_for_line(run, "Created version '2'")
    run.kill()
    run.communicate(timeout=60)
    client = MlflowClient(uri)
    assert sorted(str(v.version) for v in client.search_model_versions(f"name = '{MODEL}'")) == [
        "1",
        "2",
    ]
    next_run = start_training(tmp_path, uri, small_catalog, "--n-estimators", "10")
    _, err = next_run.communicate(timeout=600)
    assert next_run.returncode == 0, err
    assert "deleted faulty/2: its run" in err and "was abandoned" in err
    versions = sorted(str(v.version) for v in client.search_model_versions(f"name = '{MODEL}'"))
    assert versions == ["1", "3"]
