"""The reference profile of a trained model (see `product_model.profile`) and its picture.

`reference_profile` runs at training time on the holdout; `plot_profiles` draws a profile, or a
live profile beside its reference (the drift report uses the same picture).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display in Jobs and CI

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from sklearn.pipeline import Pipeline

from product_model.contract import InputContract
from product_model.profile import build_profile

TOP_LABELS = 20


def reference_profile(
    served: Pipeline, holdout_input: pd.DataFrame, proba: np.ndarray, contract: InputContract
) -> dict[str, Any]:
    """The profile of the holdout: its inputs, and the served model's predictions on it."""
    records = holdout_input.to_dict("records")
    labels = np.asarray(served.classes_)[np.argmax(proba, axis=1)]
    oov = served.named_steps["features"].oov_shares(records)
    return build_profile(
        records,
        [str(label) for label in labels],
        proba.max(axis=1).tolist(),
        oov.tolist(),
        contract.names,
        contract.text_fields,
    )


def _long(named: Mapping[str, Mapping[str, Any]], value: str) -> pd.DataFrame:
    """One row per (profile name, key) from {name: {key: value}}."""
    rows = [
        {"profile": name, "key": str(key), value: float(share)}
        for name, shares in named.items()
        for key, share in shares.items()
    ]
    return pd.DataFrame(rows, columns=["profile", "key", value])


def _bins(profile: Mapping[str, Any], kind: str) -> dict[str, float]:
    """{bin: share} of a histogram; {} when the profile has none (a prediction log has no
    out-of-vocabulary shares)."""
    if not profile.get(kind):
        return {}
    edges, shares = profile[kind]["edges"], profile[kind]["shares"]
    return {f"{edges[i]:g}-{edges[i + 1]:g}": s for i, s in enumerate(shares)}


def _labels(profiles: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    first = next(iter(profiles.values()))["labels"]
    top = sorted(first, key=lambda k: -first[k])[:TOP_LABELS]
    extra = [k for p in profiles.values() for k in p["labels"] if k not in top]
    keep = (
        top
        + sorted(set(extra), key=lambda k: -max(p["labels"].get(k, 0) for p in profiles.values()))[
            :5
        ]
    )
    return {name: {k: p["labels"].get(k, 0.0) for k in keep} for name, p in profiles.items()}


def plot_profiles(profiles: Mapping[str, Mapping[str, Any]], path: Path, title: str) -> Path:
    """Label shares, confidence and out-of-vocabulary histograms and field fill rates, one
    colour per profile (e.g. {"reference": ..., "live": ...})."""
    fig, axes = plt.subplots(2, 2, figsize=(13, 10))
    panels = [
        (axes[0, 0], _long(_labels(profiles), "share"), "predicted labels (top)", True),
        (
            axes[0, 1],
            _long({n: _bins(p, "confidence") for n, p in profiles.items()}, "share"),
            "confidence of the predicted label",
            False,
        ),
        (
            axes[1, 0],
            _long({n: _bins(p, "oov") for n, p in profiles.items()}, "share"),
            "out-of-vocabulary share of text tokens",
            False,
        ),
        (
            axes[1, 1],
            _long({n: p.get("fill_rate") or {} for n, p in profiles.items()}, "share"),
            "fill rate per input field",
            True,
        ),
    ]
    for ax, frame, name, horizontal in panels:
        _draw_panel(ax, frame, name, horizontal, list(profiles))
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _draw_panel(
    ax: Any, frame: pd.DataFrame, name: str, horizontal: bool, names: list[str]
) -> None:
    """One bar chart, a colour per profile (the same in every panel); a profile without data
    for this panel is named in its title instead of drawn."""
    missing = [n for n in names if n not in set(frame["profile"])]
    if len(missing) == len(names):
        ax.set(title=name, xticks=[], yticks=[])
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        return
    x, y = ("share", "key") if horizontal else ("key", "share")
    palette = dict(zip(names, sns.color_palette(n_colors=len(names)), strict=True))
    shown = [n for n in names if n not in missing]
    sns.barplot(data=frame, x=x, y=y, hue="profile", hue_order=shown, palette=palette, ax=ax)
    if missing:
        name += f"\n({', '.join(missing)}: no data)"
    ax.set(title=name, xlabel="" if not horizontal else "share", ylabel="")
    ax.tick_params(labelsize=7)
    if not horizontal:
        ax.tick_params(axis="x", rotation=45)
