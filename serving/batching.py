"""Micro-batching: concurrent requests share one model call.

A model call on 32 rows costs far less than 32 calls on one row, so requests that arrive together
are gathered (up to `max_size` rows) and run as one call on a model thread, off the event loop.
While that call runs, new requests queue up and form the next batch.

With `calls` > 1, a full batch (`max_size` rows waiting) does not wait for the call under way: it
starts at once on another model thread. The forest walk, about half of a large call, runs without
the GIL, so two large calls overlap on two cores. Smaller batches wait for the running call to
reach that walk: `run_batch` calls the `overlap` function it is given when the rest of its work
runs without the GIL, and the next batch starts then, on another thread, so that its feature
building (which needs the GIL) overlaps the walk instead of following it. Meanwhile the batch
grows, and one larger call costs less per row than two small ones side by side.

A batch waits for company only when company is on its way: `Traffic` counts the HTTP requests in
progress, and while some of them have not reached the batcher yet (their body is still being read
or validated), the batch waits for them, at most `max_wait` seconds after its first job arrived.
A lone request is never delayed.

Fair sharing: the service cuts large requests into chunks of at most `max_size` rows and submits
them one after the other, each with a priority, the number of rows of its request already
answered. The queue serves the lowest first, so a small new request goes before the next chunk of
a large one and waits at most for the model call already running.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import heapq
import itertools
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from serving.errors import ModelNotReadyError

log = logging.getLogger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")


class Traffic:
    """Requests in progress, counted by the HTTP middleware (event-loop thread only)."""

    def __init__(self) -> None:
        self.open = 0

    def enter(self) -> None:
        self.open += 1

    def leave(self) -> None:
        self.open -= 1


@dataclass(eq=False)
class _Call:
    """A model call under way."""

    overlapping: bool = False  # the rest of it runs without the GIL: another may start


@dataclass(order=True)
class _Job(Generic[Item, Result]):
    priority: int
    sequence: int
    item: Item = field(compare=False)
    size: int = field(compare=False)
    enqueued: float = field(compare=False)
    future: asyncio.Future[Result] = field(repr=False, compare=False)


Overlap = Callable[[], None]
"""Called by `run_batch` on its thread: the rest of this call runs without the GIL."""


class MicroBatcher(Generic[Item, Result]):
    """Runs `run_batch(items, overlap) -> results` (same length, same order) on `executor`, for
    batches of jobs gathered from concurrent `submit` calls: one call at a time, or up to `calls`
    at a time while full batches are waiting or the calls under way have called `overlap`
    (`executor` needs that many threads)."""

    def __init__(
        self,
        run_batch: Callable[[list[Item], Overlap], list[Result]],
        executor: Executor,
        max_size: int,
        max_wait: float,
        traffic: Traffic | None = None,
        calls: int = 1,
    ) -> None:
        if calls < 1:
            raise ValueError(f"calls must be at least 1, got {calls}")
        self.run_batch = run_batch
        self.executor = executor
        self.max_size = max_size
        self.max_wait = max_wait
        self.traffic = traffic
        self.calls = calls
        self._running: dict[_Call, asyncio.Future[Any]] = {}  # model calls under way
        self._gathering = False  # a batch is being formed: every arrival matters
        self._unanswered = 0  # jobs submitted and not yet answered
        self._pending: list[_Job[Item, Result]] = []  # a heap: lowest priority, then oldest
        self._pending_rows = 0
        self._sequence = itertools.count()
        self._arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._serve_forever(), name="micro-batcher")

    async def stop(self) -> None:
        """Stop gathering; jobs still queued or in a call under way are answered with
        `ModelNotReadyError` (such a call still finishes on its thread, unheard)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for future in list(self._running.values()):
            future.cancel()
        await asyncio.gather(*self._running.values(), return_exceptions=True)
        while self._pending:
            job = self._pop()
            if not job.future.done():
                job.future.set_exception(ModelNotReadyError("the server is shutting down"))

    async def submit(self, item: Item, size: int, priority: int = 0) -> Result:
        """Queue one job of `size` rows and wait for its result; lower `priority` goes first."""
        if self._task is None:
            raise ModelNotReadyError("the server is not accepting predictions")
        loop = asyncio.get_running_loop()
        job = _Job(priority, next(self._sequence), item, size, loop.time(), loop.create_future())
        heapq.heappush(self._pending, job)
        self._pending_rows += size
        if self._gathering or self._may_start():  # else no one waits for it: spare the wake-up
            self._arrived.set()
        self._unanswered += 1
        try:
            return await job.future
        finally:
            self._unanswered -= 1

    def _company_coming(self) -> bool:
        """Whether requests in progress have yet to submit their job (always, without Traffic)."""
        return self.traffic is None or self.traffic.open > self._unanswered

    async def _serve_forever(self) -> None:
        while True:
            batch = await self._gather()
            if batch:
                self._start_call(batch)
                # Let the answered requests send their responses before the next model call
                # competes with them for the GIL.
                await asyncio.sleep(0)

    def _start_call(self, batch: list[_Job[Item, Result]]) -> None:
        """Run `batch` on the executor; `_call_ended` answers its jobs (no task per call)."""
        loop = asyncio.get_running_loop()
        call = _Call()
        overlap = functools.partial(_call_soon_if_open, loop, self._overlapping, call)
        items = [job.item for job in batch]
        future = loop.run_in_executor(self.executor, self.run_batch, items, overlap)
        self._running[call] = future
        future.add_done_callback(functools.partial(self._call_ended, call, batch))

    def _overlapping(self, call: _Call) -> None:
        call.overlapping = True
        if call in self._running and self._pending:
            self._arrived.set()  # the gatherer may start the next call now

    def _call_ended(
        self, ended: _Call, batch: list[_Job[Item, Result]], call: asyncio.Future[Any]
    ) -> None:
        self._running.pop(ended, None)
        if call.cancelled():  # stopped: the call finishes on its thread, unheard
            for job in batch:
                _settle(job.future, error=ModelNotReadyError("the server is shutting down"))
        elif (error := call.exception()) is None:
            for job, result in zip(batch, call.result(), strict=True):
                _settle(job.future, result=result)
        elif len(batch) > 1:  # find the culprit: only its request should fail
            for job in batch:
                self._start_call([job])
        else:
            _settle(batch[0].future, error=error)
        if self._pending:
            self._arrived.set()  # the gatherer may start the next call now

    def _may_start(self) -> bool:
        """Whether a new model call may start: jobs wait and no call runs, or a call is free and
        either a full batch waits or every call under way has reached its overlap."""
        if not self._pending:
            return False
        if not self._running:
            return True
        if len(self._running) >= self.calls:
            return False
        return self._pending_rows >= self.max_size or all(c.overlapping for c in self._running)

    def _pop(self) -> _Job[Item, Result]:
        job = heapq.heappop(self._pending)
        self._pending_rows -= job.size
        return job

    def _drop_abandoned(self) -> None:
        """Jobs whose caller stopped waiting (client gone, deadline) are not run."""
        while self._pending and self._pending[0].future.done():
            self._pop()

    async def _gather(self) -> list[_Job[Item, Result]]:
        self._drop_abandoned()
        while not self._may_start():
            self._arrived.clear()
            await self._arrived.wait()
            self._drop_abandoned()
        self._gathering = True
        try:
            return await self._fill(self._pop())
        finally:
            self._gathering = False

    async def _fill(self, first: _Job[Item, Result]) -> list[_Job[Item, Result]]:
        """`first` and the jobs that join it, up to `max_size` rows."""
        loop = asyncio.get_running_loop()
        batch, rows = [first], first.size
        deadline = first.enqueued + self.max_wait
        while rows < self.max_size:
            self._drop_abandoned()
            if self._pending:
                if rows + self._pending[0].size > self.max_size:
                    break
                job = self._pop()
                batch.append(job)
                rows += job.size
                continue
            if not self._company_coming():
                break
            if not await self._wait_for_arrival(deadline - loop.time()):
                break
        return [job for job in batch if not job.future.done()]

    async def _wait_for_arrival(self, timeout: float) -> bool:
        if timeout <= 0:
            return False
        self._arrived.clear()
        try:
            await asyncio.wait_for(self._arrived.wait(), timeout)
        except TimeoutError:
            return False
        return True


def _call_soon_if_open(
    loop: asyncio.AbstractEventLoop, callback: Callable[..., None], *args: Any
) -> None:
    """`callback(*args)` on `loop`, from another thread; nothing if the loop has closed (the
    server stopped: no one waits for the call that asks)."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(callback, *args)


def _settle(future: asyncio.Future[Any], *, result: Any = None, error: Any = None) -> None:
    if future.done():  # the client went away
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
