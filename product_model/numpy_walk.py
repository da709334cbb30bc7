"""The forest walk in NumPy: what a server answers with while numba compiles `tree_walk`.

Same arguments and same result as `tree_walk.forest_votes`, bit for bit: every row takes the same
path down every tree (the same float32 comparisons), and each row's leaf distributions are added
to `out` in tree order, one addition per value, as the compiled walk adds them. It walks all
(row, tree) pairs one level at a time, so it needs no compiler and starts at once; it is a few
times slower than the compiled walk on large batches.
"""

from __future__ import annotations

from typing import Any

import numpy as np

ROWS_AT_ONCE = 256  # bounds the dense copy of the used features (rows x used features)


def numpy_forest_votes(
    indptr, indices, data, local_of_column, n_used, nodes, nodes_f, roots, n_one_hot, leaves, out
) -> None:
    """Add up, into `out` (rows x outputs, zeros), the leaf distributions of every tree (see
    `tree_walk.forest_votes` for the arguments)."""
    for start in range(0, indptr.size - 1, ROWS_AT_ONCE):
        stop = min(start + ROWS_AT_ONCE, indptr.size - 1)
        first, last = indptr[start], indptr[stop]
        dense = _dense_used(
            indptr[start : stop + 1] - first,
            indices[first:last],
            data[first:last],
            local_of_column,
            n_used,
        )
        _add_votes(out[start:stop], _leaf_rows(dense, nodes, nodes_f, roots), n_one_hot, leaves)


def _add_votes(out: np.ndarray, leaf_rows: np.ndarray, n_one_hot: int, leaves: Any) -> None:
    """Add the leaves reached (rows x trees) to `out`, tree after tree."""
    if (leaf_rows < n_one_hot).all():  # only one-hot leaves: whole counts, exact in any order
        rows = np.repeat(np.arange(leaf_rows.shape[0]), leaf_rows.shape[1])
        _add_one_hot(out, leaf_rows.ravel(), rows)
        return
    for tree in range(leaf_rows.shape[1]):
        _add_leaves(out, leaf_rows[:, tree], n_one_hot, leaves)


def _dense_used(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    local_of_column: np.ndarray,
    n_used: int,
) -> np.ndarray:
    """Rows x used features, float32; input columns the forest does not use are left out."""
    n_rows = indptr.size - 1
    dense = np.zeros((n_rows, max(n_used, 1)), dtype=np.float32)
    row_of_entry = np.repeat(np.arange(n_rows), np.diff(indptr))
    known = indices < local_of_column.size
    local = np.full(indices.size, -1, dtype=np.int64)
    local[known] = local_of_column[indices[known]]
    used = local >= 0
    dense[row_of_entry[used], local[used]] = data[used]
    return dense


def _leaf_rows(
    dense: np.ndarray, nodes: np.ndarray, nodes_f: np.ndarray, roots: np.ndarray
) -> np.ndarray:
    """Leaf row reached by each row in each tree: shape (rows, trees)."""
    n_rows, n_trees = dense.shape[0], roots.size
    leaf_rows = np.empty(n_rows * n_trees, dtype=np.int64)
    position = np.arange(n_rows * n_trees)
    row = np.repeat(np.arange(n_rows), n_trees)
    node = np.tile(roots.astype(np.int64), n_rows)
    while node.size:
        child = nodes[node, 2].astype(np.int64)
        at_leaf = child < 0
        leaf_rows[position[at_leaf]] = -child[at_leaf] - 1
        walking = ~at_leaf
        node, row, position, child = node[walking], row[walking], position[walking], child[walking]
        threshold = nodes_f[node, 1]
        # the zero child is the next node; the other child when the value and a zero part ways
        parted = (dense[row, nodes[node, 0]] > threshold) != (threshold < 0)
        node = np.where(parted, child, node + 1)
    return leaf_rows.reshape(n_rows, n_trees)


def _add_one_hot(out: np.ndarray, leaf_rows: np.ndarray, row: np.ndarray) -> None:
    n_columns = out.shape[1]
    counts = np.bincount(row * n_columns + leaf_rows, minlength=out.size)
    out += counts.reshape(out.shape)


def _add_leaves(out: np.ndarray, leaf_row: np.ndarray, n_one_hot: int, leaves: Any) -> None:
    """Add one tree's leaf distributions to `out` (each row reached one leaf in this tree, so no
    (row, column) pair repeats)."""
    leaf_indptr, leaf_indices, leaf_values = leaves
    one_hot = leaf_row < n_one_hot
    rows = np.flatnonzero(one_hot)
    out[rows, leaf_row[one_hot]] += 1.0
    rows = np.flatnonzero(~one_hot)
    table_row = leaf_row[rows] - n_one_hot
    starts, ends = leaf_indptr[table_row], leaf_indptr[table_row + 1]
    lengths = ends - starts
    entry = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
    out[np.repeat(rows, lengths), leaf_indices[entry]] += leaf_values[entry]
