"""The core under faults: failed versions are remembered and not reloaded at once; large
requests are cut into chunks and stop when their client left or their deadline passed."""

from __future__ import annotations

import asyncio
import dataclasses
import threading

import pytest

from serving.errors import LOAD_ERROR, ClientGoneError, DeadlineExceededError, ModelLoadError
from serving.watch import RequestWatch, request_watch_var
from tests.unit.serving.test_service import PRODUCT, registered_copy, run, sample_value, until

__all__ = ["registered_copy"]  # the fixture, used by name


def test_a_broken_version_is_not_loaded_again_until_the_alias_moves(
    make_service, registered_copy, cached_loader
) -> None:
    name, _, register_version = registered_copy
    service = make_service(model_name=name, failed_load_retry_seconds=3600)
    attempts: list[str] = []

    def load(ref):
        attempts.append(ref.version)
        if ref.version == "2":
            raise ModelLoadError(LOAD_ERROR, "KeyError: 12")
        return cached_loader(ref)

    service.load_model = load

    async def scenario() -> list[bool]:
        await until(lambda: service.readiness().ready)
        register_version()  # version 2, broken, becomes champion
        results = [await service.refresh() for _ in range(3)]
        card = service.model_card()
        assert card["version"] == "1" and card["pending_failure"]["version"] == "2"
        assert card["pending_failure"]["reason"] == "load_error"
        assert "KeyError" not in str(card)
        assert service.readiness().ready  # the old model serves correctly
        register_version()  # the alias moves on to version 3
        results.append(await service.refresh())
        return results

    assert run(service, scenario) == [False, False, False, True]
    assert attempts == ["1", "2", "3"]
    failed = {"version": "2", "reason": "load_error"}
    assert sample_value(service, "model_load_failures_total", failed) == 1
    assert service.model_card()["pending_failure"] is None
    wanted = {"name": name, "alias": "champion"}
    assert sample_value(service, "model_wanted_info", wanted | {"version": "3"}) == 1
    assert sample_value(service, "model_wanted_info", wanted | {"version": "2"}) is None


def test_a_broken_version_is_retried_after_the_back_off(
    make_service, registered_copy, cached_loader
) -> None:
    name, _, register_version = registered_copy
    service = make_service(model_name=name, failed_load_retry_seconds=0.2)
    attempts: list[str] = []

    def load(ref):
        attempts.append(ref.version)
        if ref.version == "2" and attempts.count("2") == 1:
            raise ModelLoadError(LOAD_ERROR, "corrupt")
        return cached_loader(ref)

    service.load_model = load

    async def scenario() -> tuple[bool, bool]:
        await until(lambda: service.readiness().ready)
        register_version()
        first = await service.refresh()
        await asyncio.sleep(0.3)
        return first, await service.refresh()

    assert run(service, scenario) == (False, True)
    assert service.model_card()["version"] == "2"


class SlowPredictor:
    """Wraps the tiny model; every call takes `delay` seconds and is recorded."""

    def __init__(self, predictor, delay: float) -> None:
        self.predictor, self.delay, self.calls = predictor, delay, []

    def predict_proba(self, products):
        self.calls.append(len(products))
        threading.Event().wait(self.delay)
        return self.predictor.predict_proba(products)


def slow_service(make_service, served_model, delay: float, **settings):
    slow = SlowPredictor(served_model.predictor, delay)
    model = dataclasses.replace(served_model, predictor=slow)
    service = make_service(**settings)
    service.load_model = lambda ref: dataclasses.replace(model, ref=ref)
    return service, slow


def test_large_requests_are_cut_into_chunks_that_let_small_ones_pass(
    make_service, served_model
) -> None:
    service, slow = slow_service(make_service, served_model, 0.05, batch_max_size=4)

    async def scenario() -> list[str]:
        await until(lambda: service.readiness().ready)
        finished: list[str] = []

        async def ask(tag: str, count: int) -> None:
            result = await service.predict([PRODUCT] * count, 1)
            assert len(result.predictions) == count
            finished.append(tag)

        big = asyncio.create_task(ask("big", 40))
        await asyncio.sleep(0.12)  # a few chunks of the big request are done
        await ask("small", 1)
        await big
        return finished

    assert run(service, scenario) == ["small", "big"]
    assert max(slow.calls) <= 4 and sum(slow.calls) >= 41


def test_a_request_whose_client_left_stops_at_its_next_chunk(make_service, served_model) -> None:
    service, slow = slow_service(make_service, served_model, 0.05, batch_max_size=4)

    async def scenario() -> None:
        await until(lambda: service.readiness().ready)
        slow.calls.clear()
        watch = RequestWatch(asyncio.get_running_loop().time())
        request_watch_var.set(watch)
        task = asyncio.create_task(service.predict([PRODUCT] * 400, 1))
        await asyncio.sleep(0.12)
        watch.gone.set()
        with pytest.raises(ClientGoneError):
            await task

    run(service, scenario)
    assert sum(slow.calls) < 40  # 400 products asked, a few chunks answered


def test_a_request_past_its_deadline_gets_a_504(make_service, served_model) -> None:
    service, slow = slow_service(
        make_service, served_model, 0.05, batch_max_size=4, request_timeout_seconds=0.3
    )

    async def scenario() -> None:
        await until(lambda: service.readiness().ready)
        slow.calls.clear()
        with pytest.raises(DeadlineExceededError) as raised:
            await service.predict([PRODUCT] * 400, 1)
        assert raised.value.status_code == 504
        assert (await service.predict([PRODUCT], 1)).predictions  # the server still answers

    run(service, scenario)
    assert sum(slow.calls) < 60
