"""The storage order of a compact forest's nodes (see `product_model.forest`).

Each tree is stored depth first, and an inner node's *zero child* (the child a value of zero goes
to) is stored right after it. Models saved before that order kept each inner node's children
side by side (breadth first, or in depth-first pairs); they are reordered when loaded, and
`side_by_side_state` writes a forest back in that older order, for code of that time to read.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def zero_first_order(
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
    levels = tree_levels(left, right, roots)
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


def inverse(permutation: np.ndarray) -> np.ndarray:
    """The permutation that undoes `permutation`: node positions from a storage order, or back."""
    inverse = np.empty_like(permutation)
    inverse[permutation] = np.arange(permutation.size)
    return inverse


def tree_levels(left: np.ndarray, right: np.ndarray, roots: np.ndarray) -> list[np.ndarray]:
    """The node ids of the trees with these roots level by level, each inner node's children side
    by side."""
    levels, frontier = [], np.asarray(roots, dtype=np.int64)
    while frontier.size:
        levels.append(frontier)
        inner = frontier[left[frontier] >= 0]
        frontier = np.column_stack([left[inner], right[inner]]).ravel()
    return levels


def side_by_side_state(compact: Any) -> dict[str, Any]:
    """`compact`'s pickled state in the node order of models saved before the zero-first order
    (each tree breadth first, an inner node's left child at `child`, its right one at `child +
    1`), for code of that time to read: benchmarks against it, tests of the reordering at load."""
    child = compact.child_.astype(np.int64)
    inner = child >= 0
    zero_right = inner & (compact.threshold_ < 0)
    nodes = np.arange(child.size)
    left = np.where(inner, np.where(zero_right, child, nodes + 1), -1)
    right = np.where(inner, np.where(zero_right, nodes + 1, child), -1)
    trees = [np.concatenate(tree_levels(left, right, np.array([root]))) for root in compact.roots_]
    order = np.concatenate(trees)
    position = inverse(order)
    old_child = np.where(inner[order], position[np.maximum(left[order], 0)], child[order])
    state = compact.__getstate__()
    del state["node_order_"]
    state["feature_"], state["threshold_"] = compact.feature_[order], compact.threshold_[order]
    state["child_"] = old_child.astype(np.int32)
    return state
