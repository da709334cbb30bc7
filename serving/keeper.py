"""Keeping the served model current: load at start, follow the alias, remember failures.

A version that failed to load (missing or broken files) is not downloaded again until the alias
moves or FAILED_LOAD_RETRY_SECONDS pass; the failure stays visible until then (metrics, logs,
/v1/model) while the previous model, if any, keeps serving. Loading runs on a daemon thread, so a
load stuck on an unresponsive MLflow never holds the process at shutdown.

The first model serves as soon as it can answer: its forest walk is compiled in the background,
and the exact NumPy walk answers until then. A model swapped in later is compiled before it takes
traffic, as the model it replaces was. A process that exits during a compile waits for it to end
(about a second; at most EXIT_WAIT_FOR_COMPILE_SECONDS): LLVM torn down under a compile running on
a daemon thread aborted the process (exit 134) instead of letting it exit 0.
"""

from __future__ import annotations

import asyncio
import atexit
import gc
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from serving.contract_changes import warn_of_contract_change
from serving.errors import ARTIFACT_MISSING, LOAD_ERROR, ModelLoadError
from serving.load_failures import LoadFailure, public_reason
from serving.loading import short
from serving.metrics import ServingMetrics
from serving.model import ModelLocator, ModelRef, ServedModel
from serving.settings import Settings
from serving.startup import resume_full_collections
from serving.threads import DaemonThreadExecutor

log = logging.getLogger(__name__)

T = TypeVar("T")
RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
# Failures tied to one version's files: retrying them at once would download the same files again.
VERSION_FAILURES = (ARTIFACT_MISSING, LOAD_ERROR)
EXIT_WAIT_FOR_COMPILE_SECONDS = 30.0


class ModelKeeper:
    """Owns the served model and swaps it when the settings point to another one."""

    def __init__(
        self,
        settings: Settings,
        metrics: ServingMetrics,
        locator: ModelLocator,
        load_model: Callable[[ModelRef], ServedModel],
        after_swap: Callable[[], None] = lambda: None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.locator = locator
        self.load_model = load_model
        self.after_swap = after_swap
        self.model: ServedModel | None = None
        self.failure: LoadFailure | None = None
        self.first_attempt = asyncio.Event()
        self._wanted: ModelRef | None = None
        self._loader = DaemonThreadExecutor("model-loader")
        self._task: asyncio.Task[None] | None = None

    @property
    def not_ready_reason(self) -> str:
        return self.failure.message if self.failure else "loading"

    def start(self) -> None:
        if self._loader is None:  # started again after a stop (tests do)
            self._loader = DaemonThreadExecutor("model-loader")
        self._task = asyncio.create_task(self._keep_current(), name="model-keeper")

    async def stop(self) -> None:
        """Stop following the alias; a load in progress is abandoned, not waited for."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self._loader.shutdown(wait=False, cancel_futures=True)
        self._loader = None  # type: ignore[assignment]

    async def _keep_current(self) -> None:
        attempt = 0
        while not await self.refresh():
            resume_full_collections()  # postponed for start-up; settle_heap resumes them on success
            self.first_attempt.set()
            delay = RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)]
            attempt += 1
            log.info("retrying model load", extra={"delay_seconds": delay, "attempt": attempt})
            await asyncio.sleep(delay)
        self.first_attempt.set()
        interval = self.settings.reload_interval_seconds
        if interval <= 0 or not self.locator.can_change:
            return
        while True:
            await asyncio.sleep(interval)
            await self.refresh()

    async def refresh(self) -> bool:
        """Serve the model the settings point to now. True if that model is being served
        (already or after a swap); False if it could not be found or loaded, or failed recently
        (counted, logged, and the current model, if any, keeps serving)."""
        try:
            ref = await self._on_loader(self.locator.resolve)
        except ModelLoadError as exc:
            self._failed(None, exc)
            return False
        self._want(ref)
        if self.model is not None and self.model.ref == ref:
            self.failure = None  # the alias came back to the served version
            return True
        if self._backing_off(ref):
            return False
        try:
            model, seconds = await self._on_loader(self._timed_load, ref)
        except ModelLoadError as exc:
            self._failed(ref, exc)
            return False
        except Exception as exc:
            log.exception("unexpected error while loading a model")
            self._failed(ref, ModelLoadError(LOAD_ERROR, short(exc)))
            return False
        self._swap(model, seconds)
        return True

    def _backing_off(self, ref: ModelRef) -> bool:
        failure = self.failure
        if failure is None or failure.ref != ref or failure.reason not in VERSION_FAILURES:
            return False
        return time.time() - failure.at < self.settings.failed_load_retry_seconds

    def _timed_load(self, ref: ModelRef) -> tuple[ServedModel, float]:
        """Load `ref`; when another model serves meanwhile (a hot swap), the new one also compiles
        its forest walk before it takes traffic. The first model answers at once instead, with the
        NumPy walk, and compiles once served (see `_swap`)."""
        started = time.perf_counter()
        model = self.load_model(ref)
        if self.model is not None:
            compile_fast_path(model)
        return model, time.perf_counter() - started

    def _want(self, ref: ModelRef) -> None:
        previous, self._wanted = self._wanted, ref
        if previous != ref:
            self.metrics.model_wanted(identity(ref), identity(previous) if previous else None)

    def _swap(self, model: ServedModel, seconds: float) -> None:
        previous, self.model = self.model, model  # one assignment: requests see old or new
        self.failure = None
        self.after_swap()
        self._loader.submit(settle_heap)
        if previous is None:  # a hot-swapped model compiled before the swap
            self._loader.submit(compile_fast_path, model)
        self._loader.submit(model.saved_environment.warn_of_mismatches)
        if previous is not None:
            self.metrics.model_retired(identity(previous.ref))
        classes = [str(label) for label in model.classes]
        self.metrics.model_loaded(identity(model.ref), classes, seconds, model.loaded_at)
        log.info(
            "model loaded",
            extra={
                "model_name": model.ref.name,
                "model_version": model.ref.version,
                "previous_version": previous.ref.version if previous else None,
                "load_seconds": round(seconds, 3),
            },
        )
        if previous is not None:
            warn_of_contract_change(previous, model)

    def _failed(self, ref: ModelRef | None, error: ModelLoadError) -> None:
        version = ref.version if ref else None
        self.metrics.model_load_failed(version or "", error.kind)
        message = public_reason(error.kind, self.settings, ref)
        self.failure = LoadFailure(ref, error.kind, message, time.time(), error.detail)
        served = self.model.ref.version if self.model else None
        log.warning(
            "model load failed: version %s: %s",
            version or "unknown",
            error.kind,
            extra={
                "model_name": self.settings.served_name,
                "model_version": version,
                "reason": error.kind,
                "detail": error.detail,
                "serving_version": served,
            },
        )

    async def _on_loader(self, function: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._loader, function, *args)


def identity(ref: ModelRef) -> tuple[str, str, str]:
    return ref.name, ref.version, ref.alias or ""


def compile_fast_path(model: ServedModel) -> None:
    """Compile the served model's fast forest walk in the background; if that fails, the model
    keeps answering (the same probabilities) with its NumPy walk, only slower."""
    started = time.perf_counter()
    try:
        with compiles.running() as allowed:
            if not allowed:  # the process is exiting
                return
            compiled = model.compile_fast_path()
    except Exception as exc:
        log.warning(
            "forest walk not compiled: answering with the NumPy walk",
            extra={"model_version": model.ref.version, "detail": short(exc)},
        )
        return
    if compiled:
        # numba's compiled code and type caches live as long as the process: out of the
        # collector's reach too, after a young collection (cheap) frees the compiler's garbage.
        gc.collect(1)
        gc.freeze()
        seconds = round(time.perf_counter() - started, 3)
        log.info(
            "forest walk compiled",
            extra={"model_version": model.ref.version, "compile_seconds": seconds},
        )


class _Compiles:
    """Compiles under way. At exit the process stops new ones and waits for these: a compile
    (LLVM, without the GIL) running on a daemon thread while the process tears LLVM down aborted
    it with exit 134 or a segmentation fault instead of exit 0."""

    def __init__(self) -> None:
        self._running = 0
        self._exiting = False
        self._changed = threading.Condition()
        self._registered = False

    @contextmanager
    def running(self) -> Iterator[bool]:
        """Counts the block as a compile; yields False (compile nothing) once the process exits."""
        with self._changed:
            if not self._registered:  # atexit handlers run before LLVM's own exit handlers
                atexit.register(self.wait_at_exit, EXIT_WAIT_FOR_COMPILE_SECONDS)
                self._registered = True
            allowed = not self._exiting
            self._running += allowed
        try:
            yield allowed
        finally:
            if allowed:
                with self._changed:
                    self._running -= 1
                    self._changed.notify_all()

    def wait_at_exit(self, timeout: float) -> bool:
        """Refuse new compiles and wait for those under way; False if some still run."""
        with self._changed:
            self._exiting = True
            return self._changed.wait_for(lambda: self._running == 0, timeout)


compiles = _Compiles()


def settle_heap() -> None:
    """Collect once, then freeze what survives (mostly the model's several hundred thousand
    objects) out of the cyclic garbage collector's reach: a full collection over them takes about
    0.25 s with every thread stopped, and showed up as p99 latency spikes. Unfreezing first lets
    the collection free a replaced model's reference cycles."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    resume_full_collections()  # paused for start-up: from here on it sees only new objects
