"""The champion gate: the new model takes the `champion` alias only when it scores at least as
well as the champion on rows that neither model trained on.

`decide` is the rule, a pure function. `challenge` gathers its inputs: the champion's predictions
on this run's holdout, made by the champion's own code in a separate interpreter
(`training.rescore`), and the rows held out under both models' split definitions. A champion
trained for another task or label column is not scored at all (`unfit_champion`), one that reads
fields this catalog lacks is not compared (`training.gate_contract`), and when too few rows are
shared, `explain_shortfall` says why (a small catalog, another catalog or split) and what to do.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from product_model.contract import InputContract, InputField
from training.evaluate import macro_f1
from training.split import SALT, SplitDefinition

if TYPE_CHECKING:
    from training.gate_contract import ClassChange, InputChange

log = logging.getLogger(__name__)

RESCORE_TIMEOUT_SECONDS = 1800


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reason: str
    challenger_f1: float | None = None
    champion_f1: float | None = None
    compared_rows: int = 0
    class_change: ClassChange | None = None  # said, whatever the decision
    input_change: InputChange | None = None  # the same


@dataclass(frozen=True)
class ChampionScores:
    """What the gate knows of the champion: its version, its split (None for models trained
    before splits were recorded), its labels for this run's holdout rows, and the input fields
    it reads (`training.gate_contract` checks that this run's catalog has them)."""

    version: str
    split: SplitDefinition | None
    labels: np.ndarray
    tag_sets: list[list[str]] | None = None  # what a multilabel or path champion answered
    classes: tuple[str, ...] | None = None  # its classes (tags, path nodes); None: not known
    fields: tuple[InputField, ...] | None = None  # its input contract's; None: not known
    fill_rate: Mapping[str, float] | None = None  # of each field on its own holdout


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
            f"and {old}, fewer than --gate-min-rows ({min_rows}); {old} kept "
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
            "champion v%s records no split definition (trained by an older version of this "
            "project): the rows it trained on are unknown",
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
    classes = tuple(answer["classes"]) if "classes" in answer else None
    fields = InputContract.from_dict(answer).fields if "fields" in answer else None
    tag_sets, fill_rate = answer.get("tag_sets"), answer.get("fill_rate")
    return ChampionScores(version, split, labels, tag_sets, classes, fields, fill_rate)


@dataclass(frozen=True)
class TrainingOrigin:
    """What a model was trained for and on, as its run records it (parameters and tags)."""

    task: str
    label_column: str
    source: str
    sha256: str

    @classmethod
    def from_run(cls, params: Mapping[str, str], tags: Mapping[str, str]) -> TrainingOrigin | None:
        """The origin a run logged, or None for a model without a run (registered by hand)."""
        if "label_column" not in params:
            return None
        task = params.get("task", "single_label")  # runs before --task trained single labels
        return cls(
            task, params["label_column"], tags.get("data.source", ""), tags.get("data.sha256", "")
        )

    def target(self) -> str:
        return f"{self.task} on label column '{self.label_column}'"

    def catalog(self) -> str:
        return Path(self.source).name or "an unrecorded catalog"


def unfit_champion(
    champion: TrainingOrigin, mine: TrainingOrigin, version: str, force: bool
) -> GateDecision | None:
    """The decision when the champion answers another question (task or label column) than this
    model: its answers cannot be scored on this run's labels. None when both answer the same."""
    if champion.target() == mine.target():
        return None
    if force:  # its classes cannot be compared either: clients will receive other labels
        return GateDecision(
            True,
            f"forced with --force-promote (over champion v{version}, trained for "
            f"{champion.target()}: clients now receive this model's classes, for "
            f"{mine.target()})",
        )
    reason = (
        f"cannot compare: champion v{version} was trained for {champion.target()} of "
        f"{champion.catalog()}, this model for {mine.target()} of {mine.catalog()}, so its "
        f"answers cannot be scored on this run's labels; champion "
        f"v{version} kept. If both models are wanted, register this one under another "
        "--model-name; --force-promote replaces the champion"
    )
    return GateDecision(False, reason)


def split_keys(split: SplitDefinition) -> str:
    """How a split picks its holdout rows, in words."""
    text = " + ".join(f"'{c}'" for c in split.text_columns) or "(no column)"
    key = f"id column '{split.id_column}', else text {text}" if split.id_column else f"text {text}"
    salt = "" if split.salt == SALT else f", salt {split.salt!r}"
    return f"{split.test_size:g} of rows by {key}{salt}"


def _other_products(champion: TrainingOrigin, mine: TrainingOrigin) -> bool:
    """Whether the champion was trained on another catalog: another file, not the same content
    moved (a catalog grown in place is the same products)."""
    moved = bool(champion.sha256) and champion.sha256 == mine.sha256
    return bool(champion.source) and champion.source != mine.source and not moved


def split_differences(champion: SplitDefinition, mine: SplitDefinition) -> list[tuple[str, str]]:
    """Each split setting the champion chose otherwise, as (what differs, the champion's value as
    the option that sets it; "" when no option does)."""
    settings = (
        ("--test-size", champion.test_size, mine.test_size, f"{champion.test_size:g}"),
        ("--id-column", champion.id_column, mine.id_column, champion.id_column or ""),
        (
            "--text-columns",
            champion.text_columns,
            mine.text_columns,
            ",".join(champion.text_columns),
        ),
    )
    found = [
        (f"{flag} {_shown(theirs)} (this run: {_shown(own)})", f"{flag} {shlex.quote(value)}")
        for flag, theirs, own, value in settings
        if theirs != own
    ]
    if champion.salt != mine.salt:  # only another version of this project sets another salt
        found.append((f"the hash salt {champion.salt!r} (this run: {mine.salt!r})", ""))
    return found


def _shown(value: object) -> str:
    if isinstance(value, tuple):
        return ",".join(value) or "none"
    return "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def _split_hints(theirs: SplitDefinition, own: SplitDefinition) -> list[str]:
    """For a champion of the same products held out otherwise: what differs, then the fix."""
    differences = split_differences(theirs, own)
    options = " ".join(option for _, option in differences if option)
    listed = ", ".join(difference for difference, _ in differences)
    reads = (
        " (--text-columns also sets what the model reads)" if "--text-columns" in options else ""
    )
    fix = (
        f"train again with the champion's values ({options}) so that both models are compared "
        f"on the same holdout{reads}, or register this model under its own --model-name"
        if options
        else "register this model under its own --model-name"
    )
    return [f"the champion held out its rows by other split settings: {listed}", fix]


def explain_shortfall(
    decision: GateDecision,
    champion: TrainingOrigin | None,
    mine: TrainingOrigin,
    splits: tuple[SplitDefinition | None, SplitDefinition],
    holdout_rows: int,
    min_rows: int,
) -> GateDecision:
    """`decision` with why too few rows were shared, and what to do: a champion trained on
    another catalog (another --model-name) or held out otherwise (its split settings, else
    another --model-name), or a holdout below --gate-min-rows."""
    if decision.promote or decision.compared_rows >= min_rows:
        return decision
    hints = []
    lost_rows = decision.compared_rows < holdout_rows  # the champion trained on some of them
    other_catalog = champion is not None and _other_products(champion, mine)
    if lost_rows and champion is not None and other_catalog:
        theirs_name, mine_name = champion.catalog(), mine.catalog()
        if theirs_name == mine_name:  # two folders, one file name
            theirs_name, mine_name = champion.source, mine.source
        hints.append(f"the champion was trained on {theirs_name}, this model on {mine_name}")
    theirs, own = splits
    split_differs = lost_rows and theirs is not None and split_keys(theirs) != split_keys(own)
    if split_differs and theirs is not None and not other_catalog:
        hints += _split_hints(theirs, own)
    elif split_differs and theirs is not None:
        hints.append(
            f"their holdouts are chosen differently (champion: {split_keys(theirs)}; this run: "
            f"{split_keys(own)})"
        )
    if lost_rows and other_catalog:
        hints.append("a model of other products belongs under its own --model-name")
    if decision.compared_rows > 0 and holdout_rows < min_rows:
        hints.append(
            f"this run's whole holdout is {holdout_rows} rows: on a catalog this small, a lower "
            f"--gate-min-rows (at most {holdout_rows}; fewer rows make a noisier comparison) or a "
            "larger --test-size lets the gate decide"
        )
    if not hints:
        return decision
    why = "; ".join(hints)
    return replace(decision, reason=f"{decision.reason}. {why[0].upper()}{why[1:]}")
