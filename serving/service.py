"""The prediction core: readiness, the served model, batched and fairly shared prediction.

No web framework here: `api.py` maps HTTP onto these methods, and tests can call them directly.
Model work runs on dedicated model threads (MODEL_THREADS, fed by the micro-batcher); loading and
hot-swapping run in `ModelKeeper` on another, so neither blocks the event loop and a new model is
loaded and warmed while the old one serves. Large requests are cut into BATCH_MAX_SIZE chunks that
queue behind smaller requests (see `serving.batching`); between chunks a request stops if its
client left or its deadline passed.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from serving.answers import answered_classes, as_prediction, ranked_labels, task_answer
from serving.batching import MicroBatcher, Overlap, Traffic
from serving.errors import ClientGoneError, DeadlineExceededError, ModelNotReadyError
from serving.keeper import ModelKeeper
from serving.logs import request_id_var
from serving.metrics import ServingMetrics
from serving.model import ModelLocator, ModelRef, ServedModel
from serving.prediction_log import PredictionLog
from serving.settings import Settings
from serving.threads import DaemonThreadExecutor
from serving.validation import Limits, check_products
from serving.watch import RequestWatch, current_watch

log = logging.getLogger(__name__)

Product = dict[str, Any]


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
    model: ServedModel  # the model of the request's first chunk: one model per answer
    products: list[Product]
    top_k: int


_Answer = list[dict[str, Any]]


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
        self.limits = Limits(settings.max_products_per_request, settings.max_text_chars)
        metrics.drift.configure(settings.drift_window_size, settings.drift_window_seconds)
        self.prediction_log = (
            PredictionLog(
                settings.prediction_log,
                settings.prediction_log_fields,
                metrics.prediction_log_failed,
            )
            if settings.prediction_log
            else None
        )
        self.keeper = ModelKeeper(
            settings, metrics, locator or ModelLocator(settings), load_model, self._after_swap
        )
        self.traffic = Traffic()
        self._swaps = 0
        self._open_threads()

    # -- lifecycle ---------------------------------------------------------------------------

    def _open_threads(self) -> None:
        threads = self.settings.model_threads or usable_cores()
        self._model_threads = DaemonThreadExecutor(
            "model", initializer=prepare_model_thread, threads=threads
        )
        self._batcher: MicroBatcher[_Job, _Answer] = MicroBatcher(
            self._predict_batch,
            self._model_threads,
            self.settings.batch_max_size,
            self.settings.batch_max_wait_ms / 1000,
            self.traffic,
            calls=threads,
        )
        self._closed = False

    async def start(self) -> None:
        """Start batching and load the model in the background (never blocks start-up)."""
        if self._closed:  # started again after a stop (tests do)
            self._open_threads()
        self._batcher.start()
        self.keeper.start()

    async def first_attempt_done(self) -> None:
        """Wait until the first load attempt has ended, whether it succeeded or not."""
        await self.keeper.first_attempt.wait()

    async def stop(self) -> None:
        """Stop at once: queued predictions get a 503, a load in progress is abandoned."""
        await self.keeper.stop()
        await self._batcher.stop()
        self._model_threads.shutdown(wait=False)
        self._closed = True

    # -- queries -----------------------------------------------------------------------------

    @property
    def model(self) -> ServedModel | None:
        return self.keeper.model

    @property
    def load_model(self) -> Callable[[ModelRef], ServedModel]:
        return self.keeper.load_model

    @load_model.setter
    def load_model(self, load: Callable[[ModelRef], ServedModel]) -> None:
        self.keeper.load_model = load

    async def refresh(self) -> bool:
        """Serve the model the settings point to now (see `ModelKeeper.refresh`)."""
        return await self.keeper.refresh()

    def readiness(self) -> Readiness:
        model = self.keeper.model
        if model is None:
            return Readiness(False, self.keeper.not_ready_reason, None)
        return Readiness(True, None, model.ref)

    def model_card(self) -> dict[str, Any]:
        """What /v1/model shows: identity, training metrics and classes of the served model, and
        the last failure to serve the wanted version while this one still serves."""
        model = self._require_model()
        ref = model.ref
        failure = self.keeper.failure
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
            "pending_failure": failure.as_dict() if failure else None,
        }

    async def predict(self, products: list[Product], top_k: int) -> PredictionResult:
        """Labels for `products` (in order) from one model; limits and the model's input
        contract are checked first. Chunks of BATCH_MAX_SIZE products queue one after the other;
        `ClientGoneError` if the client left, `DeadlineExceededError` past
        REQUEST_TIMEOUT_SECONDS."""
        model = self._require_model()
        rows = check_products(products, model.contract, self.limits)
        watch = current_watch()
        size = self.settings.batch_max_size
        predictions: list[dict[str, Any]] = []
        for start in range(0, len(rows), size):
            if start and await watch.client_gone():
                raise ClientGoneError("the client closed the connection")
            job = _Job(model, rows[start : start + size], top_k)
            predictions += await self._run_chunk(job, priority=start, watch=watch)
        if self.prediction_log is not None:  # opt in (PREDICTION_LOG)
            identity = (model.ref.name, model.ref.version)
            self.prediction_log.write(request_id_var.get(), identity, rows, predictions)
        return PredictionResult(model.ref, predictions)

    async def _run_chunk(self, job: _Job, priority: int, watch: RequestWatch) -> _Answer:
        timeout = self.settings.request_timeout_seconds
        if timeout <= 0:
            return await self._batcher.submit(job, len(job.products), priority)
        try:
            async with asyncio.timeout_at(watch.started + timeout):
                return await self._batcher.submit(job, len(job.products), priority)
        except TimeoutError:
            raise DeadlineExceededError(
                f"the prediction took longer than {timeout:g} s; retry, or send fewer products"
            ) from None

    def _require_model(self) -> ServedModel:
        model = self.keeper.model
        if model is None:
            failure = self.keeper.failure
            log.info(  # the client gets the reason in user terms; the details go here
                "no model to answer with",
                extra={
                    "reason": failure.reason if failure else "loading",
                    "detail": failure.detail if failure else None,
                },
            )
            raise ModelNotReadyError(f"no model loaded yet: {self.keeper.not_ready_reason}")
        return model

    def _after_swap(self) -> None:
        self._swaps += 1  # each model thread limits native threads again before its next call
        self.metrics.drift.expect(self.keeper.model)

    # -- prediction, on the model thread ----------------------------------------------------

    def _predict_batch(self, jobs: list[_Job], overlap: Overlap) -> list[_Answer]:
        """One model call per model in the batch (one, except while a swap is under way); the
        last one's forest walk may overlap the next batch (`overlap`, see `serving.batching`)."""
        if getattr(_model_thread, "swaps", None) != self._swaps:  # a new model may bring
            limit_native_threads()  # native libraries with thread pools of their own
            _model_thread.swaps = self._swaps
        answers: dict[int, _Answer] = {}
        models = list({id(job.model): job.model for job in jobs}.values())
        for model in models:
            mine = [(i, job) for i, job in enumerate(jobs) if job.model is model]
            last = model is models[-1]
            ranked, extras = self._rank(model, [job for _, job in mine], overlap if last else None)
            for (i, job), rows, more in zip(mine, ranked, extras, strict=True):
                answers[i] = [
                    as_prediction(row[: job.top_k]) | extra
                    for row, extra in zip(rows, more, strict=True)
                ]
        return [answers[i] for i in range(len(jobs))]

    def _rank(
        self, model: ServedModel, jobs: list[_Job], overlap: Overlap | None = None
    ) -> tuple[list[list[list[dict[str, Any]]]], list[list[dict[str, Any]]]]:
        """For each job, its products' labels ranked by probability (the largest top_k asked),
        and what a multilabel or path model adds to each answer (`task_answer`)."""
        rows = [product for job in jobs for product in job.products]
        proba = model.predict_proba(rows, overlap)
        k = min(max(job.top_k for job in jobs), proba.shape[1])
        order = np.argsort(-proba, axis=1, kind="stable")[:, :k]
        ranked = ranked_labels(proba, order, model.classes)
        chosen = model.answers(proba)
        extras = [task_answer(model, row) for row in chosen] if chosen else [{} for _ in rows]
        self.metrics.observe_batch(len(rows))
        version = str(model.ref.version)  # the version that answered, even across a swap
        if chosen is None:
            self.metrics.observe_predictions(
                (row[0]["label"] for row in ranked),
                (row[0]["probability"] for row in ranked),
                version,
            )
        else:
            self.metrics.observe_predictions(*answered_classes(model, chosen), version)
        self.metrics.drift.observe(model, rows, ranked)
        per_job, more, start = [], [], 0
        for job in jobs:
            per_job.append(ranked[start : start + len(job.products)])
            more.append(extras[start : start + len(job.products)])
            start += len(job.products)
        return per_job, more


_model_thread = threading.local()  # per model thread: the swaps it has limited threads after


def prepare_model_thread() -> None:
    """The model thread skips scikit-learn's per-call input checks (its configuration is per
    thread): the model is trusted and its inputs were validated by the API."""
    import sklearn

    sklearn.set_config(assume_finite=True, skip_parameter_validation=True)
    limit_native_threads()


def usable_cores() -> int:
    """Cores this process may use: its CPU affinity and cgroup quota, as joblib counts them."""
    import joblib

    return max(1, int(joblib.cpu_count()))


def limit_native_threads() -> None:
    """One BLAS/OpenMP thread: the model calls are small, and extra threads only add overhead."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)
