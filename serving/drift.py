"""Model-health signals: how recent predictions compare with the model's reference profile.

The model thread only appends each batch (its model, rows and ranked answers) to a pending list:
no work on the hot path. A scrape of /metrics profiles what is pending (labels, confidences,
out-of-vocabulary shares, missing fields), slides the window (at most `size` products, none older
than `max_age`), and reports distances to the reference the model carries in its metadata:
Jensen-Shannon distance for predicted labels, PSI for confidence and out-of-vocabulary histograms
(see `serving.distances`). Between scrapes at most `size` products wait; older ones are
dropped unprofiled (counted in `prediction_drift_unprofiled_total`).

Each profiled product is also counted by its most probable class and that class's probability,
as the reference counts it, for every task (`predictions_total` counts every tag or path node).

Labels stay bounded: model version, metric kind, the model's classes, and the field names of the
model's contract. Only the served version's series are exported: a swap (`expect`) starts the new
version's window and counters, and the previous version's series vanish from the next scrape
(Prometheus marks them stale); its products still queued then are left out. The families
themselves are built in `serving.drift_families`.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from serving.distances import (
    OOV_EDGES,
    binned_shares,
    is_filled,
    jensen_shannon_distance,
    label_shares,
    population_stability_index,
)
from serving.drift_families import (
    CONFIDENCE_EDGES,
    Totals,
    reference_bin,
    total_families,
    window_families,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Batch:
    """What the model thread hands over: the served model, its rows and ranked answers."""

    model: Any  # serving.model.ServedModel (not imported: this module stays below it)
    rows: Sequence[Mapping[str, Any]]
    ranked: Sequence[Sequence[Mapping[str, Any]]]
    at: float


@dataclass(frozen=True)
class Seen:
    """One profiled product of the window."""

    at: float
    label: str
    confidence: float
    oov: float | None


class DriftWatch(Collector):
    """A prometheus-client collector computing drift scores of the served model on scrape."""

    def __init__(self, size: int = 2000, max_age_seconds: float = 3600.0) -> None:
        self.size = size
        self.max_age = max_age_seconds
        self._lock = threading.Lock()  # guards the pending batches (model thread vs. scrape)
        self._scrape_lock = threading.Lock()  # one scrape at a time updates the window
        self._pending: deque[Batch] = deque()
        self._pending_rows = 0
        self._window: deque[Seen] = deque(maxlen=size)
        self._model: Any = None
        self._retired: set[str] = set()  # versions served before: their late batches are left out
        self.totals = Totals()  # of the served version
        self.unprofiled = 0

    def configure(self, size: int, max_age_seconds: float) -> None:
        with self._scrape_lock, self._lock:
            self.size, self.max_age = size, max_age_seconds
            self._window = deque(self._window, maxlen=size)

    def expect(self, model: Any) -> None:
        """A model was loaded (at start or by a swap): its version's series start now, its input
        fields and classes counted from 0, so that a rate over the counters sees its first
        products (a counter's first sample is its baseline)."""
        if model is not None:
            with self._scrape_lock:
                self._serve(model)
                for name in model.contract.names:
                    self.totals.missing.setdefault(name, 0)
                for label in model.classes:
                    self.totals.top_classes.setdefault(str(label), 0)

    def _serve(self, model: Any) -> None:
        """Profile `model`'s version from now on; another version before it is retired: its
        window, reference and counters are dropped (its series leave /metrics)."""
        version = str(model.ref.version)
        self._retired.discard(version)  # served again (a rollback): its batches count again
        if self._model is not None and str(self._model.ref.version) == version:
            self._model = model
            return
        if self._model is not None:
            self._retired.add(str(self._model.ref.version))
        self._model = model
        self._window.clear()
        self.totals = Totals()

    # -- hot path: the model thread --------------------------------------------------------

    def observe(self, model: Any, rows: Sequence[Mapping[str, Any]], ranked: Sequence[Any]) -> None:
        """Queue one batch for profiling at the next scrape (O(1) apart from rare drops)."""
        with self._lock:
            self._pending.append(Batch(model, rows, ranked, time.time()))
            self._pending_rows += len(rows)
            while self._pending_rows - len(self._pending[0].rows) >= self.size:
                dropped = self._pending.popleft()
                self._pending_rows -= len(dropped.rows)
                self.unprofiled += len(dropped.rows)

    # -- on scrape ---------------------------------------------------------------------------

    def update(self) -> None:
        """Profile what is pending and slide the window."""
        with self._lock:
            batches, self._pending, self._pending_rows = list(self._pending), deque(), 0
        for batch in batches:
            self._profile(batch)
        horizon = time.time() - self.max_age if self.max_age > 0 else -math.inf
        while self._window and self._window[0].at < horizon:
            self._window.popleft()

    def _profile(self, batch: Batch) -> None:
        version = str(batch.model.ref.version)
        if self._model is None or str(self._model.ref.version) != version:
            if version in self._retired:  # answered just before a swap: that version is gone
                return
            self._serve(batch.model)  # a version not announced by `expect` yet
        oov = oov_shares(batch.model, batch.rows)
        for field_name in batch.model.contract.names:
            missing = sum(not is_filled(row.get(field_name)) for row in batch.rows)
            self.totals.missing[field_name] += missing
        for i, answer in enumerate(batch.ranked):
            share = None if oov is None else float(oov[i])
            seen = Seen(batch.at, str(answer[0]["label"]), float(answer[0]["probability"]), share)
            self._window.append(seen)
            self._count_top_class(seen)
            if share is not None:
                self._count_oov(share)

    def _count_top_class(self, seen: Seen) -> None:
        totals = self.totals
        totals.top_classes[seen.label] += 1
        totals.top_probability_bins[reference_bin(seen.confidence, CONFIDENCE_EDGES)] += 1
        totals.top_probability_sum += seen.confidence

    def _count_oov(self, share: float) -> None:
        totals = self.totals
        totals.oov_buckets[reference_bin(share, OOV_EDGES)] += 1
        totals.oov_sum += share
        totals.oov_count += 1

    def scores(self) -> dict[str, float]:
        """Drift of the current window against the served model's reference, by kind."""
        profile = reference_of(self._model)
        window = list(self._window)
        if profile is None or not window:
            return {}
        scores = {
            "label": jensen_shannon_distance(
                label_shares([s.label for s in window]), profile["labels"]
            ),
            "confidence": population_stability_index(
                binned_shares([s.confidence for s in window], profile["confidence"]["edges"]),
                profile["confidence"]["shares"],
            ),
        }
        oov = [s.oov for s in window if s.oov is not None]
        if oov and "oov" in profile:
            shares = binned_shares(oov, profile["oov"]["edges"])
            scores["oov"] = population_stability_index(shares, profile["oov"]["shares"])
        return scores

    def means(self) -> dict[str, float]:
        window = list(self._window)
        oov = [s.oov for s in window if s.oov is not None]
        means = {"confidence": sum(s.confidence for s in window) / len(window)} if window else {}
        return means | ({"oov": sum(oov) / len(oov)} if oov else {})

    def collect(self) -> Iterator[Metric]:
        with self._scrape_lock:
            self.update()
            families = list(self._families())
        yield from families

    def _families(self) -> Iterator[Metric]:
        version = str(self._model.ref.version) if self._model is not None else None
        yield from window_families(
            version, len(self._window), self.scores(), self.means(), reference_of(self._model)
        )
        yield from total_families(self.totals, version, self.unprofiled)


def reference_of(model: Any) -> Mapping[str, Any] | None:
    """The reference profile the served model carries, if it has one (models from before drift
    profiles have none)."""
    if model is None:
        return None
    profile = getattr(model.predictor, "profile", None)
    return profile if isinstance(profile, Mapping) and profile.get("labels") else None


def oov_shares(model: Any, rows: Sequence[Mapping[str, Any]]) -> Sequence[float] | None:
    """Out-of-vocabulary share per row from the model's own code, None if it cannot tell."""
    measure = getattr(model.predictor, "oov_shares", None)
    if measure is None:
        return None
    try:
        return list(measure(list(rows)))
    except Exception:  # a model's own code failing here must never break /metrics
        log.exception("out-of-vocabulary shares failed; drift window without them")
        return None
