"""The compact forest's inner loop: compiled by numba in memory, or walked exactly with NumPy.

Every tree is walked from its root to a leaf for every row, and each row's leaf distributions are
added up in tree order.

The inputs are sparse: a product has a few dozen non-zero features among the thousands a forest
tests, so at nearly every node a row reads a zero, which goes to the node's zero child, and
`forest` stores that child right after its parent. A step on a zero is then a bit test and a
move to the next node, in the cache line just read; only a row's own features (a bit set in its
bitmap of used features) are read and compared. Deep trees of sparse data are walked mostly along
such chains (90 steps per tree for the sample's products, 96% of them on zeros): 1.3-2x faster
than the paired storage order this replaced, which kept 32 walks in flight to overlap their reads
(`bench/bench_forest_walk.py`).

Rows are walked in groups of `ROWS_PER_GROUP`, each group by a block of trees that fits in cache
(`TREE_BLOCK_BYTES` of nodes) at a time, so a tree's nodes come from memory once per group rather
than once per row. The leaves reached are remembered per row and tree and added up in tree order
afterwards, so the sums are those of `numpy_forest_votes`, bit for bit.

Nodes are packed as rows of three int32 (`feature`, `threshold` bits, `child`), so one read brings
a whole node; `nodes_f` is the same memory seen as float32, to read the threshold.

Nothing is written to disk (no `cache=True`), so the model loads on a read-only filesystem. numba
is imported and the walk compiled (about a second of CPU) at `compiled_forest_votes()`'s first
call; until then a server can answer with `numpy_forest_votes`, which takes the same paths and
adds the same numbers in the same order. `nogil=True` lets other Python threads run while a batch
is walked, and lets `walk_in_parts` walk a large batch's rows on every core: rows are
independent, so the sums are the same.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from typing import Any

import joblib
import numpy as np

ROWS_PER_GROUP = 32  # rows walked by each block of trees in turn
TREE_BLOCK_BYTES = 1 << 20  # nodes of the trees walked by a row group before the next trees
ROWS_PER_PART = 256  # a smaller batch is walked by the calling thread alone

_parts_pool: ThreadPoolExecutor | None = None

_compiled: Any = None
_creating = threading.Lock()


def compiled_forest_votes() -> Callable[..., None]:
    """`forest_votes` compiled by numba (imported here, compiled at the dispatcher's first call)."""
    global _compiled
    with _creating:
        if _compiled is None:
            from numba import njit

            _compiled = njit(nogil=True)(forest_votes)
    return _compiled


def walk_in_parts(walk: Callable[..., None], arguments: tuple[Any, ...]) -> None:
    """`walk(*arguments)`, its rows cut into one part per usable core (the process's CPU affinity
    and cgroup quota, as joblib counts them) when the batch has `ROWS_PER_PART` rows per part;
    the calling thread walks one part, a pool of threads the others."""
    indptr, *middle, out = arguments
    n_rows = indptr.size - 1
    parts = min(joblib.cpu_count(), n_rows // ROWS_PER_PART) if n_rows >= 2 * ROWS_PER_PART else 1
    if parts < 2:
        walk(*arguments)
        return
    bounds = np.linspace(0, n_rows, parts + 1).astype(np.int64)
    # indptr keeps absolute offsets into indices/data, so a slice of it is a valid part.
    calls = [(indptr[lo : hi + 1], *middle, out[lo:hi]) for lo, hi in pairwise(bounds)]
    waiting = [_pool().submit(walk, *call) for call in calls[1:]]
    walk(*calls[0])
    for part in waiting:
        part.result()


def _pool() -> ThreadPoolExecutor:
    global _parts_pool
    with _creating:
        if _parts_pool is None:
            _parts_pool = ThreadPoolExecutor(max(1, joblib.cpu_count() - 1), "forest-walk")
    return _parts_pool


def _forget_pool_in_child() -> None:
    """A forked child has none of the parent's threads: it makes its own pool when it needs one."""
    global _parts_pool
    _parts_pool = None


os.register_at_fork(after_in_child=_forget_pool_in_child)


def walk_is_compiled() -> bool:
    """Whether calling `compiled_forest_votes()` would run machine code at once (no compile)."""
    return _compiled is not None and bool(_compiled.signatures)


# One function rather than several small ones: each numba function is compiled on its own, and the
# compilation is paid at start-up.
def forest_votes(
    indptr, indices, data, local_of_column, n_used, nodes, nodes_f, roots, n_one_hot, leaves, out
):
    """Add up, into `out` (rows x outputs, zeros), the leaf distributions of every tree.

    `local_of_column[c]` is input column c's index among the used features, or -1. Leaf rows below
    `n_one_hot` are one-hot (pure leaves of a single-output forest): they add 1 to one column.
    Leaf row r >= `n_one_hot` adds `leaves = (indptr, indices, values)` row r - n_one_hot, sparse:
    a multi-output leaf holds a few non-zero tag probabilities among hundreds of tags.
    Plain Python as written: run it through `compiled_forest_votes()`.
    """
    leaf_indptr, leaf_indices, leaf_values = leaves
    n_rows, n_trees = indptr.size - 1, roots.size
    width = local_of_column.size
    n_group_max = min(ROWS_PER_GROUP, max(1, n_rows))
    # A group's rows: which used features each has (bits), and their values.
    present = np.zeros((n_group_max, max((n_used + 31) // 32, 1)), dtype=np.uint32)
    dense = np.zeros((n_group_max, max(n_used, 1)), dtype=np.float32)
    leaf_of = np.empty((n_rows, n_trees), dtype=np.int64)  # the leaf each row reaches per tree
    tree_bytes = max(1, nodes.nbytes // max(1, n_trees))
    trees_per_block = max(TREE_BLOCK_BYTES // tree_bytes, 1)
    for first_row in range(0, n_rows, n_group_max):
        n_group = min(n_group_max, n_rows - first_row)
        for r in range(n_group):
            for k in range(indptr[first_row + r], indptr[first_row + r + 1]):
                column = indices[k]
                if column < width and local_of_column[column] >= 0:
                    f = local_of_column[column]
                    dense[r, f] = data[k]
                    present[r, f >> 5] |= np.uint32(1) << np.uint32(f & 31)
        for first_tree in range(0, n_trees, trees_per_block):
            for r in range(n_group):
                for t in range(first_tree, min(first_tree + trees_per_block, n_trees)):
                    node = roots[t]
                    child = nodes[node, 2]
                    while child >= 0:
                        f = nodes[node, 0]
                        if (present[r, f >> 5] >> np.uint32(f & 31)) & np.uint32(1):
                            threshold = nodes_f[node, 1]
                            # the other child when the value and a zero part ways
                            if (dense[r, f] > threshold) != (threshold < 0):
                                node = child
                            else:
                                node += 1
                        else:  # a zero: the zero child, stored next
                            node += 1
                        child = nodes[node, 2]
                    leaf_of[first_row + r, t] = -child - 1
        for r in range(n_group):  # the group's arrays back to zeros
            for k in range(indptr[first_row + r], indptr[first_row + r + 1]):
                column = indices[k]
                if column < width and local_of_column[column] >= 0:
                    f = local_of_column[column]
                    dense[r, f] = 0.0
                    present[r, f >> 5] = 0

    for i in range(n_rows):  # tree order: the same sums as numpy_forest_votes
        for t in range(n_trees):
            row = leaf_of[i, t]
            if row < n_one_hot:
                out[i, row] += 1.0
            else:
                row -= n_one_hot
                for k in range(leaf_indptr[row], leaf_indptr[row + 1]):
                    out[i, leaf_indices[k]] += leaf_values[k]
