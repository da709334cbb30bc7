"""Scores and charts of a fitted model on the holdout split."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display in Jobs and CI

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    roc_auc_score,
)


@dataclass
class Evaluation:
    metrics: dict[str, float]
    per_class: pd.DataFrame
    confusion: pd.DataFrame
    proba: np.ndarray


def macro_f1(y_true: Any, y_pred: Any) -> float:
    """Macro-F1 over the labels of the evaluation split (what the promotion gate compares)."""
    labels = np.unique(np.asarray(y_true))
    return float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0))


def roc_auc_ovr(y_true: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> float:
    """Macro one-vs-rest ROC-AUC over the classes present in `y_true`."""
    present = [i for i, label in enumerate(classes) if np.any(y_true == label)]
    if len(present) < 2:
        return float("nan")
    scores = [roc_auc_score(y_true == classes[i], proba[:, i]) for i in present]
    return float(np.mean(scores))


def evaluate(y_true: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> Evaluation:
    y_pred = classes[np.argmax(proba, axis=1)]
    labels = np.unique(y_true)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    per_class = pd.DataFrame(
        {"precision": precision, "recall": recall, "f1": f1, "support": support},
        index=pd.Index(labels, name="label"),
    )
    metrics = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "f1_macro": macro_f1(y_true, y_pred),
        "f1_weighted": float(
            f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0)
        ),
        "roc_auc_ovr_macro": roc_auc_ovr(y_true, proba, classes),
        "eval_rows": float(len(y_true)),
    }
    confusion = pd.DataFrame(
        confusion_matrix(y_true, y_pred, labels=labels), index=labels, columns=labels
    )
    return Evaluation(metrics=metrics, per_class=per_class, confusion=confusion, proba=proba)


def plot_confusion(confusion: pd.DataFrame, path: Path) -> None:
    """Row-normalized confusion matrix (recall on the diagonal)."""
    share = confusion.div(confusion.sum(axis=1).replace(0, 1), axis=0)
    size = max(6.0, 0.22 * len(share))
    fig, ax = plt.subplots(figsize=(size * 1.15, size))
    sns.heatmap(
        share,
        cmap="viridis",
        vmin=0,
        vmax=1,
        square=True,
        ax=ax,
        cbar_kws={"label": "share of true class"},
        xticklabels=True,
        yticklabels=True,
    )
    ax.set(xlabel="predicted", ylabel="true", title="Confusion matrix (row-normalized)")
    ax.tick_params(labelsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_per_class_f1(per_class: pd.DataFrame, path: Path) -> None:
    ordered = per_class.sort_values("f1").reset_index()
    fig, ax = plt.subplots(figsize=(7, max(4.0, 0.18 * len(ordered))))
    sns.barplot(data=ordered, x="f1", y="label", color="steelblue", ax=ax)
    ax.set(xlim=(0, 1), xlabel="F1", ylabel="", title="F1 per class (holdout)")
    ax.tick_params(axis="y", labelsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_class_distribution(
    before: Mapping[str, int], after: Mapping[str, int], path: Path
) -> None:
    frame = pd.DataFrame({"before SMOTE": before, "after SMOTE": after}).fillna(0)
    frame = frame.sort_values("before SMOTE", ascending=False)
    long = frame.reset_index(names="label").melt(id_vars="label", var_name="", value_name="rows")
    fig, ax = plt.subplots(figsize=(7, max(4.0, 0.18 * len(frame))))
    sns.barplot(data=long, x="rows", y="label", hue="", ax=ax)
    ax.set(xscale="log", ylabel="", title="Training rows per class")
    ax.tick_params(axis="y", labelsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_reports(
    evaluation: Evaluation, before: Mapping[str, int], after: Mapping[str, int], folder: Path
) -> list[Path]:
    """Write the JSON reports and PNG charts of an evaluation; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    report = folder / "classification_report.json"
    report.write_text(json.dumps(evaluation.per_class.to_dict(orient="index"), indent=1))
    confusion_json = folder / "confusion_matrix.json"
    confusion_json.write_text(evaluation.confusion.to_json(orient="split"))
    distribution = folder / "class_distribution.json"
    distribution.write_text(json.dumps({"before_smote": before, "after_smote": after}, indent=1))
    charts = [
        folder / "confusion_matrix.png",
        folder / "per_class_f1.png",
        folder / "class_distribution.png",
    ]
    plot_confusion(evaluation.confusion, charts[0])
    plot_per_class_f1(evaluation.per_class, charts[1])
    plot_class_distribution(before, after, charts[2])
    return [report, confusion_json, distribution, *charts]
