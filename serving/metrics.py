"""Every Prometheus metric of the server, defined once, labelled by route template, method,
status, model name/version/alias and predicted label — never by raw path or other user input.

With PROMETHEUS_MULTIPROC_DIR set (several workers), values live in that directory and /metrics
aggregates every worker; the process_* metrics are then those of the worker that answers.

The prediction series carry the answering model's version, so that `product-monitor` judges a
champion on its own answers; a retired version's series are removed (Prometheus marks them stale),
except from the multiprocess files, which keep their last values until the workers restart.
"""

from __future__ import annotations

import os
from collections import Counter as Tally
from collections.abc import Iterable, Sequence
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
    multiprocess,
)

from serving.drift import DriftWatch

REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)
LOAD_BUCKETS = (0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)


def multiprocess_mode() -> bool:
    """Whether prometheus-client keeps values in PROMETHEUS_MULTIPROC_DIR (read at its import)."""
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class ServingMetrics:
    """The server's metrics in their own registry (a fresh one per app, so tests don't share)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        if not multiprocess_mode():
            add_runtime_collectors(self.registry)
        r = self.registry
        self._request_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._served_version = ""  # of the last model loaded: the default of observe_predictions
        self._labels_by_version: dict[str, set[str]] = {}  # the children to remove on retirement
        self._retired_versions: set[str] = set()  # late answers of these are not counted
        self.http_requests = Counter(
            "http_requests", "HTTP requests answered.", ["route", "method", "status"], registry=r
        )
        self.http_duration = Histogram(
            "http_request_duration_seconds",
            "Time from request start to the end of the response.",
            ["route", "method", "status"],
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "http_requests_in_flight",
            "Requests being answered.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.predictions = Counter(
            "predictions",
            "Products classified, by predicted label and the version of the model that answered.",
            ["label", "version"],
            registry=r,
        )
        self.confidence = Histogram(
            "prediction_confidence",
            "Probability of the predicted label, by the version of the model that answered.",
            ["version"],
            buckets=CONFIDENCE_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "prediction_batch_size", "Rows per model call.", buckets=BATCH_BUCKETS, registry=r
        )
        self.prediction_log_dropped = Counter(
            "prediction_log_dropped_lines",
            "Prediction log lines lost because the PREDICTION_LOG file could not be written.",
            registry=r,
        )
        self._define_model_metrics(r)
        self.drift = DriftWatch()  # model-health signals, computed on scrape (serving/drift.py)
        r.register(self.drift)

    def _define_model_metrics(self, r: CollectorRegistry) -> None:
        self.model_info = Gauge(
            "model_info",
            "The model being served (value 1).",
            ["name", "version", "alias"],
            registry=r,
            multiprocess_mode="max",
        )
        self.load_duration = Histogram(
            "model_load_duration_seconds",
            "Time to load and warm a model.",
            buckets=LOAD_BUCKETS,
            registry=r,
        )
        self.wanted_info = Gauge(
            "model_wanted_info",
            "The model the settings ask for now, the alias's version (value 1).",
            ["name", "version", "alias"],
            registry=r,
            multiprocess_mode="max",
        )
        self.load_failures = Counter(
            "model_load_failures",
            "Failed attempts to resolve or load a model, by version (empty if the registry could"
            " not name one) and reason: registry_miss, artifact_missing, load_error, unreachable,"
            " registry_refused.",
            ["version", "reason"],
            registry=r,
        )
        self.last_load = Gauge(
            "model_last_load_timestamp_seconds",
            "Unix time of the last successful model load.",
            registry=r,
            multiprocess_mode="max",
        )

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        children = self._request_children.get(key)
        if children is None:  # `labels()` checks and converts its values, under a lock
            labels = (route, method, str(status))
            children = self.http_requests.labels(*labels), self.http_duration.labels(*labels)
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_batch(self, rows: int) -> None:
        self.batch_size.observe(rows)

    def observe_predictions(
        self, labels: Iterable[str], confidences: Iterable[float], version: str | None = None
    ) -> None:
        """Count one batch's answers under the `version` that gave them (default: the version
        loaded last, which misplaces a batch in flight across a swap). A retired version's late
        answers are not counted: its series are gone, and stay gone (bounded labels)."""
        version = self._served_version if version is None else str(version)
        if version in self._retired_versions:
            return
        counted = Tally(labels)
        self._labels_by_version.setdefault(version, set()).update(counted)
        for label, count in counted.items():
            self.predictions.labels(label, version).inc(count)
        confidence = self.confidence.labels(version)
        for value in confidences:
            confidence.observe(value)

    def model_loaded(
        self, identity: tuple[str, str, str], classes: Sequence[str], seconds: float, at: float
    ) -> None:
        """Record a successful load; `identity` is (name, version, alias)."""
        version = self._served_version = identity[1]
        self._retired_versions.discard(version)
        self._labels_by_version.setdefault(version, set()).update(classes)
        for label in classes:  # every class shows up at 0 before its first prediction
            self.predictions.labels(label, version)
        self.confidence.labels(version)  # so does the histogram: increase() sees its first
        self.model_info.labels(*identity).set(1)
        self.load_duration.observe(seconds)
        self.last_load.set(at)

    def model_retired(self, identity: tuple[str, str, str]) -> None:
        """The model `identity` no longer serves: its series leave /metrics (and go stale)."""
        self.model_info.labels(*identity).set(0)  # a multiprocess file keeps the last value
        self.model_info.remove(*identity)
        version = identity[1]
        self._retired_versions.add(version)
        for label in self._labels_by_version.pop(version, set()):
            self.predictions.remove(label, version)
        self.confidence.remove(version)

    def model_wanted(
        self, identity: tuple[str, str, str], previous: tuple[str, str, str] | None
    ) -> None:
        """The alias now names `identity` (name, version, alias) instead of `previous`."""
        if previous is not None:
            self.wanted_info.labels(*previous).set(0)  # a multiprocess file keeps the last value
            self.wanted_info.remove(*previous)
        self.wanted_info.labels(*identity).set(1)

    def model_load_failed(self, version: str, reason: str) -> None:
        self.load_failures.labels(version, reason).inc()

    def prediction_log_failed(self, lines: int) -> None:
        """`lines` prediction log lines were lost (PredictionLog's `count_dropped`)."""
        self.prediction_log_dropped.inc(lines)

    def render(self) -> tuple[bytes, str]:
        """The text exposition and its content type."""
        if not multiprocess_mode():
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        registry = CollectorRegistry()
        WorkerFilesCollector(registry)
        add_runtime_collectors(registry)
        registry.register(self.drift)  # per worker: each keeps its own window
        return generate_latest(registry), CONTENT_TYPE_LATEST


class WorkerFilesCollector(multiprocess.MultiProcessCollector):
    """prometheus-client's multiprocess collector, minus files still being created.

    A worker creates its file empty and then sizes it; a scrape in between failed the whole
    /metrics answer (the file's header could not be read). An empty file holds no values yet.
    """

    def collect(self):
        files = Path(self._path).glob("*.db")
        return self.merge([str(file) for file in files if has_content(file)], accumulate=True)


def has_content(file: Path) -> bool:
    """Whether the file exists and is not empty (it may vanish: a dead worker's live gauges)."""
    try:
        return file.stat().st_size > 0
    except FileNotFoundError:
        return False


def add_runtime_collectors(registry: CollectorRegistry) -> None:
    """The default process_*, python_gc_* and python_info metrics."""
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)


def mark_worker_dead(pid: int) -> None:
    """Drop this worker's live gauges from the multiprocess directory when it stops."""
    if multiprocess_mode():
        multiprocess.mark_process_dead(pid)
