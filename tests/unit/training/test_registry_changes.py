"""What a run changes in the registry, taken back when it fails, in a real SQLite store: the
aliases it moved go back (or away, when they named no version), the version it registered is
deleted, and a registry that cannot be reached leaves a warning naming what is left."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from tests.support import REPO, refused_port, sqlite_store, tracking_uri_restored
from training.registry_changes import RunChanges, delete_abandoned_versions
from training.retries import RetryPolicy

LEGACY_MODEL = REPO / "tests" / "fixtures" / "legacy-model-0.1"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[MlflowClient]:
    uri = sqlite_store(tmp_path)
    with tracking_uri_restored():
        mlflow.set_tracking_uri(uri)  # `mlflow.register_model` uses it
        yield MlflowClient(uri)


def run_registering(client: MlflowClient) -> RunChanges:
    """A run of its own that registered a model (the legacy fixture) under `m`."""
    experiment = client.get_experiment_by_name("product-categorization")
    assert experiment is not None
    run_id = client.create_run(experiment.experiment_id).info.run_id
    client.log_artifacts(run_id, str(LEGACY_MODEL), "model")
    changes = RunChanges(client, "m", run_id, RetryPolicy(5))
    changes.register(f"runs:/{run_id}/model")
    return changes


def aliases(client: MlflowClient) -> dict[str, str]:
    return {k: str(v) for k, v in client.get_registered_model("m").aliases.items()}


def versions(client: MlflowClient) -> list[str]:
    return sorted(str(v.version) for v in client.search_model_versions("name = 'm'"))


def test_registering_moves_no_alias(client: MlflowClient) -> None:
    changes = run_registering(client)
    assert changes.version == "1" and aliases(client) == {}


def test_a_run_failing_after_it_published_takes_everything_back(
    client: MlflowClient, caplog: pytest.LogCaptureFixture
) -> None:
    run_registering(client).publish("1", promote=True)
    second = run_registering(client)
    second.publish("2", promote=True)
    assert aliases(client) == {"challenger": "2", "champion": "2"}
    with caplog.at_level(logging.WARNING, "training.registry_changes"):
        second.take_back()
    assert aliases(client) == {"challenger": "1", "champion": "1"}
    assert versions(client) == ["1"]
    assert "m@champion is back on version 1, as before this run" in caplog.text
    assert "deleted m/2: its run failed (the run keeps the logged model)" in caplog.text
    assert client.list_artifacts(second.run_id, "model")  # the run keeps its model


def test_a_kept_model_s_failure_moves_only_the_challenger_back(client: MlflowClient) -> None:
    run_registering(client).publish("1", promote=True)
    second = run_registering(client)
    second.publish("2", promote=False)
    assert aliases(client) == {"challenger": "2", "champion": "1"}
    second.take_back()
    assert aliases(client) == {"challenger": "1", "champion": "1"} and versions(client) == ["1"]


def test_a_failed_first_run_leaves_no_alias_and_no_version(client: MlflowClient) -> None:
    first = run_registering(client)
    first.publish("1", promote=True)
    first.take_back()
    assert aliases(client) == {} and versions(client) == []


def test_an_alias_moved_since_by_someone_else_is_left_alone(client: MlflowClient) -> None:
    run_registering(client).publish("1", promote=True)
    second = run_registering(client)
    second.publish("2", promote=False)
    third = run_registering(client)
    client.set_registered_model_alias("m", "challenger", "3")  # another run, meanwhile
    second.take_back()
    assert aliases(client) == {"challenger": "3", "champion": "1"}
    assert versions(client) == ["1", "3"] and third.version == "3"


def test_an_unreachable_registry_leaves_a_warning_naming_what_is_left(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with refused_port() as port:
        client = MlflowClient(f"http://127.0.0.1:{port}")
        changes = RunChanges(client, "m", "r1", RetryPolicy(0.5), True, "2", {"challenger": "1"})
        with caplog.at_level(logging.WARNING, "training.registry_changes"):
            changes.take_back()  # the run's own error stays the one raised
    assert "could not undo what this failed run changed in the registry" in caplog.text
    assert "m@challenger may still name version 2 (it named 1 before)" in caplog.text
    assert "version 2 of m, registered by this run, may still be there" in caplog.text


def test_an_abandoned_run_s_versions_are_deleted_unless_an_alias_names_them(
    client: MlflowClient, caplog: pytest.LogCaptureFixture
) -> None:
    named = run_registering(client)
    named.publish("1", promote=True)  # then killed before it could finish
    bare = run_registering(client)  # killed before the gate
    with caplog.at_level(logging.WARNING, "training.registry_changes"):
        delete_abandoned_versions(client, "m", named.run_id)
        delete_abandoned_versions(client, "m", bare.run_id)
    assert versions(client) == ["1"] and aliases(client) == {"challenger": "1", "champion": "1"}
    assert f"m/1 of abandoned run {named.run_id} is kept: m@" in caplog.text
    assert f"deleted m/2: its run {bare.run_id} was abandoned" in caplog.text
