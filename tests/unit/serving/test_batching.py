"""The micro-batcher gathers concurrent jobs, respects its limits and isolates failures."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from serving.batching import MicroBatcher
from serving.errors import ModelNotReadyError
from serving.threads import DaemonThreadExecutor


class Recorder:
    """A batch function that records the batches it sees; items equal to "bad" make it fail."""

    def __init__(self, delay: float = 0.0) -> None:
        self.batches: list[list[str]] = []
        self.threads: set[str] = set()
        self.spans: list[tuple[float, float]] = []  # each call's start and end (monotonic)
        self.delay = delay

    def __call__(self, items: list[str], overlap: Callable[[], None] | None = None) -> list[str]:
        started = time.monotonic()
        self.batches.append(list(items))
        self.threads.add(threading.current_thread().name)
        if "bad" in items:
            raise ValueError("bad item")
        if self.delay:
            threading.Event().wait(self.delay)
        self.spans.append((started, time.monotonic()))
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


class MeetingRecorder(Recorder):
    """A batch function whose calls wait (up to `timeout` s) until `parties` calls are under way
    at once; `met` says whether they ever were."""

    def __init__(self, parties: int, timeout: float = 2.0) -> None:
        super().__init__()
        self.barrier = threading.Barrier(parties, timeout=timeout)
        self.met = False

    def __call__(self, items: list[str], overlap: Callable[[], None] | None = None) -> list[str]:
        try:
            self.barrier.wait()
            self.met = True
        except threading.BrokenBarrierError:
            pass
        return super().__call__(items)


@pytest.fixture
def two_threads():
    executor = DaemonThreadExecutor("model", threads=2)
    yield executor
    executor.shutdown()


def test_full_batches_run_side_by_side_on_two_threads(two_threads) -> None:
    recorder = MeetingRecorder(parties=2)
    batcher = MicroBatcher(recorder, two_threads, max_size=4, max_wait=0, calls=2)
    results = asyncio.run(run_jobs(batcher, [("big1", 4), ("big2", 4)]))
    assert results == ["BIG1", "BIG2"]
    assert recorder.met, "the second full batch waited for the first call"
    assert recorder.threads == {"model-0", "model-1"}


def test_small_batches_wait_for_the_running_call_and_grow(two_threads) -> None:
    """A second call starts only for a full batch: small jobs arriving during a call gather into
    one batch after it rather than running beside it."""
    recorder = Recorder(delay=0.1)
    batcher = MicroBatcher(recorder, two_threads, max_size=8, max_wait=0, calls=2)

    async def scenario() -> None:
        batcher.start()
        try:
            first = asyncio.create_task(batcher.submit("first", 1))
            await asyncio.sleep(0.02)  # "first" is on a model thread now
            await asyncio.gather(first, *(batcher.submit(f"s{i}", 1) for i in range(3)))
        finally:
            await batcher.stop()

    asyncio.run(scenario())
    assert recorder.batches == [["first"], ["s0", "s1", "s2"]]
    (_, first_ended), (small_started, _) = recorder.spans
    assert small_started >= first_ended


class OverlappingRecorder(Recorder):
    """Calls made of the item "first" say at once that the rest of them overlaps (as the forest
    walk does), then take 0.3 s; `began` and `ended` hold each call's times by first item."""

    def __init__(self) -> None:
        super().__init__()
        self.began: dict[str, float] = {}
        self.ended: dict[str, float] = {}

    def __call__(self, items: list[str], overlap: Callable[[], None] | None = None) -> list[str]:
        self.began[items[0]] = time.monotonic()
        if items == ["first"] and overlap is not None:
            overlap()
            threading.Event().wait(0.3)
        try:
            return super().__call__(items)
        finally:
            self.ended[items[0]] = time.monotonic()


def small_jobs_during_a_first_call(batcher: MicroBatcher) -> None:
    async def scenario() -> None:
        batcher.start()
        try:
            first = asyncio.create_task(batcher.submit("first", 1))
            await asyncio.sleep(0.05)  # "first" is on a model thread, past its overlap
            await asyncio.gather(first, *(batcher.submit(f"s{i}", 1) for i in range(3)))
        finally:
            await batcher.stop()

    asyncio.run(scenario())


def test_the_next_batch_starts_beside_a_call_past_its_overlap(two_threads) -> None:
    recorder = OverlappingRecorder()
    batcher = MicroBatcher(recorder, two_threads, max_size=8, max_wait=0, calls=2)
    small_jobs_during_a_first_call(batcher)
    assert sorted(recorder.batches) == [["first"], ["s0", "s1", "s2"]]
    assert recorder.began["s0"] < recorder.ended["first"]
    assert recorder.threads == {"model-0", "model-1"}


def test_with_one_call_at_a_time_an_overlap_changes_nothing(executor) -> None:
    recorder = OverlappingRecorder()
    batcher = MicroBatcher(recorder, executor, max_size=8, max_wait=0, calls=1)
    small_jobs_during_a_first_call(batcher)
    assert recorder.batches == [["first"], ["s0", "s1", "s2"]]
    assert recorder.began["s0"] >= recorder.ended["first"]


def test_no_more_calls_than_allowed_run_at_once() -> None:
    three_threads = DaemonThreadExecutor("model", threads=3)  # room for a third call
    recorder = MeetingRecorder(parties=3, timeout=0.3)  # three calls never meet: it times out
    batcher = MicroBatcher(recorder, three_threads, max_size=2, max_wait=0, calls=2)
    try:
        asyncio.run(run_jobs(batcher, [(f"j{i}", 2) for i in range(3)]))
    finally:
        three_threads.shutdown()
    assert not recorder.met and len(recorder.batches) == 3


def test_stopping_answers_the_jobs_of_a_call_under_way(two_threads) -> None:
    recorder = Recorder(delay=0.3)
    batcher = MicroBatcher(recorder, two_threads, max_size=4, max_wait=0, calls=2)

    async def scenario() -> None:
        batcher.start()
        running = asyncio.create_task(batcher.submit("slow", 1))
        await asyncio.sleep(0.05)
        await batcher.stop()
        with pytest.raises(ModelNotReadyError):
            await asyncio.wait_for(running, 1)

    asyncio.run(scenario())


def test_calls_below_one_are_refused(executor) -> None:
    with pytest.raises(ValueError, match="calls must be at least 1"):
        MicroBatcher(Recorder(), executor, max_size=4, max_wait=0, calls=0)


def test_each_daemon_thread_runs_the_initializer_and_calls_side_by_side() -> None:
    started: list[str] = []
    executor = DaemonThreadExecutor(
        "pool", initializer=lambda: started.append(threading.current_thread().name), threads=2
    )
    barrier = threading.Barrier(2, timeout=2)
    try:
        calls = [executor.submit(barrier.wait) for _ in range(2)]
        assert sorted(call.result(timeout=3) for call in calls) == [0, 1]  # both met
    finally:
        executor.shutdown(wait=True)
    assert sorted(started) == ["pool-0", "pool-1"]


def test_the_service_runs_one_model_thread_per_usable_core_unless_told(
    make_service, monkeypatch
) -> None:
    import serving.service

    monkeypatch.setattr(serving.service, "usable_cores", lambda: 3)
    for overrides, threads in (({}, 3), ({"model_threads": 1}, 1)):
        service = make_service(**overrides)
        try:
            assert service._model_threads.threads == threads
        finally:
            service._model_threads.shutdown()


def test_calls_one_at_a_time_stay_on_the_first_thread_and_a_busy_one_is_passed_by() -> None:
    """The model's data stays warm in one core's caches; a second thread takes only what comes
    while the first is busy."""
    executor = DaemonThreadExecutor("pool", threads=2)
    try:

        def name() -> str:
            return threading.current_thread().name

        assert {executor.submit(name).result(timeout=3) for _ in range(20)} == {"pool-0"}
        release = threading.Event()
        busy = executor.submit(release.wait, 3)
        assert executor.submit(name).result(timeout=3) == "pool-1"
        release.set()
        assert busy.result(timeout=3) is True
    finally:
        executor.shutdown()
