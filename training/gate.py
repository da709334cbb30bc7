"""The champion gate: the new model takes the `champion` alias only when it scores at least as
well as the champion on rows that neither model trained on.

`decide` is the rule, a pure function. `challenge` gathers its inputs: the champion's predictions
on this run's holdout, made by the champion's own code in a separate interpreter
(`training.rescore`), and the rows held out under both models' split definitions.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training.evaluate import macro_f1
from training.split import SplitDefinition

log = logging.getLogger(__name__)

RESCORE_TIMEOUT_SECONDS = 1800


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reason: str
    challenger_f1: float | None = None
    champion_f1: float | None = None
    compared_rows: int = 0


@dataclass(frozen=True)
class ChampionScores:
    """What the gate knows of the champion: its version, its split (None for models trained
    before splits were recorded) and its labels for this run's holdout rows."""

    version: str
    split: SplitDefinition | None
    labels: np.ndarray
    tag_sets: list[list[str]] | None = None  # what a multilabel or path champion answered


def decide(
    challenger_f1: float | None,
    champion_f1: float | None,
    compared_rows: int,
    min_rows: int,
    force: bool,
    champion_version: str | None,
    metric: str = "macro-F1",
) -> GateDecision:
    """Promote when there is no champion, when forced, or when the challenger's macro-F1 on at
    least `min_rows` rows held out by both models is at least the champion's."""
    if champion_version is None:
        return GateDecision(True, "no champion yet", challenger_f1, None, compared_rows)
    old = f"champion v{champion_version}"
    if force:
        reason = f"forced with --force-promote (over {old})"
        return GateDecision(True, reason, challenger_f1, champion_f1, compared_rows)
    if challenger_f1 is None or champion_f1 is None or compared_rows < min_rows:
        reason = (
            f"cannot compare fairly: only {compared_rows} row(s) are held out by both this model "
            f"and {old} (at least {min_rows} needed, --gate-min-rows); {old} kept "
            "(--force-promote to replace it)"
        )
        return GateDecision(False, reason, challenger_f1, champion_f1, compared_rows)
    on = f"on {compared_rows} rows held out by both"
    if challenger_f1 >= champion_f1:
        reason = f"{metric} {challenger_f1:.4f} >= {old}'s {champion_f1:.4f} {on}"
        return GateDecision(True, reason, challenger_f1, champion_f1, compared_rows)
    reason = f"{metric} {challenger_f1:.4f} < {old}'s {champion_f1:.4f} {on}; {old} kept"
    return GateDecision(False, reason, challenger_f1, champion_f1, compared_rows)


def challenge(
    champion: ChampionScores | None,
    holdout: pd.DataFrame,
    challenger_labels: np.ndarray,
    min_rows: int,
    force: bool,
) -> GateDecision:
    """The decision for a challenger that predicted `challenger_labels` on `holdout`."""
    if champion is None:
        return decide(None, None, len(holdout), min_rows, force, None)
    if champion.split is None:
        log.warning(
            "champion v%s records no split definition (trained before 0.2.0): the rows it "
            "trained on are unknown",
            champion.version,
        )
        return decide(None, None, 0, min_rows, force, champion.version)
    both = champion.split.held_out(holdout)
    truth = holdout["label"].to_numpy()[both]
    challenger_f1 = macro_f1(truth, challenger_labels[both]) if both.any() else None
    champion_f1 = macro_f1(truth, champion.labels[both]) if both.any() else None
    return decide(challenger_f1, champion_f1, int(both.sum()), min_rows, force, champion.version)


def score_champion(tracking_uri: str, model_uri: str, version: str, rows: pd.DataFrame) -> Any:
    """The champion's labels for `rows` and its split, from the champion's own code: a separate
    interpreter loads it (the code this training imported could differ from the champion's)."""
    with tempfile.TemporaryDirectory(prefix="rescore-") as scratch:
        rows_path, answer_path = Path(scratch) / "rows.pkl", Path(scratch) / "answer.json"
        rows.to_pickle(rows_path)
        script = str(Path(__file__).with_name("rescore.py"))
        # -P: the script's folder stays off sys.path, so training's modules (profile, logs,
        # evaluate ...) cannot shadow the standard library's or MLflow's.
        command = [sys.executable, "-P", script, model_uri, str(rows_path)]
        command.append(str(answer_path))
        env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri}
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=RESCORE_TIMEOUT_SECONDS
        )
        if done.returncode != 0:
            raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr else "failed")
        answer = json.loads(answer_path.read_text("utf-8"))
    split = SplitDefinition.from_dict(answer["split"]) if answer.get("split") else None
    labels = np.asarray(answer["labels"], dtype=object)
    return ChampionScores(version, split, labels, answer.get("tag_sets"))
