"""MLflow prints links to a run and its experiment each time the run is marked finished over
HTTP; training marks a run twice (the client's retried call, then the active run's end) and
the links are printed once."""

from __future__ import annotations

import uuid

import mlflow
import pytest
from mlflow import MlflowClient

from training.logs import mlflow_prints
from training.retries import RetryPolicy
from training.tracking import end_run


@pytest.mark.parametrize("quiet", [False, True])
def test_a_run_s_links_are_printed_once_and_not_when_quiet(
    tracking_server: str, quiet: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    experiment = MlflowClient(tracking_server).create_experiment(f"run-links-{uuid.uuid4().hex}")
    mlflow.set_tracking_uri(tracking_server)
    try:
        with mlflow_prints(quiet):
            run = mlflow.start_run(experiment_id=experiment)
            end_run(RetryPolicy(30), MlflowClient(), run.info.run_id, "FINISHED")
    finally:
        mlflow.set_tracking_uri(None)
    out = capsys.readouterr().out
    assert out.count("View run ") == (0 if quiet else 1), out
    assert out.count("View experiment at: ") == (0 if quiet else 1), out
    assert MlflowClient(tracking_server).get_run(run.info.run_id).info.status == "FINISHED"
