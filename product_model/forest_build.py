"""Turning fitted scikit-learn forests into the node arrays of a compact forest, one forest at a
time (`CompactForest.from_forests` and `CompactForest.from_builder` use them).

Each tree's nodes are flattened into the zero-first storage order (`node_order`), its thresholds
rounded down to float32, and its leaves' class distributions stored once each in a shared table.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from product_model.node_order import inverse, zero_first_order


class CompactForestBuilder:
    """Adds fitted forests' trees one forest at a time, so a forest fitted in chunks keeps only
    one chunk of scikit-learn trees in memory (a multi-output tree holds a value per node and
    output: hundreds of times the compact form)."""

    def __init__(self, first: Any, output_names: Any = None) -> None:
        self.leaves = _LeafTable.for_forest(first)
        self.first_classes = first.classes_
        single = getattr(first, "n_outputs_", 1) == 1
        names = first.classes_ if single else output_names
        self.classes = np.asarray(names if names is not None else np.arange(first.n_outputs_))
        self.n_features_in = first.n_features_in_
        self.features: list[np.ndarray] = []
        self.thresholds: list[np.ndarray] = []
        self.children: list[np.ndarray] = []
        self.roots: list[int] = []
        self.offset = 0

    def add(self, forest: Any) -> None:
        if not _same_classes(self.first_classes, forest.classes_):
            raise ValueError("the forests to join were fitted on different classes")
        for estimator in forest.estimators_:
            feature, threshold, child = _flatten_tree(estimator.tree_, self.offset, self.leaves)
            self.roots.append(self.offset)
            self.offset += len(feature)
            self.features.append(feature)
            self.thresholds.append(threshold)
            self.children.append(child)


def _same_classes(first: Any, other: Any) -> bool:
    """Whether two forests have the same classes (per output, for multi-output forests)."""
    if isinstance(first, list) or isinstance(other, list):
        return (
            isinstance(first, list)
            and isinstance(other, list)
            and len(first) == len(other)
            and all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))
        )
    return bool(np.array_equal(first, other))


class _LeafTable:
    """Distinct leaf distributions as sparse rows, each stored once. A single-output forest's
    first `n_one_hot` rows are the pure leaves (one class), not stored."""

    def __init__(self, n_one_hot: int, distributions: Any) -> None:
        self.n_one_hot = n_one_hot
        self.distributions = distributions
        self.rows: dict[bytes, int] = {}
        self.indices: list[np.ndarray] = []
        self.values: list[np.ndarray] = []

    @classmethod
    def for_forest(cls, forest: Any) -> _LeafTable:
        if getattr(forest, "n_outputs_", 1) == 1:
            return cls(len(forest.classes_), _class_distributions)
        positive = [_positive_index(classes) for classes in forest.classes_]
        sizes = [len(classes) for classes in forest.classes_]
        return cls(0, lambda values: _positive_probabilities(values, positive, sizes))

    def rows_of(self, values: np.ndarray) -> np.ndarray:
        """Row (counting the one-hot rows) of each leaf's distribution."""
        distributions = self.distributions(values)
        rows = np.argmax(distributions, axis=1)
        mixed = np.count_nonzero(distributions, axis=1) > 1
        if not self.n_one_hot:
            mixed[:] = True
        if not mixed.any():
            return rows
        distinct, which = np.unique(distributions[mixed], axis=0, return_inverse=True)
        rows[mixed] = np.asarray([self.row_of(d) for d in distinct])[which.ravel()]
        return rows

    def row_of(self, distribution: np.ndarray) -> int:
        indices = np.flatnonzero(distribution).astype(np.int32)
        row_values = distribution[indices]
        key = indices.tobytes() + row_values.tobytes()
        row = self.rows.get(key)
        if row is None:
            row = self.rows[key] = self.n_one_hot + len(self.indices)
            self.indices.append(indices)
            self.values.append(row_values)
        return row

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lengths = [len(indices) for indices in self.indices]
        indptr = np.zeros(len(lengths) + 1, dtype=np.int64)
        indptr[1:] = np.cumsum(lengths)
        empty_i, empty_v = np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.float64)
        indices = np.concatenate(self.indices) if self.indices else empty_i
        values = np.concatenate(self.values) if self.values else empty_v
        return indptr, indices.astype(np.int32), values.astype(np.float64)


def _class_distributions(values: np.ndarray) -> np.ndarray:
    """A single-output tree's leaf values as class shares (what its predict_proba returns)."""
    single = values[:, 0, :]
    return single / single.sum(axis=1, keepdims=True)


def _positive_index(classes: np.ndarray) -> int:
    """Column of the class 1 (or True) among an output's classes; -1 when never seen."""
    hits = np.flatnonzero(np.asarray(classes) == 1)
    return int(hits[0]) if hits.size else -1


def _positive_probabilities(
    values: np.ndarray, positive: list[int], sizes: list[int]
) -> np.ndarray:
    """A multi-output tree's leaf values as the probability of 1 per output, computed as
    scikit-learn's predict_proba does (each output's classes normalised, a zero total kept)."""
    out = np.zeros((values.shape[0], len(positive)), dtype=np.float64)
    for k, (column, size) in enumerate(zip(positive, sizes, strict=True)):
        if column < 0:
            continue
        total = values[:, k, :size].sum(axis=1)
        total[total == 0.0] = 1.0
        out[:, k] = values[:, k, column] / total
    return out


def _flatten_tree(
    tree: Any, offset: int, leaves: _LeafTable
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One tree's nodes in the zero-first order (`node_order`), as global indices."""
    left, right = tree.children_left, tree.children_right
    threshold = round_down_to_float32(tree.threshold)
    position, other = zero_first_order(left, right, threshold, np.zeros(1, dtype=np.int64))
    order = inverse(position)

    is_inner = left[order] >= 0
    child = np.empty(len(order), dtype=np.int64)
    child[is_inner] = offset + position[other[order][is_inner]]
    child[~is_inner] = -leaves.rows_of(tree.value[order[~is_inner]]) - 1
    feature = tree.feature[order].astype(np.int32)
    return feature, threshold[order], child.astype(np.int32)


def round_down_to_float32(threshold: np.ndarray) -> np.ndarray:
    rounded = threshold.astype(np.float32)
    too_high = rounded.astype(np.float64) > threshold
    rounded[too_high] = np.nextafter(rounded[too_high], np.float32(-np.inf))
    return rounded
