"""The champion's contract at the gate: the input fields it reads that this run's catalog lacks,
and what a new model changes for clients (the input fields it reads, the classes it answers).

The champion is re-scored on this run's holdout. When the catalog lacks a field the champion's
input contract declares (not a column of it, or empty on every holdout row where the champion's
own holdout had it), the champion would be scored without an input it learned from, and a lower
score would say nothing about it: `unreadable_champion` then refuses to compare, as the gate does
for another task or label column. Whatever the decision, `input_change` names the fields this
model no longer reads, reads anew, or reads in another role or type (serving validates requests
by the serving model's fields, so clients written for the champion may be refused, 422), and
`class_change` the classes it no longer answers or answers anew; `log_changes` says both.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from product_model.contract import InputField, to_numbers
from product_model.profile import is_filled
from training.gate import ChampionScores, GateDecision
from training.run_writer import MAX_TAG_CHARS, RunWriter

log = logging.getLogger(__name__)

MIN_EXPECTED_FILLED = 5
"""An empty field lacks only when the champion's fill rate expected at least this many filled
holdout rows: a rarer field may be empty by chance, and could change the champion's score on a
few rows only."""


def filled_rows(values: pd.Series, field: InputField) -> int:
    """How many of `values` carry something for `field`, as the reference profile counts them (a
    number field's text that is not a number counts as missing, as training reads it)."""
    if field.type == "number":
        return int(to_numbers(values).notna().sum())
    return int(values.map(is_filled).sum())


def lacking_fields(
    fields: Sequence[InputField], fill_rate: Mapping[str, float] | None, rows: pd.DataFrame
) -> dict[str, str]:
    """The fields of `fields` that `rows` lack, each with how: not a column, or empty on every row
    while the champion's fill rate (None: not known) expected filled ones."""
    lacking: dict[str, str] = {}
    for field in fields:
        if field.name not in rows.columns:
            lacking[field.name] = "not a column"
        elif emptied(rows[field.name], field, (fill_rate or {}).get(field.name)):
            lacking[field.name] = f"empty on all {len(rows)} holdout rows"
    return lacking


def emptied(values: pd.Series, field: InputField, rate: float | None) -> bool:
    """Whether `values` hold `field` on no row while the champion's fill rate `rate` (None: not
    known) expected at least MIN_EXPECTED_FILLED filled ones."""
    expected = len(values) if rate is None else rate * len(values)
    return expected >= MIN_EXPECTED_FILLED and filled_rows(values, field) == 0


def unreadable_champion(
    champion: ChampionScores, rows: pd.DataFrame, force: bool
) -> GateDecision | None:
    """The decision when this run's holdout `rows` lack fields the champion reads: its score on
    them is not its own, so it is not compared (kept unless forced). None when the rows hold
    every field it reads, or its fields are not known (a model from before input contracts)."""
    if champion.fields is None:
        return None
    lacking = lacking_fields(champion.fields, champion.fill_rate, rows)
    if not lacking:
        return None
    old = f"champion v{champion.version}"
    empty = [f"'{name}' is {how}" for name, how in lacking.items() if how != "not a column"]
    reads = f"reads {', '.join(map(repr, lacking))}, which this catalog lacks" + (
        f" ({'; '.join(empty)})" if empty else ""
    )
    if force:
        return GateDecision(
            True, f"forced with --force-promote (over {old}, not scored: it {reads})"
        )
    reason = (
        f"cannot compare: {old} {reads}: scored without them, its score would not be its own; "
        f"{old} kept. Train on a catalog that has those fields (clients "
        "that send them keep working), or register this model under another --model-name; "
        "--force-promote replaces the champion"
    )
    return GateDecision(False, reason)


@dataclass(frozen=True)
class ClassChange:
    """The classes a new model no longer has (`removed`) and has anew (`added`) against the
    champion it was compared with: the gate decides on scores alone, but clients then receive
    other labels, so the change is said."""

    champion_version: str
    removed: tuple[str, ...]
    added: tuple[str, ...]

    def describe(self, shown: int = 5) -> str:
        parts = [
            f"{what} {len(names)} ({', '.join(map(repr, names[:shown]))}"
            f"{', ...' if len(names) > shown else ''})"
            for what, names in (("removed", self.removed), ("added", self.added))
            if names
        ]
        return f"changed from champion v{self.champion_version}'s: {'; '.join(parts)}"


def class_change(champion: ChampionScores, classes: Iterable[str]) -> ClassChange | None:
    """What differs between the champion's classes and `classes`; None when they are the same,
    or the champion's are not known."""
    if champion.classes is None:
        return None
    theirs, mine = set(champion.classes), set(classes)
    if theirs == mine:
        return None
    return ClassChange(champion.version, tuple(sorted(theirs - mine)), tuple(sorted(mine - theirs)))


def log_class_change(change: ClassChange, writer: RunWriter) -> None:
    """Say a change of classes: a WARNING, and the run's `classes_changed` tag (the full lists
    in `gate/classes_changed.json`)."""
    log.warning("gate: the classes %s", change.describe())
    writer.tags({"classes_changed": change.describe(shown=20)[:MAX_TAG_CHARS]})
    record = {"champion_version": change.champion_version, "removed": list(change.removed)}
    writer.json(record | {"added": list(change.added)}, "gate/classes_changed.json")


@dataclass(frozen=True)
class InputChange:
    """The input fields a new model no longer reads (`removed`), reads anew (`added`) or reads in
    another role or type (`changed`, as `name (text string → tokens tokens)`) against the champion
    it was compared with."""

    champion_version: str
    removed: tuple[str, ...]
    added: tuple[str, ...]
    changed: tuple[str, ...] = ()

    def describe(self) -> str:
        parts = [
            f"{what} {', '.join(names if what == 'changed' else map(repr, names))}"
            for what, names in (
                ("removed", self.removed),
                ("added", self.added),
                ("changed", self.changed),
            )
            if names
        ]
        return f"changed from champion v{self.champion_version}'s: {'; '.join(parts)}"


def input_change(champion: ChampionScores, fields: Sequence[InputField]) -> InputChange | None:
    """What differs between the champion's input fields and `fields`; None when they are the
    same, or the champion's are not known."""
    if champion.fields is None:
        return None
    old = {f.name: f for f in champion.fields}
    new = {f.name: f for f in fields}
    changed = tuple(
        f"{name} ({old[name].role} {old[name].type} → {new[name].role} {new[name].type})"
        for name in old
        if name in new and (old[name].role, old[name].type) != (new[name].role, new[name].type)
    )
    removed = tuple(name for name in old if name not in new)
    added = tuple(name for name in new if name not in old)
    if not (removed or added or changed):
        return None
    return InputChange(champion.version, removed, added, changed)


def log_input_change(change: InputChange, writer: RunWriter) -> None:
    """Say a change of input fields: a WARNING, the run's `inputs_changed` tag and
    `gate/inputs_changed.json` (the full lists)."""
    log.warning(
        "gate: the input fields %s. Serving validates requests by the serving model's fields: "
        "once this model serves, clients that send v%s's fields may be refused (422)",
        change.describe(),
        change.champion_version,
    )
    writer.tags({"inputs_changed": change.describe()[:MAX_TAG_CHARS]})
    record = {"champion_version": change.champion_version, "removed": list(change.removed)}
    record |= {"added": list(change.added), "changed": list(change.changed)}
    writer.json(record, "gate/inputs_changed.json")


def log_changes(decision: GateDecision, writer: RunWriter) -> None:
    """Say what the decided model changes for clients against the champion, if anything."""
    if decision.class_change is not None:
        log_class_change(decision.class_change, writer)
    if decision.input_change is not None:
        log_input_change(decision.input_change, writer)
