"""Training under tracking-server faults, with real processes: an `mlflow server` killed while a
run fits and restarted within --tracking-timeout-seconds (the run completes), or restarted too late
(exit 4, and the next run marks the one left RUNNING as FAILED)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.fault_proxy import Fault, FaultProxy
from tests.support import free_port, start_mlflow_server, stop_process, wait_for_http

pytestmark = [pytest.mark.integration, pytest.mark.faults]


def start_training(workdir: Path, uri: str, catalog: Path, *extra: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "training", "--data", str(catalog), "--n-jobs", "1"]
    command += ["--smote-strategy", "min:15", "--model-name", "faulty", *extra]
    return subprocess.Popen(
        command,
        cwd=workdir,
        env={**os.environ, "MLFLOW_TRACKING_URI": uri},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_line(process: subprocess.Popen[str], text: str) -> None:
    """Read the process's standard error until a line holds `text`."""
    assert process.stderr is not None
    for line in process.stderr:
        if text in line:
            return
    raise AssertionError(f"the process ended before logging {text!r}")


def wait_for_running_run(client: MlflowClient, timeout: float = 180) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        experiment = client.get_experiment_by_name("product-categorization")
        if experiment:
            runs = client.search_runs([experiment.experiment_id], "attributes.status = 'RUNNING'")
            if runs:
                return runs[0].info.run_id
        time.sleep(0.3)
    raise AssertionError("no run started")


class Tracking:
    """An `mlflow server` on a fixed port that a test can kill and start again."""

    def __init__(self, root: Path) -> None:
        self.root, self.port = root, free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.process = self.start()

    def start(self) -> subprocess.Popen[bytes]:
        self.process = start_mlflow_server(self.root, self.port)
        wait_for_http(f"{self.uri}/health", 120, self.process)
        return self.process

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


@pytest.fixture
def tracking(tmp_path: Path) -> Iterator[Tracking]:
    server = Tracking(tmp_path / "store")
    yield server
    stop_process(server.process)


def test_server_restarted_within_the_timeout_lets_the_run_finish(
    tmp_path: Path, small_catalog: Path, tracking: Tracking
) -> None:
    uri = tracking.uri
    training = start_training(
        tmp_path,
        uri,
        small_catalog,
        "--n-estimators",
        "150",  # a fit of some seconds, longer than the kill takes
        "--tracking-timeout-seconds",
        "90",
    )
    run_id = wait_for_running_run(MlflowClient(uri))
    # Killed while the forest fits: no request is in flight, and every call after the fit
    # (metrics, artifacts, the model, the registry) meets a server that is gone, then back.
    wait_for_line(training, "fitting with")
    tracking.kill()
    time.sleep(8)
    tracking.start()
    out, err = training.communicate(timeout=600)
    assert training.returncode == 0, err
    assert "promoted:        yes" in out
    assert MlflowClient(uri).get_run(run_id).info.status == "FINISHED"


def test_server_gone_too_long_exits_4_and_next_run_fails_the_abandoned_one(
    tmp_path: Path, small_catalog: Path, tracking: Tracking
) -> None:
    uri = tracking.uri
    training = start_training(
        tmp_path, uri, small_catalog, "--n-estimators", "100", "--tracking-timeout-seconds", "4"
    )
    run_id = wait_for_running_run(MlflowClient(uri))
    tracking.kill()
    _, err = training.communicate(timeout=600)
    assert training.returncode == 4, err
    assert "did not answer" in err and "Traceback" not in err

    tracking.start()
    assert MlflowClient(uri).get_run(run_id).info.status == "RUNNING"  # left behind
    again = start_training(tmp_path, uri, small_catalog, "--n-estimators", "5")
    _, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    assert MlflowClient(uri).get_run(run_id).info.status == "FAILED"


# Answers cut mid-body after the server did the work, for the first requests of each kind a run
# makes: every retry must find what the spoiled attempt already stored instead of adding a second.
CUT_ANSWERS = [
    Fault("POST", "/mlflow/runs/create", 1),
    Fault("POST", "/mlflow/runs/log-batch", 1, "503"),
    Fault("POST", "/mlflow/runs/log-batch", 2),
    Fault("POST", "/mlflow/runs/log-inputs", 1),
    Fault("PUT", "/mlflow-artifacts/artifacts/", 2),
    Fault("POST", "/mlflow/model-versions/create", 1),
    Fault("GET", "/mlflow/model-versions/get", 1),
    Fault("POST", "/mlflow/registered-models/alias", 2),
    Fault("POST", "/mlflow/runs/update", 1),
]


def test_answers_cut_mid_body_are_retried_without_duplicates(
    tmp_path: Path, small_catalog: Path, tracking: Tracking
) -> None:
    faults = [Fault(f.method, f.path_part, f.times, f.kind) for f in CUT_ANSWERS]
    with FaultProxy(tracking.port, faults) as proxy:
        training = start_training(tmp_path, proxy.uri, small_catalog, "--n-estimators", "20")
        out, err = training.communicate(timeout=600)
    assert training.returncode == 0, err
    assert "Traceback" not in err and "retrying in" in err
    assert "promoted:        yes" in out
    assert [f.spoiled for f in faults] == [f.times for f in faults], "a fault did not happen"

    client = MlflowClient(tracking.uri)
    experiment = client.get_experiment_by_name("product-categorization")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    assert [run.info.status for run in runs] == ["FINISHED"]  # one run, though creation was cut
    run_id = runs[0].info.run_id
    assert len(client.get_metric_history(run_id, "accuracy")) == 1
    assert len(runs[0].inputs.dataset_inputs) == 2
    versions = client.search_model_versions("name = 'faulty'")
    assert [v.version for v in versions] == ["1"]  # registered once, though the answer was cut
    assert len(proxy.requests_to("POST", "/model-versions/create")) == 1  # found, not re-created
    assert client.get_model_version_by_alias("faulty", "champion").version == "1"
    moves = [json.loads(e.body) for e in proxy.requests_to("POST", "/registered-models/alias")]
    assert {(move["alias"], move["version"]) for move in moves} == {
        ("challenger", "1"),
        ("champion", "1"),
    }


def test_champion_rescored_though_its_download_is_cut(
    tmp_path: Path, small_catalog: Path, tracking: Tracking
) -> None:
    first = start_training(tmp_path, tracking.uri, small_catalog, "--n-estimators", "20")
    _, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    # The gate's second interpreter downloads the champion through the proxy, which cuts the
    # first downloads: the re-scoring is retried, and the comparison really happens.
    faults = [Fault("GET", "/mlflow-artifacts/artifacts/", 2)]
    with FaultProxy(tracking.port, faults) as proxy:
        second = start_training(tmp_path, proxy.uri, small_catalog, "--n-estimators", "20")
        out, err = second.communicate(timeout=600)
    assert second.returncode == 0, err
    assert faults[0].spoiled == 2
    assert "champion F1:     -" not in out and "could not re-score" not in err
    versions = MlflowClient(tracking.uri).search_model_versions("name = 'faulty'")
    assert sorted(v.version for v in versions) == ["1", "2"]
