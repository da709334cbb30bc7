"""Scores and charts of a multi-label or category-path model on the holdout split.

Multi-label scores: micro-, macro- and samples-F1, Hamming loss, subset accuracy (the whole tag
set right), and precision, recall, F1 and support per tag. A path model is also scored per level:
at level d, over the products whose true path reaches d, the share whose predicted path has the
same node there (`path_level_d_accuracy`) and the macro-F1 of those nodes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display in Jobs and CI

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from sklearn.metrics import f1_score, hamming_loss, precision_recall_fscore_support

from training.evaluate import Evaluation
from training.tag_catalog import indicator_matrix

TagSets = Sequence[Sequence[str]]


def set_scores(truth: TagSets, predicted: TagSets, tags: list[str]) -> dict[str, float]:
    """Micro/macro/samples-F1, Hamming loss and subset accuracy of predicted tag sets."""
    Y = indicator_matrix(pd.Series(list(truth), dtype=object), tags)
    P = indicator_matrix(pd.Series(list(predicted), dtype=object), tags)
    scores = {
        f"f1_{average}": float(f1_score(Y, P, average=average, zero_division=0))
        for average in ("micro", "macro", "samples")
    }
    scores["hamming_loss"] = float(hamming_loss(Y, P))
    scores["subset_accuracy"] = float(
        np.mean([set(t) == set(p) for t, p in zip(truth, predicted, strict=True)])
    )
    return scores


def per_tag_scores(
    truth: TagSets, predicted: TagSets, tags: list[str], train_counts: dict[str, int]
) -> pd.DataFrame:
    """Precision, recall, F1 and holdout support per tag, with its training frequency."""
    Y = indicator_matrix(pd.Series(list(truth), dtype=object), tags)
    P = indicator_matrix(pd.Series(list(predicted), dtype=object), tags)
    precision, recall, f1, support = precision_recall_fscore_support(Y, P, zero_division=0)
    return pd.DataFrame(
        {
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": support,
            "train_count": [train_counts.get(tag, 0) for tag in tags],
        },
        index=pd.Index(tags, name="label"),
    )


def level_scores(truth: TagSets, predicted: TagSets, separator: str) -> dict[str, float]:
    """Per path level: accuracy and macro-F1 of the node at that level."""

    def at(nodes: Sequence[str], depth: int) -> str:
        deeper = [n for n in nodes if n.count(separator) == depth]
        return deeper[0] if deeper else ""

    scores: dict[str, float] = {}
    depth = 0
    while True:
        rows = [
            (at(t, depth), at(p, depth))
            for t, p in zip(truth, predicted, strict=True)
            if at(t, depth)
        ]
        if not rows:
            return scores
        true_nodes, predicted_nodes = zip(*rows, strict=True)
        level = depth + 1
        hits = [a == b for a, b in rows]
        scores[f"path_level_{level}_accuracy"] = float(np.mean(hits))
        labels = sorted(set(true_nodes))
        scores[f"path_level_{level}_f1_macro"] = float(
            f1_score(true_nodes, predicted_nodes, labels=labels, average="macro", zero_division=0)
        )
        scores[f"path_level_{level}_rows"] = float(len(rows))
        depth += 1


def evaluate_tags(
    truth: TagSets,
    predicted: TagSets,
    proba: np.ndarray,
    tags: list[str],
    train_counts: dict[str, int],
    path_separator: str | None = None,
) -> Evaluation:
    """All holdout scores of a tag model; `path_separator` also scores path levels."""
    metrics = set_scores(truth, predicted, tags)
    if path_separator is not None:
        metrics |= level_scores(truth, predicted, path_separator)
    metrics["eval_rows"] = float(len(truth))
    metrics["tags"] = float(len(tags))
    per_tag = per_tag_scores(truth, predicted, tags, train_counts)
    return Evaluation(metrics=metrics, per_class=per_tag, confusion=pd.DataFrame(), proba=proba)


def plot_f1_by_frequency(per_tag: pd.DataFrame, path: Path) -> None:
    """Per-tag F1 against the tag's training frequency (log scale), point size by support."""
    frame = per_tag.reset_index()
    fig, ax = plt.subplots(figsize=(7, 5))
    sns.scatterplot(
        data=frame, x="train_count", y="f1", size="support", alpha=0.6, ax=ax, legend="brief"
    )
    ax.set(
        xscale="log",
        ylim=(-0.02, 1.02),
        xlabel="training products with the tag",
        ylabel="F1 on the holdout",
        title="F1 per tag against tag frequency",
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_tag_reports(
    evaluation: Evaluation, thresholds: dict[str, float], folder: Path
) -> list[Path]:
    """The per-tag report (with each tag's threshold) as JSON and the F1-by-frequency chart."""
    folder.mkdir(parents=True, exist_ok=True)
    report = folder / "per_tag_report.json"
    per_tag = evaluation.per_class.assign(threshold=pd.Series(thresholds))
    report.write_text(json.dumps(per_tag.to_dict(orient="index"), indent=1))
    chart = folder / "per_tag_f1_by_frequency.png"
    plot_f1_by_frequency(evaluation.per_class, chart)
    return [report, chart]
