"""The prediction core: readiness, loading and hot-swapping models, batched prediction.

No web framework here: `api.py` maps HTTP onto these methods, and tests can call them directly.
Model work runs on one dedicated thread (fed by the micro-batcher); loading runs on another, so
neither blocks the event loop and a new model is loaded and warmed while the old one serves.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from serving.batching import MicroBatcher, Traffic
from serving.errors import ModelLoadError, ModelNotReadyError
from serving.logs import request_id_var
from serving.metrics import ServingMetrics
from serving.model import ModelLocator, ModelRef, ServedModel, short
from serving.prediction_log import PredictionLog
from serving.settings import Settings
from serving.validation import Limits, check_products

log = logging.getLogger(__name__)

T = TypeVar("T")
Product = dict[str, Any]
RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reason: str | None
    model: ModelRef | None


@dataclass(frozen=True)
class PredictionResult:
    model: ModelRef
    predictions: list[dict[str, Any]]


@dataclass(frozen=True)
class _Job:
    products: list[Product]
    top_k: int


_Answer = tuple[ServedModel, list[dict[str, Any]]]


class PredictionService:
    """Serves the model the settings point to and keeps it current."""

    def __init__(
        self,
        settings: Settings,
        metrics: ServingMetrics,
        locator: ModelLocator | None = None,
        load_model: Callable[[ModelRef], ServedModel] = ServedModel.load,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.locator = locator or ModelLocator(settings)
        self.load_model = load_model
        self.limits = Limits(settings.max_products_per_request, settings.max_text_chars)
        metrics.drift.configure(settings.drift_window_size, settings.drift_window_seconds)
        self.prediction_log = (
            PredictionLog(settings.prediction_log, settings.prediction_log_fields)
            if settings.prediction_log
            else None
        )
        self._model: ServedModel | None = None
        self._reason = "loading"
        self.traffic = Traffic()
        self._open_threads()
        self._keeper: asyncio.Task[None] | None = None
        self._first_attempt = asyncio.Event()

    # -- lifecycle ---------------------------------------------------------------------------

    def _open_threads(self) -> None:
        self._model_thread = ThreadPoolExecutor(1, "model", initializer=prepare_model_thread)
        self._load_thread = ThreadPoolExecutor(1, "model-loader")
        self._batcher: MicroBatcher[_Job, _Answer] = MicroBatcher(
            self._predict_batch,
            self._model_thread,
            self.settings.batch_max_size,
            self.settings.batch_max_wait_ms / 1000,
            self.traffic,
        )
        self._closed = False

    async def start(self) -> None:
        """Start batching and load the model in the background (never blocks start-up)."""
        if self._closed:  # started again after a stop (tests do)
            self._open_threads()
        self._batcher.start()
        self._keeper = asyncio.create_task(self._keep_model_current(), name="model-keeper")

    async def first_attempt_done(self) -> None:
        """Wait until the first load attempt has ended, whether it succeeded or not."""
        await self._first_attempt.wait()

    async def stop(self) -> None:
        if self._keeper is not None:
            self._keeper.cancel()
            await asyncio.gather(self._keeper, return_exceptions=True)
        await self._batcher.stop()
        self._model_thread.shutdown(wait=True)
        self._load_thread.shutdown(wait=False, cancel_futures=True)
        self._closed = True

    # -- queries -----------------------------------------------------------------------------

    @property
    def model(self) -> ServedModel | None:
        return self._model

    def readiness(self) -> Readiness:
        model = self._model
        if model is None:
            return Readiness(False, self._reason, None)
        return Readiness(True, None, model.ref)

    def model_card(self) -> dict[str, Any]:
        """What /v1/model shows: identity, training metrics and classes of the served model."""
        model = self._require_model()
        ref = model.ref
        return {
            "name": ref.name,
            "version": ref.version,
            "alias": ref.alias,
            "run_id": ref.run_id,
            "source": ref.uri,
            "loaded_at": model.loaded_at,
            "metrics": model.metrics,
            "task": model.contract.task,
            "input_fields": model.contract.describe(),
            "classes": [str(label) for label in model.classes],
        }

    async def predict(self, products: list[Product], top_k: int) -> PredictionResult:
        """Labels for `products` (in order) from one model; limits are checked first."""
        rows = check_products(products, self._require_model().contract, self.limits)
        model, predictions = await self._batcher.submit(_Job(rows, top_k), len(rows))
        if self.prediction_log is not None:  # opt in (PREDICTION_LOG)
            identity = (model.ref.name, model.ref.version)
            self.prediction_log.write(request_id_var.get(), identity, rows, predictions)
        return PredictionResult(model.ref, predictions)

    def _require_model(self) -> ServedModel:
        model = self._model
        if model is None:
            raise ModelNotReadyError(f"no model loaded yet: {self._reason}")
        return model

    # -- prediction, on the model thread ----------------------------------------------------

    def _predict_batch(self, jobs: list[_Job]) -> list[_Answer]:
        model = self._require_model()  # one snapshot: a swap never mixes models in a batch
        rows = [product for job in jobs for product in job.products]
        proba = model.predict_proba(rows)
        k = min(max(job.top_k for job in jobs), proba.shape[1])
        order = np.argsort(-proba, axis=1, kind="stable")[:, :k]
        ranked = ranked_labels(proba, order, model.classes)
        self.metrics.observe_batch(len(rows))
        self.metrics.observe_predictions(
            (row[0]["label"] for row in ranked), (row[0]["probability"] for row in ranked)
        )
        self.metrics.drift.observe(model, rows, ranked)
        results: list[_Answer] = []
        start = 0
        for job in jobs:
            mine = ranked[start : start + len(job.products)]
            start += len(job.products)
            results.append((model, [as_prediction(row[: job.top_k]) for row in mine]))
        return results

    # -- keeping the model current -----------------------------------------------------------

    async def _keep_model_current(self) -> None:
        await self._load_until_ready()
        self._first_attempt.set()
        interval = self.settings.reload_interval_seconds
        if interval <= 0 or not self.locator.can_change:
            return
        while True:
            await asyncio.sleep(interval)
            await self.refresh()

    async def _load_until_ready(self) -> None:
        attempt = 0
        while not await self.refresh():
            self._first_attempt.set()
            delay = RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)]
            attempt += 1
            log.info("retrying model load", extra={"delay_seconds": delay, "attempt": attempt})
            await asyncio.sleep(delay)

    async def refresh(self) -> bool:
        """Serve the model the settings point to now. True if that model is being served
        (already or after a swap); False if it could not be found or loaded (counted, logged,
        and the current model, if any, keeps serving)."""
        try:
            ref = await self._on_loader(self.locator.resolve)
            current = self._model
            if current is not None and current.ref == ref:
                return True
            model = await self._on_loader(self._timed_load, ref)
        except ModelLoadError as exc:
            self._load_failed(exc.reason)
            return False
        except Exception as exc:
            log.exception("unexpected error while loading a model")
            self._load_failed(f"model load failed: {short(exc)}")
            return False
        self._swap(model)
        return True

    def _timed_load(self, ref: ModelRef) -> tuple[ServedModel, float]:
        started = time.perf_counter()
        model = self.load_model(ref)
        return model, time.perf_counter() - started

    def _swap(self, loaded: tuple[ServedModel, float]) -> None:
        model, seconds = loaded
        previous, self._model = self._model, model  # one assignment: requests see old or new
        self._model_thread.submit(limit_native_threads)
        self._load_thread.submit(settle_heap)
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

    def _load_failed(self, reason: str) -> None:
        self.metrics.model_load_failed()
        if self._model is None:
            self._reason = reason
        log.warning(
            "model load failed", extra={"reason": reason, "serving_previous": bool(self._model)}
        )

    async def _on_loader(self, function: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._load_thread, function, *args)


def identity(ref: ModelRef) -> tuple[str, str, str]:
    return ref.name, ref.version, ref.alias or ""


def ranked_labels(
    proba: np.ndarray, order: np.ndarray, classes: np.ndarray
) -> list[list[dict[str, Any]]]:
    """For each row, the labels in `order` with their probabilities (rounded to 6 places)."""
    labels = classes[order]
    scores = np.take_along_axis(proba, order, axis=1).round(6)
    return [
        [
            {"label": str(label), "probability": float(p)}
            for label, p in zip(row_l, row_p, strict=True)
        ]
        for row_l, row_p in zip(labels.tolist(), scores.tolist(), strict=True)
    ]


def as_prediction(top: list[dict[str, Any]]) -> dict[str, Any]:
    return {"label": top[0]["label"], "probability": top[0]["probability"], "top_k": top}


def settle_heap() -> None:
    """Collect once, then freeze what survives (mostly the model's several hundred thousand
    objects) out of the cyclic garbage collector's reach: a full collection over them takes about
    0.25 s with every thread stopped, and showed up as p99 latency spikes. Unfreezing first lets
    the collection free a replaced model's reference cycles."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def prepare_model_thread() -> None:
    """The model thread skips scikit-learn's per-call input checks (its configuration is per
    thread): the model is trusted and its inputs were validated by the API."""
    import sklearn

    sklearn.set_config(assume_finite=True, skip_parameter_validation=True)
    limit_native_threads()


def limit_native_threads() -> None:
    """One BLAS/OpenMP thread: the model calls are small, and extra threads only add overhead."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)
