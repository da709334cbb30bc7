"""The micro-batcher gathers concurrent jobs, respects its limits and isolates failures."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from serving.batching import MicroBatcher
from serving.errors import ModelNotReadyError


class Recorder:
    """A batch function that records the batches it sees; items equal to "bad" make it fail."""

    def __init__(self, delay: float = 0.0) -> None:
        self.batches: list[list[str]] = []
        self.threads: set[str] = set()
        self.delay = delay

    def __call__(self, items: list[str]) -> list[str]:
        self.batches.append(list(items))
        self.threads.add(threading.current_thread().name)
        if "bad" in items:
            raise ValueError("bad item")
        if self.delay:
            threading.Event().wait(self.delay)
        return [item.upper() for item in items]


async def run_jobs(batcher: MicroBatcher, jobs: list[tuple[str, int]]) -> list:
    batcher.start()
    try:
        return await asyncio.gather(
            *(batcher.submit(item, size) for item, size in jobs), return_exceptions=True
        )
    finally:
        await batcher.stop()


@pytest.fixture
def executor():
    with ThreadPoolExecutor(1, "model") as pool:
        yield pool


def test_concurrent_jobs_share_one_call_on_the_model_thread(executor) -> None:
    recorder = Recorder()
    batcher = MicroBatcher(recorder, executor, max_size=32, max_wait=0.05)
    results = asyncio.run(run_jobs(batcher, [(f"job{i}", 1) for i in range(10)]))
    assert results == [f"JOB{i}" for i in range(10)]
    assert len(recorder.batches) == 1
    assert recorder.threads == {"model_0"}


def test_batches_stay_within_max_size(executor) -> None:
    recorder = Recorder(delay=0.01)
    batcher = MicroBatcher(recorder, executor, max_size=8, max_wait=0.05)
    asyncio.run(run_jobs(batcher, [(f"j{i}", 3) for i in range(10)]))
    assert all(len(batch) * 3 <= 8 for batch in recorder.batches)
    assert sum(len(batch) for batch in recorder.batches) == 10


def test_a_job_larger_than_max_size_runs_alone(executor) -> None:
    recorder = Recorder()
    batcher = MicroBatcher(recorder, executor, max_size=4, max_wait=0.05)
    asyncio.run(run_jobs(batcher, [("big", 100), ("small", 1)]))
    assert ["big"] in recorder.batches


def test_without_waiting_a_lone_job_goes_at_once(executor) -> None:
    recorder = Recorder()
    batcher = MicroBatcher(recorder, executor, max_size=32, max_wait=0)
    assert asyncio.run(run_jobs(batcher, [("one", 1)])) == ["ONE"]


def test_only_the_failing_job_fails(executor) -> None:
    recorder = Recorder()
    batcher = MicroBatcher(recorder, executor, max_size=32, max_wait=0.05)
    results = asyncio.run(run_jobs(batcher, [("a", 1), ("bad", 1), ("c", 1)]))
    assert results[0] == "A" and results[2] == "C"
    assert isinstance(results[1], ValueError)


def test_stopped_batcher_refuses_jobs(executor) -> None:
    async def scenario() -> None:
        batcher = MicroBatcher(Recorder(), executor, max_size=4, max_wait=0)
        with pytest.raises(ModelNotReadyError):
            await batcher.submit("early", 1)
        batcher.start()
        await batcher.stop()
        with pytest.raises(ModelNotReadyError):
            await batcher.submit("late", 1)

    asyncio.run(scenario())


def test_lower_priority_goes_first_so_small_requests_pass_large_ones(executor) -> None:
    """While one model call runs, chunks of large requests (priority: rows already answered)
    and a new small request (priority 0) queue up; the small one is served next."""
    recorder = Recorder(delay=0.1)
    batcher = MicroBatcher(recorder, executor, max_size=4, max_wait=0.0)

    async def scenario() -> None:
        batcher.start()
        try:
            running = asyncio.create_task(batcher.submit("first", 4))
            await asyncio.sleep(0.02)  # "first" is on the model thread now
            later = [
                asyncio.create_task(batcher.submit(f"big{i}", 4, 4 * (i + 1))) for i in range(3)
            ]
            small = asyncio.create_task(batcher.submit("small", 1, 0))
            await asyncio.gather(running, small, *later)
        finally:
            await batcher.stop()

    asyncio.run(scenario())
    assert recorder.batches[:3] == [["first"], ["small"], ["big0"]]


def test_abandoned_jobs_are_not_run(executor) -> None:
    recorder = Recorder(delay=0.1)
    batcher = MicroBatcher(recorder, executor, max_size=1, max_wait=0.0)

    async def scenario() -> None:
        batcher.start()
        try:
            running = asyncio.create_task(batcher.submit("first", 1))
            await asyncio.sleep(0.02)
            gone = asyncio.create_task(batcher.submit("gone", 1))
            await asyncio.sleep(0.01)
            gone.cancel()  # its client left, or its deadline passed
            await running
            await batcher.submit("next", 1)
        finally:
            await batcher.stop()

    asyncio.run(scenario())
    assert recorder.batches == [["first"], ["next"]]
