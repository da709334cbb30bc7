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
        return builder.build()

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
        position, other = _zero_first_order(left, right, self.threshold_, self.roots_)
        order = _inverse(position)
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

    def build(self) -> CompactForest:
        compact = CompactForest()
        compact._set_nodes(
            np.concatenate(self.features), np.concatenate(self.thresholds), self.children
        )
        compact.roots_ = np.asarray(self.roots, dtype=np.int32)
        compact.n_one_hot_ = self.leaves.n_one_hot
        compact.leaf_indptr_, compact.leaf_indices_, compact.leaf_values_ = self.leaves.arrays()
        compact.classes_ = self.classes
        compact.n_features_in_ = self.n_features_in
        return compact


def side_by_side_state(compact: CompactForest) -> dict[str, Any]:
    """`compact`'s pickled state in the node order of models saved before the zero-first order
    (each tree breadth first, an inner node's left child at `child`, its right one at `child +
    1`), for code of that time to read: benchmarks against it, tests of the reordering at load."""
    child = compact.child_.astype(np.int64)
    inner = child >= 0
    zero_right = inner & (compact.threshold_ < 0)
    nodes = np.arange(child.size)
    left = np.where(inner, np.where(zero_right, child, nodes + 1), -1)
    right = np.where(inner, np.where(zero_right, nodes + 1, child), -1)
    trees = [np.concatenate(_levels(left, right, np.array([root]))) for root in compact.roots_]
    order = np.concatenate(trees)
    position = _inverse(order)
    old_child = np.where(inner[order], position[np.maximum(left[order], 0)], child[order])
    state = compact.__getstate__()
    del state["node_order_"]
    state["feature_"], state["threshold_"] = compact.feature_[order], compact.threshold_[order]
    state["child_"] = old_child.astype(np.int32)
    return state


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
    """One tree's nodes in `_zero_first_order`, as global indices."""
    left, right = tree.children_left, tree.children_right
    threshold = _round_down_to_float32(tree.threshold)
    position, other = _zero_first_order(left, right, threshold, np.zeros(1, dtype=np.int64))
    order = _inverse(position)

    is_inner = left[order] >= 0
    child = np.empty(len(order), dtype=np.int64)
    child[is_inner] = offset + position[other[order][is_inner]]
    child[~is_inner] = -leaves.rows_of(tree.value[order[~is_inner]]) - 1
    feature = tree.feature[order].astype(np.int32)
    return feature, threshold[order], child.astype(np.int32)


def _zero_first_order(
    left: np.ndarray, right: np.ndarray, threshold: np.ndarray, roots: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each node's position in storage order, and each inner node's other child (-1 for leaves),
    for the trees whose roots are `roots` (each keeps its root's position and its nodes' span).

    Depth first from a root, an inner node's zero child first: the child a value of zero goes
    to (the left one, as `0 <= threshold`, unless the float32 threshold is negative) is stored
    right after it, then that child's subtree, then the other child and its subtree."""
    inner_nodes = left >= 0
    zero_right = inner_nodes & (threshold < 0)
    zero = np.where(zero_right, right, left)
    other = np.where(zero_right, left, right)
    levels = _levels(left, right, roots)
    size = np.ones(len(left), dtype=np.int64)  # nodes in each subtree
    for level in reversed(levels):
        inner = level[inner_nodes[level]]
        size[inner] += size[left[inner]] + size[right[inner]]
    position = np.zeros(len(left), dtype=np.int64)
    position[roots] = roots
    for level in levels:
        inner = level[inner_nodes[level]]
        position[zero[inner]] = position[inner] + 1
        position[other[inner]] = position[inner] + 1 + size[zero[inner]]
    return position, other


def _inverse(permutation: np.ndarray) -> np.ndarray:
    """The permutation that undoes `permutation`: node positions from a storage order, or back."""
    inverse = np.empty_like(permutation)
    inverse[permutation] = np.arange(permutation.size)
    return inverse


def _levels(left: np.ndarray, right: np.ndarray, roots: np.ndarray) -> list[np.ndarray]:
    """The node ids of the trees with these roots level by level, each inner node's children side
    by side."""
    levels, frontier = [], np.asarray(roots, dtype=np.int64)
    while frontier.size:
        levels.append(frontier)
        inner = frontier[left[frontier] >= 0]
        frontier = np.column_stack([left[inner], right[inner]]).ravel()
    return levels


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
