"""The training CLI against a real `mlflow server` on loopback, as in the cluster."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.support import (
    free_port,
    refused_port,
    start_mlflow_models_serve,
    stop_process,
    wait_for_http,
)

pytestmark = pytest.mark.integration


def cli(tmp_path: Path, uri: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    return subprocess.Popen(
        [sys.executable, "-m", "training", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def train_small(tmp_path: Path, uri: str, catalog: Path, model_name: str, trees: int) -> str:
    """Train the small catalog with the CLI against `uri`; its standard output."""
    process = cli(
        tmp_path,
        uri,
        "--data",
        str(catalog),
        "--n-estimators",
        str(trees),
        "--smote-strategy",
        "min:15",
        "--model-name",
        model_name,
    )
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    return out


def test_a_password_in_the_tracking_uri_stays_out_of_the_run_and_the_log(
    tmp_path, tracking_server, small_catalog
) -> None:
    uri = tracking_server.replace("http://", "http://alice:s3cret@")
    args = ["--data", str(small_catalog), "--n-estimators", "3", "--no-smote"]
    process = cli(tmp_path, uri, *args, "--model-name", "credentials")
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    assert "alice:***@127.0.0.1" in err and "s3cret" not in out + err
    client = MlflowClient(tracking_server)
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments, "params.tracking_uri LIKE 'http://alice%'")
    assert len(runs) == 1, "the run logs the URI it used"
    assert runs[0].data.params["tracking_uri"] == uri.replace("s3cret", "***")
    assert not [name for name in runs[0].data.metrics if "alice" in name or "s3cret" in name]


def test_train_against_server_then_load_in_a_fresh_process(
    tmp_path, tracking_server, small_catalog
) -> None:
    out = train_small(tmp_path, tracking_server, small_catalog, "server-test", trees=10)
    assert "training summary" in out and "promoted:        yes" in out

    # A separate interpreter with nothing but the registry URI loads and predicts (that the
    # model carries every module it needs is checked in tests/unit/training/test_model.py).
    script = (
        "import json, mlflow, pandas as pd\n"
        "m = mlflow.pyfunc.load_model('models:/server-test@champion')\n"
        "out = m.predict(pd.DataFrame([{'title': 'Perl module for parsing XML',"
        " 'asin': 'libxml-parser-perl'}]), params={'top_k': 2})\n"
        "print(json.dumps({'label': out['label'][0], 'top': out['top_labels'][0],"
        " 'p': out['probability'][0]}))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script],
        cwd="/",
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "MLFLOW_TRACKING_URI": tracking_server},
    )
    assert loaded.returncode == 0, loaded.stderr
    answer = json.loads(loaded.stdout.strip().splitlines()[-1])
    assert answer["label"] == answer["top"][0] and len(answer["top"]) == 2
    assert 0 < answer["p"] <= 1


def test_unreachable_server_fails_within_the_bound(tmp_path) -> None:
    with refused_port() as port:
        uri = f"http://127.0.0.1:{port}"
        started = time.monotonic()
        process = cli(tmp_path, uri, "--tracking-timeout-seconds", "4")
        _, err = process.communicate(timeout=120)
        took = time.monotonic() - started
    assert process.returncode == 4, err
    assert "did not answer" in err and uri in err
    assert "Traceback" not in err
    assert err.count("Retrying (") <= 3, err  # the 4 s bound: 3 retries, whatever ran before
    assert took < 60, err


def test_sigterm_during_fit_marks_run_failed_and_moves_no_alias(
    tmp_path, tracking_server, small_catalog
) -> None:
    process = cli(
        tmp_path,
        tracking_server,
        "--data",
        str(small_catalog),
        "--n-estimators",
        "3000",
        "--n-jobs",
        "1",
        "--model-name",
        "interrupted",
    )
    deadline = time.monotonic() + 120
    client = MlflowClient(tracking_server)
    while time.monotonic() < deadline:  # wait until the run exists and fitting started
        experiment = client.get_experiment_by_name("product-categorization")
        if experiment and client.search_runs(
            [experiment.experiment_id], "attributes.status = 'RUNNING'"
        ):
            break
        time.sleep(0.5)
    time.sleep(2)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    runs = client.search_runs([experiment.experiment_id], "tags.`mlflow.runName` != ''")
    assert "RUNNING" not in {run.info.status for run in runs}
    assert not client.search_registered_models("name='interrupted'")


def test_mlflow_models_serve_serves_the_registered_model(
    tmp_path, tracking_server, small_catalog
) -> None:
    train_small(tmp_path, tracking_server, small_catalog, "served-by-mlflow", trees=5)
    port = free_port()
    server = start_mlflow_models_serve(
        "models:/served-by-mlflow@champion", tracking_server, port, tmp_path / "serve.log"
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/ping", 180, server)
        body = {
            "dataframe_records": [
                {"title": "Ruby gem for HTTP requests", "description": ["A Ruby library."]},
                {"title": "Perl module for XML", "asin": "libxml-simple-perl"},
            ],
            "params": {"top_k": 2},
        }
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            json.dumps(body).encode(),
            {"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            predictions = json.loads(response.read())["predictions"]
        assert len(predictions) == 2
        assert all(
            len(p["top_labels"]) == 2 and p["label"] == p["top_labels"][0] for p in predictions
        )
    finally:
        stop_process(server)
