"""Fixtures for the serving tests: one tiny real model per session, apps built around it.

The model is trained once (`tests.support.train_tiny`: 1,500 rows of the bundled sample, 20
trees) into a temporary SQLite MLflow store and loaded once; every app of the session serves that
loaded model, so a test pays only for resolving the alias in the registry, not for another load.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from serving.api import create_app
from serving.metrics import ServingMetrics
from serving.model import ModelLocator, ModelRef, ServedModel
from serving.service import PredictionService
from serving.settings import Settings
from tests.support import (
    Registry,
    sqlite_store,
    tracking_uri_restored,
    train_tiny,
    wait_until_ready,
)

with warnings.catch_warnings():  # Starlette asks for httpx2; httpx works the same here
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

TINY_NAME = "tiny-classifier"
SERVING_ENV = [name.upper() for name in Settings.model_fields] + ["PROMETHEUS_MULTIPROC_DIR"]


@pytest.fixture(autouse=True)
def _mlflow_uri_restored() -> Iterator[None]:
    """The loader sets MLflow's global tracking URI; later tests must not inherit it."""
    with tracking_uri_restored():
        yield


@pytest.fixture(autouse=True)
def _no_serving_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come from each test alone, not from the shell that runs pytest."""
    for name in SERVING_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def tiny_registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    root = tmp_path_factory.mktemp("serving-mlflow")
    return train_tiny(sqlite_store(root), TINY_NAME, root)


@pytest.fixture(scope="session")
def served_model(tiny_registry: Registry) -> ServedModel:
    """The tiny model, loaded and warmed once through the real loader."""
    import mlflow

    name, version = tiny_registry.model_name, tiny_registry.version
    ref = ModelRef(name, version, f"models:/{name}/{version}", "champion")
    with tracking_uri_restored():
        mlflow.set_tracking_uri(tiny_registry.tracking_uri)
        return ServedModel.load(ref)


@pytest.fixture
def cached_loader(served_model: ServedModel) -> Callable[[ModelRef], ServedModel]:
    """Loads any version registered from the tiny model by reusing the session's loaded copy."""

    def load(ref: ModelRef) -> ServedModel:
        return dataclasses.replace(served_model, ref=ref, loaded_at=time.time())

    return load


@pytest.fixture
def make_settings(tiny_registry: Registry) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "mlflow_tracking_uri": tiny_registry.tracking_uri,
            "model_name": tiny_registry.model_name,
            "reload_interval_seconds": 0,
        }
        return Settings(**(values | overrides))

    return make


@pytest.fixture
def metrics() -> ServingMetrics:
    """A clean Prometheus registry for each test."""
    return ServingMetrics(CollectorRegistry())


@pytest.fixture
def make_service(
    make_settings: Callable[..., Settings],
    metrics: ServingMetrics,
    cached_loader: Callable[[ModelRef], ServedModel],
) -> Callable[..., PredictionService]:
    def make(**overrides: Any) -> PredictionService:
        settings = make_settings(**overrides)
        return PredictionService(settings, metrics, ModelLocator(settings), cached_loader)

    return make


@pytest.fixture
def make_client(
    make_service: Callable[..., PredictionService], metrics: ServingMetrics
) -> Iterator[Callable[..., TestClient]]:
    """Starts an app (lifespan included) for some settings; `ready=True` waits for the model."""
    with_clients: list[TestClient] = []

    def make(ready: bool = True, **overrides: Any) -> TestClient:
        service = make_service(**overrides)
        client = TestClient(create_app(service.settings, metrics=metrics, service=service))
        client.__enter__()
        with_clients.append(client)
        if ready:
            wait_until_ready(client)
        return client

    yield make
    for client in with_clients:
        client.__exit__(None, None, None)
