"""A fitted tree ensemble in compact flat arrays, with the same probabilities as scikit-learn's.

scikit-learn keeps, for every node of every tree, a float64 vector over all classes plus 64 bytes of
bookkeeping. Predicting needs far less: inner nodes need a feature, a threshold and where their
children are; leaves need a class distribution, and nearly all leaves are pure, so they can share
one-hot rows of a small table. `CompactForest` stores 12 bytes per node:

- nodes are renumbered so that the children of a node are adjacent (`child`, `child + 1`);
- `child < 0` marks a leaf, and `-child - 1` is its row in `table` (distinct class distributions);
- thresholds are float32, rounded *down* from scikit-learn's float64. The trees compare float32
  inputs, and for a float32 `x`, `x <= t` holds exactly when `x <= round_down_to_float32(t)`, so
  every sample takes the same path as in the original tree.

Prediction walks the trees in compiled code (`tree_walk`, numba), one row at a time, reading the
sparse inputs directly: a row costs tens of microseconds, a few times less than scikit-learn.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin

from product_model.tree_walk import forest_votes


class CompactForest(ClassifierMixin, BaseEstimator):
    """Read-only stand-in for a fitted RandomForestClassifier or ExtraTreesClassifier."""

    used_features_: np.ndarray
    feature_: np.ndarray
    threshold_: np.ndarray
    child_: np.ndarray
    roots_: np.ndarray
    table_: np.ndarray
    classes_: np.ndarray
    _local_of_column: np.ndarray | None

    def __init__(self) -> None:
        pass

    def fit(self, X: Any, y: Any) -> CompactForest:
        raise TypeError("a CompactForest is made from a fitted forest: CompactForest.from_forest")

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "roots_")

    @classmethod
    def from_forest(cls, forest: Any) -> CompactForest:
        """Convert a fitted scikit-learn forest classifier (single output)."""
        return cls.from_forests([forest])

    @classmethod
    def from_forests(cls, forests: Iterable[Any]) -> CompactForest:
        """One forest of the trees of several fitted forests with the same classes, all trees
        weighing the same (as if they had been fitted as one forest).

        The forests are read one at a time: given a generator that fits each one when asked,
        only one forest's scikit-learn trees are in memory at once.
        """
        classes, n_features = None, 0
        table: list[np.ndarray] = []
        table_rows: dict[bytes, int] = {}
        features, thresholds, children, roots = [], [], [], []
        offset = 0
        for forest in forests:
            if getattr(forest, "n_outputs_", 1) != 1:
                raise ValueError("only single-output forests can be compacted")
            if classes is None:
                classes, n_features = forest.classes_, forest.n_features_in_
                table = list(np.eye(len(classes)))
                table_rows = {row.tobytes(): i for i, row in enumerate(table)}
            elif not np.array_equal(classes, forest.classes_):
                raise ValueError("the forests to join were fitted on different classes")
            for estimator in forest.estimators_:
                feat, thr, child = _flatten_tree(estimator.tree_, offset, table, table_rows)
                roots.append(offset)
                offset += len(feat)
                features.append(feat)
                thresholds.append(thr)
                children.append(child)
            del forest  # before the next one is fitted
        if classes is None:
            raise ValueError("no forest to compact")

        compact = cls()
        feature = np.concatenate(features)
        child = np.concatenate(children)
        inner = child >= 0
        compact.used_features_ = np.unique(feature[inner]).astype(np.int32)
        local = np.zeros_like(feature)
        local[inner] = np.searchsorted(compact.used_features_, feature[inner])
        compact.feature_ = local.astype(np.int32)
        compact.threshold_ = np.concatenate(thresholds)
        compact.child_ = child
        compact._pack_nodes()
        compact.roots_ = np.asarray(roots, dtype=np.int32)
        compact.table_ = np.vstack(table).astype(np.float64)
        compact.classes_ = classes
        compact.n_features_in_ = n_features
        return compact

    @property
    def n_trees(self) -> int:
        return len(self.roots_)

    @property
    def nbytes(self) -> int:
        arrays = (self.feature_, self.threshold_, self.child_, self.roots_, self.table_)
        return sum(array.nbytes for array in arrays) + self.used_features_.nbytes

    def select_columns(self, columns: np.ndarray) -> None:
        """Read features from a wider matrix: feature i of the fitted forest is column
        `columns[i]` of the inputs (folds a fixed feature selection into the forest)."""
        self.used_features_ = np.asarray(columns, dtype=np.int32)[self.used_features_]
        self._local_of_column = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())  # a copy: it can be the object's own __dict__
        for derived in ("_local_of_column", "_nodes"):
            state.pop(derived, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._pack_nodes()

    def _pack_nodes(self) -> None:
        """Interleave feature, threshold and child of each node (one memory read per node);
        `feature_`, `threshold_` and `child_` become views of the packed rows, so the saved form
        stays three plain arrays and nothing is held twice."""
        nodes = np.empty((self.child_.size, 3), dtype=np.int32)
        nodes[:, 0] = self.feature_
        nodes[:, 1] = self.threshold_.view(np.int32)
        nodes[:, 2] = self.child_
        self._nodes = nodes
        self.feature_ = nodes[:, 0]
        self.threshold_ = nodes.view(np.float32)[:, 1]
        self.child_ = nodes[:, 2]

    def _column_map(self) -> np.ndarray:
        """For every input column: its index among the used features, or -1."""
        local = getattr(self, "_local_of_column", None)
        if local is None:
            width = int(self.used_features_.max()) + 1 if self.used_features_.size else 0
            local = np.full(width, -1, dtype=np.int32)
            local[self.used_features_] = np.arange(self.used_features_.size, dtype=np.int32)
            self._local_of_column = local
        return local

    def predict_proba(self, X: Any) -> np.ndarray:
        rows = _csr_float32(X)
        votes = np.zeros((rows.shape[0], len(self.classes_)), dtype=np.float64)
        forest_votes(
            rows.indptr.astype(np.int64, copy=False),
            rows.indices.astype(np.int64, copy=False),
            rows.data,
            self._column_map(),
            self.used_features_.size,
            self._nodes,
            self._nodes.view(np.float32),
            self.roots_,
            self.table_,
            votes,
        )
        votes /= self.n_trees
        return votes

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


def _flatten_tree(
    tree: Any, offset: int, table: list[np.ndarray], table_rows: dict[bytes, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One tree's nodes in breadth-first order with adjacent children, as global indices."""
    left, right = tree.children_left, tree.children_right
    levels, frontier = [], np.zeros(1, dtype=np.int64)
    while frontier.size:
        levels.append(frontier)
        inner = frontier[left[frontier] >= 0]
        frontier = np.column_stack([left[inner], right[inner]]).ravel()
    order = np.concatenate(levels)
    new_index = np.empty(tree.node_count, dtype=np.int64)
    new_index[order] = np.arange(len(order))

    is_inner = left[order] >= 0
    child = np.empty(len(order), dtype=np.int64)
    child[is_inner] = offset + new_index[left[order][is_inner]]
    child[~is_inner] = -_table_rows(tree.value[order[~is_inner], 0, :], table, table_rows) - 1
    feature = tree.feature[order].astype(np.int32)
    return feature, _round_down_to_float32(tree.threshold[order]), child.astype(np.int32)


def _table_rows(
    values: np.ndarray, table: list[np.ndarray], table_rows: dict[bytes, int]
) -> np.ndarray:
    """Row in `table` for each leaf's class distribution; pure leaves use the one-hot rows."""
    distributions = values / values.sum(axis=1, keepdims=True)
    rows = np.argmax(distributions, axis=1)
    for i in np.flatnonzero(np.count_nonzero(distributions, axis=1) > 1):
        key = distributions[i].tobytes()
        row = table_rows.get(key)
        if row is None:
            row = table_rows[key] = len(table)
            table.append(distributions[i])
        rows[i] = row
    return rows


def _round_down_to_float32(threshold: np.ndarray) -> np.ndarray:
    rounded = threshold.astype(np.float32)
    too_high = rounded.astype(np.float64) > threshold
    rounded[too_high] = np.nextafter(rounded[too_high], np.float32(-np.inf))
    return rounded


def _csr_float32(X: Any) -> sparse.csr_matrix:
    """The inputs as CSR float32 without duplicate entries: the trees compare float32 values,
    as scikit-learn's do."""
    if not sparse.issparse(X):
        return sparse.csr_matrix(np.asarray(X, dtype=np.float32))
    rows = X.tocsr()
    if rows.dtype != np.float32:
        rows = rows.astype(np.float32)
    if not rows.has_canonical_format:
        rows = rows.copy()
        rows.sum_duplicates()
    return rows
