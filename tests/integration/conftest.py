"""Fixtures for the serving integration tests: a real `mlflow server` holding a tiny model, and the
prediction server itself started as a subprocess on loopback, as in production."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support import (
    REPO,
    free_port,
    sample_records,
    start_mlflow_server,
    stop_process,
    wait_for_http,
    write_jsonl_gz,
)

TINY_ROWS = 1500


@dataclass(frozen=True)
class Registry:
    """A running `mlflow server` and the tiny model registered in it."""

    url: str
    root: Path
    model_name: str
    version: str
    logged_model_uri: str


@contextmanager
def tracking_uri_restored() -> Iterator[None]:
    """Undo `mlflow.set_tracking_uri` (which also sets MLFLOW_TRACKING_URI) done inside, so that
    tests after these see the tracking URI they had before."""
    import mlflow
    from mlflow.tracking._tracking_service import utils

    before, before_env = utils._tracking_uri, os.environ.get("MLFLOW_TRACKING_URI")
    try:
        yield
    finally:
        mlflow.set_tracking_uri(before)  # None: back to "not set"
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        if before_env is not None:
            os.environ["MLFLOW_TRACKING_URI"] = before_env


@pytest.fixture
def mlflow_uri_restored() -> Iterator[None]:
    with tracking_uri_restored():
        yield


def train_tiny(tracking_uri: str, model_name: str, **overrides: Any) -> Any:
    """Train a tiny model on a slice of the bundled sample and make it champion."""
    from training.config import TrainConfig
    from training.run import train

    data = Path(os.environ.get("TMPDIR", "/tmp")) / f"serving-slice-{os.getpid()}.jsonl.gz"
    write_jsonl_gz(data, sample_records(limit=TINY_ROWS))
    values: dict[str, Any] = {
        "data": str(data),
        "model_name": model_name,
        "n_estimators": 20,
        "smote": False,
        "select_k_best": 5000,
        "force_promote": True,
        "tracking_uri": tracking_uri,
        "n_jobs": 1,
    }
    return train(TrainConfig(**(values | overrides)))


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A real tracking server with the tiny model registered as `serving-it@champion`."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    root = tmp_path_factory.mktemp("serving-registry")
    port = free_port()
    process = start_mlflow_server(root, port)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/health", timeout=120, process=process)
        with tracking_uri_restored():
            result = train_tiny(url, "serving-it")
        yield Registry(url, root, "serving-it", result.model_version, result.model_uri)
    finally:
        stop_process(process)


@dataclass
class ServingProcess:
    """`python -m serving` running on a free loopback port."""

    process: subprocess.Popen[bytes]
    url: str
    log_path: Path
    started: float = field(default_factory=time.monotonic)

    def get(self, path: str, timeout: float = 10) -> tuple[int, Any]:
        return http_json("GET", self.url + path, timeout=timeout)

    def post(self, path: str, body: Any, timeout: float = 60) -> tuple[int, Any]:
        return http_json("POST", self.url + path, body, timeout=timeout)

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.assert_running()
            try:
                if self.get("/readyz", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{self.url} not ready within {timeout}s:\n{self.log_tail()}")

    def wait_live(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.assert_running()
            try:
                if self.get("/healthz", timeout=2)[0] == 200:
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"{self.url} not live within {timeout}s:\n{self.log_tail()}")

    def assert_running(self) -> None:
        if self.process.poll() is not None:
            raise AssertionError(
                f"server exited with {self.process.returncode}:\n{self.log_tail()}"
            )

    def log_lines(self) -> list[str]:
        return self.log_path.read_text("utf-8", errors="replace").splitlines()

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_lines()[-lines:])

    def metrics_text(self) -> str:
        with urllib.request.urlopen(self.url + "/metrics", timeout=10) as response:
            return response.read().decode()


def http_json(method: str, url: str, body: Any = None, timeout: float = 30) -> tuple[int, Any]:
    """One request; returns the status and the decoded JSON body (4xx/5xx included)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., ServingProcess]]:
    """Start the server with extra environment variables; every one started is stopped after."""
    started: list[ServingProcess] = []

    def start(**env: str) -> ServingProcess:
        port = free_port()
        log_path = tmp_path / f"serving-{port}.log"
        variables = {
            **os.environ,
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "RELOAD_INTERVAL_SECONDS": "0",
            **env,
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "serving"],
            cwd=tmp_path,
            env=variables,
            stdout=log_path.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        server = ServingProcess(process, f"http://127.0.0.1:{port}", log_path)
        started.append(server)
        return server

    yield start
    for server in started:
        stop_process(server.process)


@pytest.fixture
def serve_registry(
    registry: Registry, start_server: Callable[..., ServingProcess]
) -> Callable[..., ServingProcess]:
    """Start the server on the session's tracking server and tiny model, and wait until ready."""

    def start(ready: bool = True, **env: str) -> ServingProcess:
        variables = {"MLFLOW_TRACKING_URI": registry.url, "MODEL_NAME": registry.model_name}
        server = start_server(**(variables | env))
        if ready:
            server.wait_ready()
        return server

    return start


def require_binary(path: str, package: str) -> str:
    """The path of a system tool the test needs, or a clear failure (never a skip)."""
    if not Path(path).exists():
        pytest.fail(f"{path} not found: install Debian's {package} (apt-get install -y {package})")
    return path


__all__ = ["REPO", "Registry", "ServingProcess", "http_json", "require_binary", "train_tiny"]
