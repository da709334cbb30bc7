"""Zero-downtime updates: a new version promoted while clients keep asking is picked up without a
restart and without a failed request; a version that cannot be loaded is counted and ignored."""

from __future__ import annotations

import threading
import time
from collections import Counter

import mlflow
import pytest
from mlflow import MlflowClient
from prometheus_client.parser import text_string_to_metric_families

from tests.support import sample_records, train_tiny

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("mlflow_uri_restored")]

PRODUCTS = [{k: v for k, v in p.items() if k != "main_cat"} for p in sample_records(limit=50)]


class ClientLoop(threading.Thread):
    """Posts predictions back to back until stopped; records every status and model version."""

    def __init__(self, server) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.stopping = threading.Event()
        self.statuses: Counter[int] = Counter()
        self.versions: list[str] = []
        self.errors: list[str] = []

    def run(self) -> None:
        i = 0
        while not self.stopping.is_set():
            i += 1
            try:
                status, body = self.server.post("/v1/predict", {"products": [PRODUCTS[i % 50]]})
            except OSError as error:
                self.errors.append(repr(error))
                continue
            self.statuses[status] += 1
            if status == 200:
                self.versions.append(body["model_version"])


def sample(server, metric: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(server.metrics_text()):
        for s in family.samples:
            if s.name == metric and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return None


@pytest.mark.usefixtures("mlflow_uri_restored")
def test_alias_moves_while_clients_run(registry, start_server) -> None:
    name = "reload-it"
    mlflow.set_tracking_uri(registry.tracking_uri)
    client = MlflowClient(registry.tracking_uri)
    first = mlflow.register_model(registry.logged_model_uri, name).version
    client.set_registered_model_alias(name, "champion", first)

    server = start_server(
        MLFLOW_TRACKING_URI=registry.tracking_uri, MODEL_NAME=name, RELOAD_INTERVAL_SECONDS="1"
    )
    server.wait_ready()
    loops = [ClientLoop(server) for _ in range(3)]
    for loop in loops:
        loop.start()
    try:
        time.sleep(1)
        # Moves champion to a second version.
        second = train_tiny(registry.tracking_uri, name, registry.root, n_estimators=10).version
        deadline = time.monotonic() + 90
        while server.get("/v1/model")[1]["version"] != second and time.monotonic() < deadline:
            time.sleep(0.2)
        assert server.get("/v1/model")[1]["version"] == second
        time.sleep(1)  # requests keep flowing on the new model

        # A version that holds no model: loading fails, the served model stays.
        with mlflow.start_run() as run:
            mlflow.log_text("not a model", "junk/readme.txt")
        source = f"{run.info.artifact_uri}/junk"
        broken = client.create_model_version(name, source, run.info.run_id)
        client.set_registered_model_alias(name, "champion", broken.version)
        deadline = time.monotonic() + 60
        while not sample(server, "model_load_failures_total") and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1)
    finally:
        for loop in loops:
            loop.stopping.set()
        for loop in loops:
            loop.join(timeout=30)

    statuses = sum((loop.statuses for loop in loops), Counter())
    versions = [v for loop in loops for v in loop.versions]
    assert not [e for loop in loops for e in loop.errors]
    assert set(statuses) == {200}, statuses
    assert statuses[200] > 50
    assert {str(first), str(second)} <= set(versions), Counter(versions)
    for loop in loops:  # once a client saw the new version, it never sees the old one again
        switch = loop.versions.index(str(second))
        assert set(loop.versions[switch:]) == {str(second)}
    assert server.get("/readyz")[0] == 200
    assert server.get("/v1/model")[1]["version"] == str(second)
    assert sample(server, "model_load_failures_total") >= 1
    labels = {"name": name, "alias": "champion"}
    assert sample(server, "model_info", version=str(second), **labels) == 1
    assert not sample(server, "model_info", version=str(first), **labels)
