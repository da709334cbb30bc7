"""Fixtures shared by all tests: small catalogs, a model trained on the bundled sample, and a real
MLflow tracking server on loopback."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import (
    free_port,
    sample_records,
    start_mlflow_server,
    stop_process,
    wait_for_http,
    write_jsonl_gz,
)

# MLflow's variables that commands run in process set for the whole process (`setdefault` of
# the retry count and pool class; MLflow's own run and experiment ids): as the session found them.
SET_BY_COMMANDS = {
    name: os.environ.get(name)
    for name in (
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
        "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER",
        "MLFLOW_HTTP_REQUEST_TIMEOUT",
        "MLFLOW_SQLALCHEMYSTORE_POOLCLASS",
        "MLFLOW_EXPERIMENT_ID",
        "MLFLOW_RUN_ID",
    )
}


@pytest.fixture(autouse=True)
def environment_restored() -> Iterator[None]:
    """Each test starts from the environment the wider fixtures left, but for MLflow's variables
    that commands set for their whole process (even in a module's fixture), which it starts
    without: a later test's subprocess inherited them (a 4 s retry bound retried for 62 s)."""
    for name, value in SET_BY_COMMANDS.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    forget_active_experiment()
    saved = dict(os.environ)
    yield
    for name in set(os.environ) - set(saved):
        del os.environ[name]
    os.environ.update(saved)


def forget_active_experiment() -> None:
    """Drop the experiment `mlflow.set_experiment` made active in this process (a command run in
    process sets it): a later test's `mlflow.start_run()` on another store asked that store for
    the same id ("No Experiment with id=7 exists"). MLflow has no public way to unset it."""
    fluent = sys.modules.get("mlflow.tracking.fluent")  # not imported: nothing was set
    if fluent is not None and hasattr(fluent, "_active_experiment_id"):
        fluent._active_experiment_id = None  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def small_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 480 products: 12 of each of the sample's 40 largest classes."""
    records = sample_records(per_class=12)
    counts: dict[str, int] = {}
    for record in records:
        counts[record["main_cat"]] = counts.get(record["main_cat"], 0) + 1
    keep = set(sorted(counts, key=lambda label: -counts[label])[:40])
    path = tmp_path_factory.mktemp("catalog") / "small.jsonl.gz"
    return write_jsonl_gz(path, [r for r in records if r["main_cat"] in keep])


@pytest.fixture(scope="session")
def sample_model() -> Any:
    """The served pipeline (compact forest) fitted on the whole bundled sample, without MLflow:
    default features, 40 trees, no SMOTE, so that it trains in seconds."""
    from training.catalog import load_catalog
    from training.config import TrainConfig
    from training.pipeline import build_pipeline, for_serving, model_input

    config = TrainConfig(n_estimators=40, smote=False, n_jobs=2)
    frame = load_catalog(config).frame
    labels = frame["label"].to_numpy()
    pipeline = build_pipeline(config, labels).fit(model_input(frame, config), labels)
    return for_serving(pipeline, compact=True)


@pytest.fixture(scope="session")
def tracking_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `mlflow server` on loopback with its own SQLite store and served artifacts."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    process = start_mlflow_server(root, port)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/health", timeout=120, process=process)
        yield url
    finally:
        stop_process(process)
