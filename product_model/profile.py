"""The reference profile: what the model saw on its holdout, to compare live traffic against.

Made at training time from the holdout's inputs and predictions and saved in the model's
metadata (`profile`), so a server has it without MLflow. The same binning and the same distances
serve training (the reference), serving (the live window) and the drift report, so they can
never disagree on what a score means.

Distances:
- Jensen-Shannon distance (base 2, in [0, 1]) between predicted-label distributions;
- population stability index (PSI) between binned histograms (confidence, out-of-vocabulary
  share): sum over bins of (live - reference) * ln(live / reference), empty bins floored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

# Bin edges shared by the reference and every live window (right edge closed at 1.0).
CONFIDENCE_EDGES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
OOV_EDGES = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)
TEXT_LENGTH_EDGES = (0, 1, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 1_000_000)
PSI_FLOOR = 1e-4
"""Share given to an empty bin, so a bin seen on one side only adds a large but finite term."""


def binned_shares(values: Sequence[float] | np.ndarray, edges: Sequence[float]) -> list[float]:
    """Share of `values` in each bin of `edges` (values outside are clipped into the end bins)."""
    array = np.clip(np.asarray(values, dtype=np.float64), edges[0], edges[-1])
    counts, _ = np.histogram(array, bins=np.asarray(edges, dtype=np.float64))
    total = counts.sum()
    return [float(c / total) if total else 0.0 for c in counts]


def population_stability_index(live: Sequence[float], reference: Sequence[float]) -> float:
    """PSI of two binned distributions (shares per bin, same bins); 0 when identical."""
    a = np.maximum(np.asarray(live, dtype=np.float64), PSI_FLOOR)
    e = np.maximum(np.asarray(reference, dtype=np.float64), PSI_FLOOR)
    a, e = a / a.sum(), e / e.sum()
    return float(np.sum((a - e) * np.log(a / e)))


def jensen_shannon_distance(live: Mapping[str, float], reference: Mapping[str, float]) -> float:
    """Jensen-Shannon distance (base 2) of two label distributions: 0 identical, 1 disjoint.
    Labels missing on one side count as 0 there."""
    labels = sorted(set(live) | set(reference))
    p = np.array([max(float(live.get(k, 0.0)), 0.0) for k in labels])
    q = np.array([max(float(reference.get(k, 0.0)), 0.0) for k in labels])
    if p.sum() == 0 or q.sum() == 0:
        return 0.0 if p.sum() == q.sum() else 1.0
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2
    divergence = (_kl_bits(p, m) + _kl_bits(q, m)) / 2
    return float(math.sqrt(min(max(divergence, 0.0), 1.0)))


def _kl_bits(p: np.ndarray, m: np.ndarray) -> float:
    mask = p > 0
    return float(np.sum(p[mask] * np.log2(p[mask] / m[mask])))


def label_shares(labels: Sequence[str]) -> dict[str, float]:
    values, counts = np.unique(np.asarray(labels, dtype=object).astype(str), return_counts=True)
    total = counts.sum()
    return {str(v): float(c / total) for v, c in zip(values, counts, strict=True)}


def is_filled(value: Any) -> bool:
    """Whether a field carries something: not missing, not blank, not an empty list or dict."""
    if value is None:
        return False
    if isinstance(value, float):
        return not math.isnan(value)
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, Mapping | list | tuple):
        return len(value) > 0
    return True


def histogram(values: Sequence[float] | np.ndarray, edges: Sequence[float]) -> dict[str, Any]:
    array = np.asarray(values, dtype=np.float64)
    return {
        "edges": list(edges),
        "shares": binned_shares(array, edges),
        "mean": float(array.mean()) if array.size else 0.0,
    }


def build_profile(
    products: Sequence[Mapping[str, Any]],
    labels: Sequence[str],
    confidences: Sequence[float],
    oov_shares: Sequence[float],
    fields: Sequence[str],
    text_fields: Sequence[str],
) -> dict[str, Any]:
    """The reference profile of `products` (the holdout) and the model's predictions on them."""
    from product_model.features import as_text

    lengths = {
        name: [len(as_text(p.get(name))) for p in products if is_filled(p.get(name))]
        for name in text_fields
    }
    rows = max(len(products), 1)
    return {
        "rows": len(products),
        "labels": label_shares(labels),
        "confidence": histogram(confidences, CONFIDENCE_EDGES),
        "oov": histogram(oov_shares, OOV_EDGES),
        "text_length": {name: histogram(v, TEXT_LENGTH_EDGES) for name, v in lengths.items()},
        "fill_rate": {
            name: sum(is_filled(p.get(name)) for p in products) / rows for name in fields
        },
    }
