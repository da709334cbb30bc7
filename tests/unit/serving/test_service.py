"""The prediction core without HTTP: readiness, batching, hot swaps and failed loads."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import mlflow
import pytest
from mlflow import MlflowClient

from serving.errors import InvalidInputError, ModelNotReadyError
from serving.load_failures import REGISTRY_MISS_WORDS
from serving.model import ModelLocator, ServedModel
from serving.service import PredictionService

PRODUCT = {"title": "Perl module for parsing XML", "asin": "libxml-parser-perl"}


def run(service: PredictionService, scenario: Callable[[], Awaitable[Any]]) -> Any:
    """Start the service, run the scenario, stop the service, all in one event loop."""

    async def main() -> Any:
        await service.start()
        try:
            return await scenario()
        finally:
            await service.stop()

    return asyncio.run(main())


async def until(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def sample_value(service: PredictionService, name: str, labels: dict[str, str] | None = None):
    return service.metrics.registry.get_sample_value(name, labels or {})


@pytest.fixture
def registered_copy(tiny_registry):
    """A model name of its own with version 1 (the tiny model) under the alias `champion`."""
    mlflow.set_tracking_uri(tiny_registry.tracking_uri)
    client = MlflowClient(tiny_registry.tracking_uri)
    name = f"copy-{uuid.uuid4().hex[:8]}"

    def register_version() -> str:
        version = mlflow.register_model(tiny_registry.logged_model_uri, name).version
        client.set_registered_model_alias(name, "champion", version)
        return str(version)

    register_version()
    return name, client, register_version


def test_ready_only_after_the_model_is_loaded(make_service, cached_loader) -> None:
    gate = threading.Event()

    def slow_load(ref):
        gate.wait(30)
        return cached_loader(ref)

    service = make_service()
    service.load_model = slow_load

    async def scenario() -> None:
        assert service.readiness().reason == "loading"
        with pytest.raises(ModelNotReadyError):
            await service.predict([PRODUCT], 3)
        with pytest.raises(ModelNotReadyError):
            service.model_card()
        gate.set()
        await until(lambda: service.readiness().ready)
        assert service.readiness().model.version == "1"

    run(service, scenario)


def test_predictions_come_back_in_order_and_batched(make_service) -> None:
    service = make_service(batch_max_wait_ms=20)
    titles = [f"Perl module number {i}" for i in range(20)]

    async def scenario() -> list:
        await until(lambda: service.readiness().ready)
        return await asyncio.gather(*(service.predict([{"title": t}], 2) for t in titles))

    results = run(service, scenario)
    assert [len(r.predictions) for r in results] == [1] * 20
    assert all(r.model.version == "1" for r in results)
    calls = sample_value(service, "prediction_batch_size_count")
    assert calls < 20  # concurrent requests shared model calls
    assert sample_value(service, "prediction_batch_size_sum") == 20


def test_limits_are_checked_before_model_work(make_service) -> None:
    service = make_service(max_products_per_request=2)

    async def scenario() -> None:
        await until(lambda: service.readiness().ready)
        with pytest.raises(InvalidInputError):
            await service.predict([PRODUCT] * 3, 1)

    run(service, scenario)
    assert sample_value(service, "prediction_batch_size_count") == 0


def test_moving_the_alias_swaps_the_model_without_failing_requests(
    make_service, registered_copy
) -> None:
    name, _, register_version = registered_copy
    service = make_service(model_name=name)

    async def scenario() -> list:
        await until(lambda: service.readiness().ready)
        assert service.model.ref.version == "1"
        register_version()  # version 2 becomes champion
        in_flight = [asyncio.create_task(service.predict([PRODUCT], 1)) for _ in range(30)]
        assert await service.refresh() is True
        results = await asyncio.gather(*in_flight)
        after = await service.predict([PRODUCT], 1)
        return [r.model.version for r in results] + [after.model.version]

    versions = run(service, scenario)
    assert set(versions) <= {"1", "2"} and versions[-1] == "2"
    assert service.model_card()["version"] == "2"
    info = {"name": name, "alias": "champion"}
    assert sample_value(service, "model_info", info | {"version": "2"}) == 1
    assert sample_value(service, "model_info", info | {"version": "1"}) is None


def test_a_failed_reload_keeps_the_old_model_and_is_counted(make_service, registered_copy) -> None:
    name, client, _ = registered_copy
    service = make_service(model_name=name)

    async def scenario() -> tuple[bool, bool]:
        await until(lambda: service.readiness().ready)
        client.delete_registered_model_alias(name, "champion")
        refreshed = await service.refresh()
        answer = await service.predict([PRODUCT], 1)
        return refreshed, answer.model.version == "1"

    assert run(service, scenario) == (False, True)
    assert service.readiness().ready
    failures = {"version": "", "reason": "registry_miss"}
    assert sample_value(service, "model_load_failures_total", failures) == 1
    assert service.model_card()["pending_failure"]["reason"] == "registry_miss"


def test_unchanged_alias_does_not_reload(make_service) -> None:
    loads = []
    service = make_service()
    real_load = service.load_model
    service.load_model = lambda ref: loads.append(ref) or real_load(ref)

    async def scenario() -> None:
        await until(lambda: service.readiness().ready)
        assert await service.refresh() is True

    run(service, scenario)
    assert len(loads) == 1


def not_ready_reason(service: PredictionService) -> str:
    async def scenario() -> str:
        await until(lambda: service.readiness().reason != "loading")
        assert not service.readiness().ready
        return service.readiness().reason or ""

    return run(service, scenario)


def test_missing_alias_is_the_reason(make_service) -> None:
    service = make_service(model_alias="no-such-alias")
    reason = not_ready_reason(service)
    assert reason == f"'tiny-classifier@no-such-alias' {REGISTRY_MISS_WORDS}"


def test_unreachable_mlflow_is_the_reason(make_service, monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    service = make_service(mlflow_tracking_uri="http://127.0.0.1:9")
    assert not_ready_reason(service) == "the model registry is unreachable"
    failures = {"version": "", "reason": "unreachable"}
    assert sample_value(service, "model_load_failures_total", failures) >= 1


def test_pinned_version(make_service) -> None:
    service = make_service(model_version="1", reload_interval_seconds=0.05)

    async def scenario() -> None:
        await until(lambda: service.readiness().ready)

    run(service, scenario)
    assert service.model_card()["version"] == "1" and service.model_card()["alias"] is None
    assert not ModelLocator(service.settings).can_change


def test_model_folder_on_disk(make_settings, metrics, tiny_registry, tmp_path) -> None:
    mlflow.set_tracking_uri(tiny_registry.tracking_uri)
    folder = mlflow.artifacts.download_artifacts(tiny_registry.logged_model_uri, dst_path=tmp_path)
    settings = make_settings(model_uri=folder)
    service = PredictionService(settings, metrics, ModelLocator(settings), ServedModel.load)

    async def scenario() -> str:
        await until(lambda: service.readiness().ready, timeout=120)
        return (await service.predict([PRODUCT], 1)).predictions[0]["label"]

    assert run(service, scenario)
    card = service.model_card()
    assert card["source"] == folder and card["alias"] is None and len(card["version"]) >= 8


@pytest.mark.parametrize("suffix", ["/1", "@champion"])
def test_a_registry_uri_is_served_under_its_own_name_and_version(
    make_service, tiny_registry, suffix: str
) -> None:
    name = tiny_registry.model_name
    service = make_service(model_uri=f"models:/{name}{suffix}", model_name="other-name")

    async def scenario() -> None:
        await until(lambda: service.readiness().ready)

    run(service, scenario)
    card = service.model_card()
    assert (card["name"], card["version"]) == (name, "1")
    assert card["alias"] == ("champion" if suffix == "@champion" else None)
    assert service.settings.served_name == name


def test_a_sqlite_store_that_does_not_exist_is_not_created(make_service, tmp_path) -> None:
    store = tmp_path / "mlflow.db"
    service = make_service(mlflow_tracking_uri=f"sqlite:///{store}")
    reason = f"'tiny-classifier@champion' {REGISTRY_MISS_WORDS}"
    assert not_ready_reason(service) == reason
    assert not store.exists()


def test_missing_folder_is_the_reason(make_service, tmp_path) -> None:
    reason = not_ready_reason(make_service(model_uri=str(tmp_path / "nothing")))
    assert reason == f"there is no MLflow model at '{tmp_path / 'nothing'}'"


def test_validation_follows_the_contract_of_the_model_swapped_in(
    make_settings, metrics, served_model, registered_copy
) -> None:
    """Version 2 reads `Product Title` (another catalog's field): after the swap, requests are
    validated by its contract, not by version 1's."""
    from serving.validation import InputField, RequestContract

    name, _, register_version = registered_copy
    other = RequestContract((InputField("Product Title", "text", "string"),))

    def load(ref):
        contract = other if ref.version == "2" else served_model.contract
        return dataclasses.replace(served_model, ref=ref, contract=contract)

    settings = make_settings(model_name=name)
    service = PredictionService(settings, metrics, ModelLocator(settings), load)

    async def scenario() -> None:
        await until(lambda: service.readiness().ready)
        await service.predict([PRODUCT], 1)
        register_version()
        assert await service.refresh() is True
        with pytest.raises(InvalidInputError, match="'Product Title'"):
            await service.predict([PRODUCT], 1)
        answer = await service.predict([{"Product Title": "Perl XML parser"}], 1)
        assert answer.model.version == "2"

    run(service, scenario)
    assert service.model_card()["input_fields"] == [
        {"name": "Product Title", "role": "text", "type": "string"}
    ]


def test_a_json_text_field_takes_objects_and_the_model_reads_them_as_their_text(
    make_settings, metrics, served_model
) -> None:
    """A text field typed `json` (its catalog held objects) takes an object, nested, and the
    answer is the model's answer for the object's text (`as_text`: keys and values in order),
    as batch scoring gives it; the warm-up passes a `json` field too."""
    from serving.validation import InputField, RequestContract

    contract = RequestContract(
        (InputField("title", "text", "json"), InputField("asin", "id", "string"))
    )
    model = dataclasses.replace(served_model, contract=contract)
    model.warm_up()
    settings = make_settings()
    service = PredictionService(settings, metrics, ModelLocator(settings), lambda ref: model)
    info = {"name": "Perl module", "tags": ["for parsing", "XML"], "size": 3}

    async def scenario() -> tuple[Any, Any]:
        await until(lambda: service.readiness().ready)
        as_object = await service.predict([{"title": info}], 3)
        as_text = await service.predict(
            [{"title": "name Perl module tags for parsing XML size 3"}], 3
        )
        return as_object.predictions, as_text.predictions

    as_object, as_text = run(service, scenario)
    assert as_object == as_text
