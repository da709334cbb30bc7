"""Fixtures for the serving integration tests: a real `mlflow server` holding a tiny model, and the
prediction server itself started as a subprocess on loopback, as in production."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import (
    Registry,
    ServingProcess,
    free_port,
    launch_server,
    start_mlflow_server,
    stop_process,
    tracking_uri_restored,
    train_tiny,
    wait_for_http,
)


@pytest.fixture
def mlflow_uri_restored() -> Iterator[None]:
    with tracking_uri_restored():
        yield


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A real tracking server with the tiny model registered as `serving-it@champion`."""
    root = tmp_path_factory.mktemp("serving-registry")
    port = free_port()
    process = start_mlflow_server(root, port)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/health", timeout=120, process=process)
        yield train_tiny(url, "serving-it", root)
    finally:
        stop_process(process)


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., ServingProcess]]:
    """Start the server with extra environment variables; every one started is stopped after."""
    started: list[ServingProcess] = []

    def start(**env: str) -> ServingProcess:
        server = launch_server(tmp_path, **env)
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
        variables = {
            "MLFLOW_TRACKING_URI": registry.tracking_uri,
            "MODEL_NAME": registry.model_name,
        }
        server = start_server(**(variables | env))
        if ready:
            server.wait_ready()
        return server

    return start
