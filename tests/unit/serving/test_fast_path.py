"""Start-up: a model answers (exactly) before its forest walk is compiled, the walk is compiled
once the model is served, and the garbage collector paused for start-up comes back on."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import uuid
from collections.abc import Callable
from typing import Any

import mlflow
import numpy as np
import pytest

from serving import startup
from serving.keeper import compile_fast_path
from serving.model import ModelLocator, ModelRef, ServedModel
from serving.service import PredictionService
from tests.support import tracking_uri_restored

PRODUCTS = [
    {"title": "Perl module for parsing XML", "asin": "libxml-parser-perl"},
    {"title": "Wireless optical mouse with USB receiver", "asin": "B000MOUSE1"},
    {"title": "USB", "description": "", "asin": "B0000SHORT"},
]


def walk_is_compiled(model: ServedModel) -> bool:
    """Asked of the model's own copy of `product_model.tree_walk` (each model brings its code)."""
    forest = model.predictor.pipeline.steps[-1][1]
    return bool(forest.predict_proba.__globals__["walk_is_compiled"]())


def fresh_load(tiny_registry: Any) -> ServedModel:
    """A load in a new process: the model's code is imported again, nothing compiled yet."""
    name, version = tiny_registry.model_name, tiny_registry.version
    with tracking_uri_restored():
        mlflow.set_tracking_uri(tiny_registry.tracking_uri)
        return ServedModel.load(ModelRef(name, version, f"models:/{name}/{version}", "champion"))


def test_a_model_answers_before_its_walk_is_compiled_and_the_same_after(tiny_registry) -> None:
    model = fresh_load(tiny_registry)
    assert not walk_is_compiled(model)  # the warm-up took the NumPy walk
    before = model.predict_proba(PRODUCTS)
    assert model.compile_fast_path()
    assert walk_is_compiled(model)
    assert np.array_equal(model.predict_proba(PRODUCTS), before)


def test_the_keeper_compiles_the_walk_once_the_model_serves(
    make_settings: Callable[..., Any], metrics: Any, tiny_registry: Any, caplog
) -> None:
    settings = make_settings()
    service = PredictionService(settings, metrics, ModelLocator(settings))
    caplog.set_level(logging.INFO, logger="serving.keeper")

    def said_compiled() -> bool:  # logged after the walk is set and the collector frozen
        return any(record.message == "forest walk compiled" for record in caplog.records)

    async def scenario() -> tuple[Any, Any]:
        await service.start()
        try:
            await until(lambda: service.readiness().ready)
            first = await service.predict(PRODUCTS, 3)
            await until(lambda: walk_is_compiled(service.model) and said_compiled())
            return first, await service.predict(PRODUCTS, 3)
        finally:
            await service.stop()

    first, later = asyncio.run(scenario())
    assert first.predictions == later.predictions


def test_a_model_swapped_in_is_compiled_before_it_takes_traffic(
    make_settings: Callable[..., Any], metrics: Any, tiny_registry: Any
) -> None:
    mlflow.set_tracking_uri(tiny_registry.tracking_uri)
    client = mlflow.MlflowClient(tiny_registry.tracking_uri)
    name = f"swap-{uuid.uuid4().hex[:8]}"

    def register_version() -> None:
        version = mlflow.register_model(tiny_registry.logged_model_uri, name).version
        client.set_registered_model_alias(name, "champion", version)

    register_version()
    settings = make_settings(model_name=name)
    service = PredictionService(settings, metrics, ModelLocator(settings))

    async def scenario() -> None:
        await service.start()
        try:
            await until(lambda: service.readiness().ready)
            register_version()
            assert await service.refresh()
            assert service.model.ref.version == "2"
            assert walk_is_compiled(service.model)
        finally:
            await service.stop()

    asyncio.run(scenario())


def test_a_walk_that_fails_to_compile_leaves_the_model_serving(served_model, caplog) -> None:
    class NoCompiler:
        def __getattr__(self, name: str) -> Any:
            return getattr(served_model.predictor, name)

        def compile_walk(self) -> None:
            raise ImportError("numba is not installed")

    model = dataclasses.replace(served_model, predictor=NoCompiler())
    compile_fast_path(model)  # logged, not raised
    assert "numpy walk" in caplog.text.lower()
    assert model.predict_proba(PRODUCTS).shape == (3, len(model.classes))


@pytest.mark.parametrize("model_name", ["tiny-classifier", "no-such-model"])
def test_full_collections_come_back_after_the_first_attempt(
    make_service: Callable[..., PredictionService], model_name: str
) -> None:
    """Whether the first load succeeds or fails (and is retried later)."""
    service = make_service(model_name=model_name)
    before = gc.get_threshold()
    startup.postpone_full_collections()
    try:
        assert gc.get_threshold()[2] == startup.NEVER

        async def scenario() -> None:
            await service.start()
            try:
                await asyncio.wait_for(service.first_attempt_done(), 60)
                await until(lambda: gc.get_threshold() == before)
            finally:
                await service.stop()

        asyncio.run(scenario())
    finally:
        startup.resume_full_collections()
    assert gc.get_threshold() == before


async def until(condition: Callable[[], bool], timeout: float = 60) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


class WithoutBeforeWalk:
    """A model saved before `predict_proba` took `before_walk`."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def predict_proba(self, products: list[dict[str, Any]]) -> Any:
        return self.model.predict_proba(products)


def test_the_model_says_when_its_walk_begins_and_older_models_still_answer(served_model) -> None:
    told: list[int] = []
    proba = served_model.predict_proba(PRODUCTS, lambda: told.append(1))
    assert told == [1]
    older = dataclasses.replace(served_model, predictor=WithoutBeforeWalk(served_model.predictor))
    assert not older.tells_before_walk
    assert np.array_equal(older.predict_proba(PRODUCTS, lambda: told.append(2)), proba)
    assert told == [1]
