"""What a multi-label or category-path model answers, from its per-tag probabilities.

A multi-label model (`task` "multilabel") gives each of its tags a probability of applying; a
product gets the tags whose probability reaches that tag's threshold (chosen at training time on
the training rows, never the holdout), and at least its most probable tag. Its `label` is the
first of the tags answered, the most probable one that passes (or that fallback): never a tag
the model rejects, though not `top_labels[0]` when the most probable tag misses its threshold.

A category-path model (`task` "path") is a multi-label model over the nodes of the category tree,
each node named by its full path, its levels joined by the model's `separator` (` > ` as in
`Electronics > Computers > Laptops`, or the catalog's own, as in `Desktop/games`; no level holds
it). Its answer is one
consistent path: the most probable top-level node, then, while the most probable child of the
node reached passes its threshold, that child. A child is therefore only ever answered under its
predicted parent, and each level carries its own probability.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SINGLE_LABEL = "single_label"
MULTILABEL = "multilabel"
PATH = "path"
TASKS: tuple[str, ...] = (SINGLE_LABEL, MULTILABEL, PATH)
PATH_SEPARATOR = " > "

Chosen = list[tuple[str, float]]


def path_nodes(levels: Sequence[str], separator: str = PATH_SEPARATOR) -> list[str]:
    """Every node on a category path, by its full name: [A, A > B, A > B > C]."""
    return [separator.join(levels[: depth + 1]) for depth in range(len(levels))]


@dataclass(frozen=True)
class TagDecoder:
    """Turns per-tag probabilities into the tags (or the path) a model answers."""

    task: str
    tags: tuple[str, ...]
    thresholds: tuple[float, ...]
    separator: str = PATH_SEPARATOR
    _children: dict[int, np.ndarray] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if len(self.tags) != len(self.thresholds):
            raise ValueError(f"{len(self.tags)} tags but {len(self.thresholds)} thresholds")
        if self.task == PATH:
            self._children.update(_children_of(self.tags, self.separator))

    def to_dict(self) -> dict[str, Any]:
        return {
            "tags": list(self.tags),
            "thresholds": [round(float(t), 6) for t in self.thresholds],
            "separator": self.separator,
        }

    @classmethod
    def from_contract(cls, contract: Mapping[str, Any]) -> TagDecoder | None:
        """The decoder a model's contract describes (None for a single-label model)."""
        task = str(contract.get("task", SINGLE_LABEL))
        if task == SINGLE_LABEL:
            return None
        tags = contract["tags"]
        return cls(
            task,
            tuple(str(t) for t in tags["tags"]),
            tuple(float(t) for t in tags["thresholds"]),
            str(tags.get("separator", PATH_SEPARATOR)),
        )

    def chosen_columns(self, proba: np.ndarray) -> list[list[int]]:
        """Per row, the columns answered: tags by falling probability, or the path's nodes."""
        if self.task == PATH:
            return [self._path(row) for row in proba]
        above = proba >= np.asarray(self.thresholds)[None, :]
        chosen = []
        for row, passes in zip(proba, above, strict=True):
            columns = np.flatnonzero(passes)
            if columns.size == 0:
                columns = np.array([int(np.argmax(row))])
            chosen.append(columns[np.argsort(-row[columns], kind="stable")].tolist())
        return chosen

    def answers(self, proba: np.ndarray) -> list[Chosen]:
        """Per row, (name, probability): the tags above their thresholds, or the path's levels
        (each level by its own name, with the probability of its node)."""
        answers = []
        for row, columns in zip(proba, self.chosen_columns(proba), strict=True):
            answers.append([(self._shown_name(c), float(row[c])) for c in columns])
        return answers

    def label_sets(self, proba: np.ndarray) -> list[list[str]]:
        """Per row, the full names of the columns answered (what evaluation scores)."""
        return [[self.tags[c] for c in columns] for columns in self.chosen_columns(proba)]

    def _shown_name(self, column: int) -> str:
        name = self.tags[column]
        return name.rsplit(self.separator, 1)[-1] if self.task == PATH else name

    def _path(self, row: np.ndarray) -> list[int]:
        roots = self._children[-1]
        node = int(roots[np.argmax(row[roots])])
        path = [node]
        while node in self._children:
            children = self._children[node]
            best = int(children[np.argmax(row[children])])
            if row[best] < self.thresholds[best]:
                break
            path.append(best)
            node = best
        return path


def _children_of(nodes: Sequence[str], separator: str) -> dict[int, np.ndarray]:
    """Column indices of each node's children; key -1 holds the top-level nodes."""
    index = {name: i for i, name in enumerate(nodes)}
    children: dict[int, list[int]] = {}
    for i, name in enumerate(nodes):
        parent = name.rsplit(separator, 1)[0] if separator in name else None
        if parent is not None and parent not in index:
            raise ValueError(f"category path node '{name}' has no parent node '{parent}'")
        children.setdefault(-1 if parent is None else index[parent], []).append(i)
    if -1 not in children:
        raise ValueError("a category path model needs top-level nodes")
    return {key: np.asarray(value, dtype=np.int64) for key, value in children.items()}
