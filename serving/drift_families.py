"""The drift signals as Prometheus families: the window's scores and means (gauges), and the
counters of the served version (missing inputs, out-of-vocabulary and top-class histograms, binned
as the reference profile bins them, so that `product-monitor` can compare them with it).

Every family but `prediction_drift_unprofiled_total` carries the served model's `version`, so that
`product-monitor` counts the champion's own answers only; a swap starts the new version's series at
0 and drops the previous version's (Prometheus marks them stale), which keeps one version's series.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from serving.distances import OOV_EDGES

CONFIDENCE_EDGES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
"""Bins of the exported top-class probability histogram (the reference profile's own)."""


@dataclass
class Totals:
    """Counters of one model version since it was served: missing inputs per field,
    out-of-vocabulary histogram, each product's most probable class and its probability (binned
    as the reference bins)."""

    missing: Counter[str] = field(default_factory=Counter)
    oov_buckets: list[int] = field(default_factory=lambda: [0] * (len(OOV_EDGES) - 1))
    oov_sum: float = 0.0
    oov_count: int = 0
    top_classes: Counter[str] = field(default_factory=Counter)
    top_probability_bins: list[int] = field(
        default_factory=lambda: [0] * (len(CONFIDENCE_EDGES) - 1)
    )
    top_probability_sum: float = 0.0


def window_families(
    version: str | None,
    size: int,
    scores: Mapping[str, float],
    means: Mapping[str, float],
    profile: Mapping[str, Any] | None,
) -> Iterator[Metric]:
    drift = GaugeMetricFamily(
        "prediction_drift_score",
        "Drift of the recent-predictions window from the model's reference: Jensen-Shannon "
        "distance (kind=label) or PSI (kind=confidence, oov).",
        labels=["kind", "version"],
    )
    window = GaugeMetricFamily(
        "prediction_drift_window_size",
        "Products in the drift window (0: no traffic, scores absent).",
        labels=["version"],
    )
    live = GaugeMetricFamily(
        "prediction_window_mean",
        "Mean confidence / out-of-vocabulary share over the drift window.",
        labels=["kind", "version"],
    )
    reference = GaugeMetricFamily(
        "prediction_reference_mean",
        "Mean confidence / out-of-vocabulary share on the model's holdout (its reference).",
        labels=["kind", "version"],
    )
    if version is not None:
        window.add_metric([version], size)
        for kind, value in scores.items():
            drift.add_metric([kind, version], value)
        for kind, value in means.items():
            live.add_metric([kind, version], value)
        for kind in ("confidence", "oov"):
            if profile is not None and kind in profile:
                reference.add_metric([kind, version], float(profile[kind]["mean"]))
    yield from (drift, window, live, reference)


def total_families(totals: Totals, version: str | None, unprofiled: int) -> Iterator[Metric]:
    """The counters of the served `version` (no samples before a model is served), and the
    products dropped unprofiled (of any version)."""
    missing = CounterMetricFamily(
        "prediction_input_missing",
        "Products classified without a value in this input field of the model's contract.",
        labels=["field", "version"],
    )
    oov = HistogramMetricFamily(
        "prediction_oov_share",
        "Share of a product's text tokens that the model's vocabulary does not know, binned as "
        "the reference profile bins it: le=b holds the bins below b, each [lower, upper).",
        labels=["version"],
    )
    if version is not None:
        for name, count in sorted(totals.missing.items()):
            missing.add_metric([name, version], count)
        oov.add_metric([version], cumulative(OOV_EDGES, totals.oov_buckets), totals.oov_sum)
    unprofiled_family = CounterMetricFamily(
        "prediction_drift_unprofiled",
        "Products dropped before the drift window saw them (more than a window between scrapes).",
        value=unprofiled,
    )
    yield from (missing, oov, unprofiled_family, *_top_class_families(totals, version))


def _top_class_families(totals: Totals, version: str | None) -> Iterator[Metric]:
    """Each profiled product's most probable class and its probability, for `product-monitor`:
    `predictions_total` counts every tag or path node answered, `prediction_confidence` a path's
    deepest level; the reference counts neither."""
    top = CounterMetricFamily(
        "prediction_top_class",
        "Products the drift window profiled, by their most probable class (what the reference "
        "profile's label shares count).",
        labels=["label", "version"],
    )
    probability = HistogramMetricFamily(
        "prediction_top_probability",
        "Probability of each profiled product's most probable class, binned as the reference "
        "profile bins it: le=b holds the bins below b, each [lower, upper), the last closed.",
        labels=["version"],
    )
    if version is not None:
        for label, count in sorted(totals.top_classes.items()):
            top.add_metric([label, version], count)
        buckets = cumulative(CONFIDENCE_EDGES, totals.top_probability_bins)
        probability.add_metric([version], buckets, totals.top_probability_sum)
    yield from (top, probability)


def cumulative(edges: Sequence[float], counts: Sequence[int]) -> list[tuple[str, float]]:
    """Per-bin counts as Prometheus' cumulative buckets, keyed by each bin's upper edge."""
    running, buckets = 0, []
    for edge, count in zip(edges[1:], counts, strict=True):
        running += count
        buckets.append((f"{edge:g}" if edge < 1 else "1.0", running))
    return [*buckets, ("+Inf", running)]


def reference_bin(value: float, edges: Sequence[float]) -> int:
    """The bin of `value` as the reference profile bins (numpy.histogram): [edge, next edge),
    the last bin closed, values outside clipped into the end bins."""
    return min(max(bisect.bisect_right(edges, value) - 1, 0), len(edges) - 2)
