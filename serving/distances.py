"""The distances of the drift signals, on the server's side of the model boundary.

The serving image does not install `product_model` (each model brings its own copy of it), so the
few lines of arithmetic the drift window needs live here too; `tests/unit/serving/test_drift.py`
checks that they agree with `product_model.profile`, which made the reference. Bin edges always
come from the model's reference profile, so both sides bin alike.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

PSI_FLOOR = 1e-4
OOV_EDGES = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)
"""Buckets of the exported out-of-vocabulary histogram (the reference's own edges)."""


def binned_shares(values: Sequence[float], edges: Sequence[float]) -> list[float]:
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
    """Jensen-Shannon distance (base 2) of two label distributions: 0 identical, 1 disjoint."""
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


def label_shares(labels: Iterable[str]) -> dict[str, float]:
    counts = Counter(labels)
    total = sum(counts.values())
    return {label: count / total for label, count in counts.items()} if total else {}


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
