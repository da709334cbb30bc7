"""A fitted tree ensemble in compact flat arrays, with the same probabilities as scikit-learn's.

scikit-learn keeps, for every node of every tree, a float64 vector over all classes plus 64 bytes of
bookkeeping. Predicting needs far less: inner nodes need a feature, a threshold and where their
children are; leaves need a class distribution, and nearly all leaves are pure, so they can share
one-hot rows of a small table. `CompactForest` stores 12 bytes per node:

- each tree's nodes are stored depth first, and an inner node's child that a zero goes to (the
  left one, unless the threshold is negative) is the next node; `child` is the other one. The
  inputs are sparse (a product has a few dozen non-zero features among thousands), so nearly
  every step of a walk reads a zero and goes to the next node, in the cache line just fetched.
  Models saved in an older order (`node_order_` missing) are reordered when loaded;
- `child < 0` marks a leaf, and `-child - 1` is its row in `table` (distinct class distributions);
- thresholds are float32, rounded *down* from scikit-learn's float64. The trees compare float32
  inputs, and for a float32 `x`, `x <= t` holds exactly when `x <= round_down_to_float32(t)`, so
  every sample takes the same path as in the original tree.

Prediction walks the trees in compiled code (`tree_walk`, numba), reading the sparse inputs
directly, cache-sized blocks of trees at a time and large batches on every core: a row costs tens
of microseconds, less than scikit-learn. The
walk is compiled at the first prediction, unless `answer_before_compiled()` was called: then
predictions take the exact NumPy walk (`numpy_walk`, same probabilities bit for bit) until
`compile_walk()` has run, which a server does in the background once it is ready.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin

from product_model.forest_build import CompactForestBuilder
from product_model.node_order import inverse, zero_first_order
from product_model.numpy_walk import numpy_forest_votes
from product_model.tree_walk import compiled_forest_votes, walk_in_parts, walk_is_compiled

ZERO_FIRST = 1  # `node_order_` of the storage order above (models saved before it have none)


class CompactForest(ClassifierMixin, BaseEstimator):
    """Read-only stand-in for a fitted RandomForestClassifier or ExtraTreesClassifier.

    A single-output forest gives class probabilities (`classes_`); a multi-output forest fitted on
    a 0/1 label matrix gives, per output, the probability of 1 (`classes_` names the outputs, e.g.
    tags). Leaf distributions are kept as sparse rows: a multi-output leaf holds a few non-zero tag
    probabilities among hundreds of tags.
    """

    used_features_: np.ndarray
    feature_: np.ndarray
    threshold_: np.ndarray
    child_: np.ndarray
    node_order_: int
    roots_: np.ndarray
    n_one_hot_: int
    leaf_indptr_: np.ndarray
    leaf_indices_: np.ndarray
    leaf_values_: np.ndarray
    classes_: np.ndarray
    _local_of_column: np.ndarray | None

    def __init__(self) -> None:
        pass

    def fit(self, X: Any, y: Any) -> CompactForest:
        raise TypeError("a CompactForest is made from a fitted forest: CompactForest.from_forest")

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "roots_")

    @classmethod
    def from_forest(cls, forest: Any, output_names: Any = None) -> CompactForest:
        """Convert a fitted scikit-learn forest classifier (single or multi-output)."""
        return cls.from_forests([forest], output_names)

    @classmethod
    def from_forests(cls, forests: Iterable[Any], output_names: Any = None) -> CompactForest:
        """One forest of the trees of several fitted forests with the same classes (or
        outputs), all trees weighing the same (as if they had been fitted as one forest).

        The forests are read one at a time: given a generator that fits each one when asked,
        only one forest's scikit-learn trees are in memory at once.
        """
        builder: CompactForestBuilder | None = None
        for forest in forests:
            builder = builder or CompactForestBuilder(forest, output_names)
            builder.add(forest)
            del forest  # before the next one is fitted
        if builder is None:
            raise ValueError("no forest to compact")
        return cls.from_builder(builder)

    @classmethod
    def from_builder(cls, builder: CompactForestBuilder) -> CompactForest:
        """The forest of the trees added to `builder`."""
        compact = cls()
        compact._set_nodes(
            np.concatenate(builder.features), np.concatenate(builder.thresholds), builder.children
        )
        compact.roots_ = np.asarray(builder.roots, dtype=np.int32)
        compact.n_one_hot_ = builder.leaves.n_one_hot
        compact.leaf_indptr_, compact.leaf_indices_, compact.leaf_values_ = builder.leaves.arrays()
        compact.classes_ = builder.classes
        compact.n_features_in_ = builder.n_features_in
        return compact

    def _set_nodes(
        self, feature: np.ndarray, threshold: np.ndarray, children: list[np.ndarray]
    ) -> None:
        child = np.concatenate(children)
        inner = child >= 0
        self.used_features_ = np.unique(feature[inner]).astype(np.int32)
        local = np.zeros_like(feature)
        local[inner] = np.searchsorted(self.used_features_, feature[inner])
        self.feature_ = local.astype(np.int32)
        self.threshold_ = threshold
        self.child_ = child
        self.node_order_ = ZERO_FIRST
        self._pack_nodes()

    @property
    def n_trees(self) -> int:
        return len(self.roots_)

    @property
    def nbytes(self) -> int:
        arrays = (self.feature_, self.threshold_, self.child_, self.roots_, self.used_features_)
        leaves = (self.leaf_indptr_, self.leaf_indices_, self.leaf_values_)
        return sum(array.nbytes for array in (*arrays, *leaves))

    def select_columns(self, columns: np.ndarray) -> None:
        """Read features from a wider matrix: feature i of the fitted forest is column
        `columns[i]` of the inputs (folds a fixed feature selection into the forest)."""
        self.used_features_ = np.asarray(columns, dtype=np.int32)[self.used_features_]
        self._local_of_column = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())  # a copy: it can be the object's own __dict__
        for derived in ("_local_of_column", "_nodes", "_numpy_until_compiled"):
            state.pop(derived, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        if getattr(self, "node_order_", None) != ZERO_FIRST:
            self._store_zero_first()  # saved before it: each node's children side by side
        self._pack_nodes()

    def _store_zero_first(self) -> None:
        """Reorder nodes saved with their children side by side (`child` the left one, `child +
        1` the right one: breadth first or paired depth first) into the zero-first order."""
        child = self.child_.astype(np.int64)
        inner = child >= 0
        left, right = np.where(inner, child, -1), np.where(inner, child + 1, -1)
        position, other = zero_first_order(left, right, self.threshold_, self.roots_)
        order = inverse(position)
        self.feature_ = self.feature_[order]
        self.threshold_ = self.threshold_[order]
        self.child_ = np.where(inner[order], position[other[order]], child[order]).astype(np.int32)
        self.node_order_ = ZERO_FIRST

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

    def answer_before_compiled(self) -> None:
        """Predict with the exact NumPy walk until `compile_walk()` has compiled the fast one,
        instead of compiling it (about a second) at the first prediction."""
        self._numpy_until_compiled = True

    def compile_walk(self) -> None:
        """Compile the numba walk now, with this forest's argument types (nothing is walked)."""
        empty = sparse.csr_matrix((0, 1), dtype=np.float32)
        compiled_forest_votes()(*self._walk_arguments(empty.indptr, empty.indices, empty.data))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (single output), or the probability of 1 per output."""
        rows = _csr_float32(X)
        return self.proba_of_rows(rows.indptr, rows.indices, rows.data)

    def proba_of_rows(
        self, indptr: np.ndarray, indices: np.ndarray, data: np.ndarray
    ) -> np.ndarray:
        """`predict_proba` of the CSR float32 rows given by their arrays, without duplicate
        entries (the order of a row's entries does not matter)."""
        arguments = self._walk_arguments(indptr, indices, data)
        use_numpy = getattr(self, "_numpy_until_compiled", False) and not walk_is_compiled()
        if use_numpy:
            numpy_forest_votes(*arguments)
        else:
            walk_in_parts(compiled_forest_votes(), arguments)
        votes = arguments[-1]
        votes /= self.n_trees
        return votes

    def _walk_arguments(
        self, indptr: np.ndarray, indices: np.ndarray, data: np.ndarray
    ) -> tuple[Any, ...]:
        """What both walks take, ending with the zeroed votes (rows x outputs) they add to."""
        votes = np.zeros((indptr.size - 1, len(self.classes_)), dtype=np.float64)
        return (
            indptr.astype(np.int64, copy=False),
            indices.astype(np.int64, copy=False),
            data,
            self._column_map(),
            self.used_features_.size,
            self._nodes,
            self._nodes.view(np.float32),
            self.roots_,
            self.n_one_hot_,
            (self.leaf_indptr_, self.leaf_indices_, self.leaf_values_),
            votes,
        )

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


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
