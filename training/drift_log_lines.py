"""The lines of a prediction log (`serving.prediction_log`) as `product-monitor` reads them.

A log is plain or gzip-compressed (a rotated one), told by its content. Each line is checked for
what the live profile needs; a line that is not a prediction (cut short by a server killed
mid-write, or written by something else) is skipped and counted, as `product-train` skips a
catalog's malformed lines, and the log is refused only when such lines are more than
MAX_BAD_LINE_SHARE of it. A last line without its newline is one still being written: it is
skipped, but never counts towards that share.
"""

from __future__ import annotations

import json
import logging
import math
import time
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.catalog_files import MAX_BAD_LINE_SHARE, open_text
from training.errors import DataError

log = logging.getLogger("product-monitor")

LINE_SHAPE = (
    "a prediction log holds one JSON object per line with label and confidence (or top_k), as "
    "the servers write with PREDICTION_LOG"
)
JSON_TYPES = {str: "a string", int: "a number", float: "a number", bool: "a boolean"}


@dataclass(frozen=True)
class Window:
    """A range of live traffic up to now: its PromQL spelling (`6h`) and its length."""

    promql: str
    seconds: float

    def __str__(self) -> str:
        return self.promql


@dataclass(frozen=True)
class Prediction:
    """One logged product: the model that answered it (None when the line names none), its most
    probable class and that class's probability, and the product's fields if they were logged."""

    model: tuple[str, str] | None
    label: str
    confidence: float
    product: Mapping[str, Any]


class BadLineError(ValueError):
    """What is wrong with a line of the log."""


@dataclass
class LogLines:
    """What a read of the log found: the predictions kept, the malformed lines (number, what is
    wrong), a last line cut short, and the times of the lines older than the window."""

    predictions: list[Prediction] = field(default_factory=list)
    bad: list[tuple[int, str]] = field(default_factory=list)
    cut: tuple[int, str] | None = None
    older: list[float] = field(default_factory=list)


def read_predictions(path: Path, window: Window | None = None) -> list[Prediction]:
    """The predictions of the log at `path` (with `window`, those logged within it); malformed
    lines are skipped with one warning, or `DataError` when too many are."""
    since = time.time() - window.seconds if window is not None else None
    try:
        found = read_lines(path, since)
    except (OSError, EOFError, zlib.error) as error:  # EOFError, zlib.error: a damaged .gz
        reason = getattr(error, "strerror", None) or str(error)
        raise DataError(
            f"{path}: cannot read the prediction log ({reason}); check --prediction-log"
        ) from None
    check_bad_lines(path, found)
    if window is not None:
        check_window(path, window, found)
    return found.predictions


def read_lines(path: Path, since: float | None) -> LogLines:
    """Every line of the log, sorted into what `LogLines` holds (`since`: the window's start)."""
    found = LogLines()
    for number, line, whole in numbered_lines(path):
        try:
            at, prediction = parse_line(line, since is not None)
        except BadLineError as error:
            if whole:
                found.bad.append((number, str(error)))
            else:  # the server is writing it, or was killed while it did
                found.cut = (number, f"cut short, the file ends mid-line ({error})")
            continue
        if since is not None and at < since:
            found.older.append(at)
        else:
            found.predictions.append(prediction)
    return found


def numbered_lines(path: Path) -> Iterator[tuple[int, str, bool]]:
    """(line number from 1, the line, whether it ends with a newline) of each non-blank line."""
    with open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield number, line, line.endswith("\n")


def parse_line(line: str, timed: bool) -> tuple[float, Prediction]:
    """The line's time (`ts`; 0 unless `timed`) and prediction, or `BadLineError` saying why not."""
    try:
        entry = json.loads(line)
    except ValueError as error:
        where = f" at column {error.colno}" if isinstance(error, json.JSONDecodeError) else ""
        raise BadLineError(f"not JSON: {getattr(error, 'msg', error)}{where}") from None
    if not isinstance(entry, dict):
        raise BadLineError(f"not a JSON object but {describe(entry)}")
    at = timestamp(entry) if timed else 0.0
    label, confidence = most_probable(entry)
    return at, Prediction(model_of(entry), label, confidence, product_of(entry))


def most_probable(entry: Mapping[str, Any]) -> tuple[str, float]:
    """A logged product's most probable class and its probability, as the reference counts: the
    first of its `top_k` (a path model logs the whole path as `label` with its deepest level's
    probability); `label` and `confidence` when no top-k was logged."""
    top = entry.get("top_k")
    if top is None or top == []:
        return text_field(entry, "label"), probability_field(entry, "confidence")
    first = top[0] if isinstance(top, list) else None
    if not (isinstance(first, list) and len(first) == 2 and isinstance(first[0], str)):
        raise BadLineError(f'"top_k" is {describe(top)}, not a list of [label, probability] pairs')
    return first[0], probability(first[1], '"top_k"\'s first probability')


def text_field(entry: Mapping[str, Any], name: str) -> str:
    """The line's field `name`, a non-empty string, else `BadLineError` naming it."""
    if name not in entry:
        raise BadLineError(f'no "{name}" field')
    value = entry[name]
    if not isinstance(value, str) or not value:
        raise BadLineError(f'"{name}" is {describe(value)}, not a non-empty string')
    return value


def probability_field(entry: Mapping[str, Any], name: str) -> float:
    """The line's field `name`, a probability, else `BadLineError` naming it."""
    if name not in entry:
        raise BadLineError(f'no "{name}" field')
    return probability(entry[name], f'"{name}"')


def probability(value: Any, what: str) -> float:
    """`value` as a probability (a number from 0 to 1), else `BadLineError` naming `what`."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadLineError(f"{what} is {describe(value)}, not a number")
    if not 0.0 <= value <= 1.0:  # NaN fails this too
        raise BadLineError(f"{what} is {value}, not a probability from 0 to 1")
    return float(value)


def timestamp(entry: Mapping[str, Any]) -> float:
    """The line's `ts` (seconds since the epoch), which --window needs."""
    value = entry.get("ts")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        found = "no" if "ts" not in entry else f'"ts" is {describe(value)}, not a'
        raise BadLineError(f"{found} time (ts, seconds since the epoch), which --window needs")
    return float(value)


def model_of(entry: Mapping[str, Any]) -> tuple[str, str] | None:
    """(name, version) of the model that wrote the line; None when it names none."""
    if "model" not in entry:
        return None
    name = entry["model"]
    if not isinstance(name, str):
        raise BadLineError(f'"model" is {describe(name)}, not a string')
    return name, str(entry.get("version", "?"))


def product_of(entry: Mapping[str, Any]) -> Mapping[str, Any]:
    """The product's logged fields ({} when not logged)."""
    product = entry.get("product")
    if product is not None and not isinstance(product, dict):
        raise BadLineError(f'"product" is {describe(product)}, not a JSON object')
    return product or {}


def describe(value: Any) -> str:
    """A value as a message names it: 'null', 'a string ("high")', 'a list', ..."""
    if value is None:
        return "null"
    kind = JSON_TYPES.get(type(value))
    if kind is None:
        return "a list" if isinstance(value, list) else "an object"
    return f"{kind} ({json.dumps(value)[:40]})"


def check_bad_lines(path: Path, found: LogLines) -> None:
    """Warn about the skipped lines (one line: how many, the first and what is wrong there), or
    `DataError` when they are more than MAX_BAD_LINE_SHARE of the log's lines."""
    bad, cut = found.bad, found.cut
    total = len(found.predictions) + len(found.older) + len(bad)
    good = total - len(bad)
    if bad and (not good or len(bad) > MAX_BAD_LINE_SHARE * total):
        number, reason = bad[0]
        raise DataError(
            f"{path}, line {number}: {reason} ({len(bad)} of {total} lines are not predictions); "
            f"{LINE_SHAPE}: check --prediction-log"
        )
    skipped = bad + ([cut] if cut else [])
    if skipped:
        number, reason = skipped[0]
        log.warning(
            "%s: skipped %d of %d lines (not predictions); the first, line %d: %s",
            path, len(skipped), total + (1 if cut else 0), number, reason,
        )  # fmt: skip


def check_window(path: Path, window: Window, found: LogLines) -> None:
    """Say how many lines --window left out; `DataError` when it left out every one."""
    older = found.older
    if not older:
        return
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(max(older)))
    if not found.predictions:
        raise DataError(
            f"{path}: no line of this prediction log is within --window {window} (the newest "
            f"was logged at {when}); widen --window, or leave it out to read the whole log"
        )
    log.info("%s: %s older than --window %s left out", path, lines(len(older)), window)


def lines(count: int) -> str:
    """'1 line', '2 lines'."""
    return f"{count} line" if count == 1 else f"{count} lines"
