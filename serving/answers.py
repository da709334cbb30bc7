"""A model's probabilities as answers: the ranked labels of a single-label model, the tags or the
path of the others, and the classes each answer counts in the metrics. No FastAPI, no threads.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from serving.model import ServedModel


def ranked_labels(
    proba: np.ndarray, order: np.ndarray, classes: np.ndarray
) -> list[list[dict[str, Any]]]:
    """For each row, the labels in `order` with their probabilities (rounded to 6 places)."""
    labels = classes[order]
    scores = np.take_along_axis(proba, order, axis=1).round(6)
    return [
        [
            {"label": str(label), "probability": float(p)}
            for label, p in zip(row_l, row_p, strict=True)
        ]
        for row_l, row_p in zip(labels.tolist(), scores.tolist(), strict=True)
    ]


def task_answer(model: ServedModel, chosen: list[tuple[str, float]]) -> dict[str, Any]:
    """A multilabel answer: `tags` (those reaching their thresholds, most probable first, as
    every model's decoder orders them) and, as `label` and `probability`, the first of them; or
    a path answer: `label` the whole path, `probability` its deepest level's, `path` each level
    with its probability. Decided here, not by the model's own code, so that models saved
    before the rule answer by it too."""
    scored = [{"label": name, "probability": round(p, 6)} for name, p in chosen]
    if model.contract.task == "path":
        path = model.path_separator.join(name for name, _ in chosen)
        return {"label": path, "probability": scored[-1]["probability"], "path": scored}
    return {"label": scored[0]["label"], "probability": scored[0]["probability"], "tags": scored}


def answered_classes(
    model: ServedModel, chosen: list[list[tuple[str, float]]]
) -> tuple[list[str], list[float]]:
    """The model's own classes answered (each tag, or each node of a path: bounded by the
    model's tag set) and each product's confidence (its label's: the first tag answered, or
    its path's deepest level)."""
    if model.contract.task == "path":
        separator = model.path_separator
        labels = [
            separator.join(name for name, _ in row[: depth + 1])
            for row in chosen
            for depth in range(len(row))
        ]
        return labels, [row[-1][1] for row in chosen]
    return [name for row in chosen for name, _ in row], [row[0][1] for row in chosen]


def as_prediction(top: list[dict[str, Any]]) -> dict[str, Any]:
    return {"label": top[0]["label"], "probability": top[0]["probability"], "top_k": top}
