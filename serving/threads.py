"""An executor whose threads never hold the process at exit.

`ThreadPoolExecutor` threads are joined when the interpreter exits, so a model download stuck on
an MLflow server that accepts connections but never answers kept a stopped server alive until the
download timed out. Here the threads are daemons: the process exits when its main thread is done.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

_Work = tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class DaemonThreadExecutor(Executor):
    """Runs submitted calls in order on `threads` daemon threads (one: one call at a time).
    `initializer` runs first on each thread."""

    def __init__(
        self, name: str, initializer: Callable[[], None] | None = None, threads: int = 1
    ) -> None:
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        self._queue: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._initializer = initializer
        self._closed = False
        names = [name] if threads == 1 else [f"{name}-{i}" for i in range(threads)]
        self._threads = [threading.Thread(target=self._work, name=n, daemon=True) for n in names]
        for thread in self._threads:
            thread.start()

    @property
    def threads(self) -> int:
        return len(self._threads)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        if self._closed:
            raise RuntimeError("cannot submit work after shutdown")
        future: Future[Any] = Future()
        self._queue.put((future, fn, args, kwargs))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """No new work; with `cancel_futures`, queued calls are dropped; the calls running now
        finish on their own (they are never waited for unless `wait`)."""
        self._closed = True
        if cancel_futures:
            self._cancel_queued()
        for _ in self._threads:
            self._queue.put(None)
        if wait:
            for thread in self._threads:
                thread.join()

    def _cancel_queued(self) -> None:
        while True:
            try:
                work = self._queue.get_nowait()
            except queue.Empty:
                return
            if work is not None:
                work[0].cancel()

    def _work(self) -> None:
        if self._initializer is not None:
            self._initializer()
        while (work := self._queue.get()) is not None:
            future, fn, args, kwargs = work
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:  # handed to the caller, like ThreadPoolExecutor does
                future.set_exception(exc)
            else:
                future.set_result(result)
