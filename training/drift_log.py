"""The live profile of a prediction log (`serving.prediction_log`'s JSON lines) for
`product-monitor`: the judged model's lines only, each product's most probable class as the
reference counts it.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from product_model.profile import build_profile
from training.errors import DataError

log = logging.getLogger("product-monitor")


def log_profile(
    path: Path,
    fields: Iterable[str],
    text_fields: Iterable[str],
    model: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """The live profile of a prediction log (JSON lines of `serving.prediction_log`); fill
    rates only if it logged product fields, and no out-of-vocabulary shares. With `model`
    (name, version), only that model's lines (see `lines_of_model`)."""
    try:
        lines = path.read_text("utf-8").splitlines()
    except OSError as error:
        raise DataError(
            f"{path}: cannot read the prediction log ({error.strerror}); check --prediction-log"
        ) from None
    try:
        entries = [json.loads(line) for line in lines if line.strip()]
        if model is not None:
            entries = lines_of_model(path, entries, model)
        answers = [most_probable(entry) for entry in entries]
        labels, confidences = [a[0] for a in answers], [a[1] for a in answers]
        products = [e.get("product") or {} for e in entries]
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as error:
        raise DataError(
            f"{path}: not a prediction log of JSON lines with label and confidence ({error!r})"
        ) from None
    logged_fields = list(fields) if any(products) else []
    profile = build_profile(products, labels, confidences, [], logged_fields, list(text_fields))
    profile["oov"] = None
    return profile


def lines_of_model(
    path: Path, entries: list[dict[str, Any]], model: tuple[str, str]
) -> list[dict[str, Any]]:
    """The lines `model` (name, version) wrote (lines naming no model are kept: they cannot
    tell); the others are left out with a warning, and a `DataError` if none are left."""
    name, version = model

    def judged(entry: Mapping[str, Any]) -> bool:
        return "model" not in entry or (entry["model"], str(entry.get("version"))) == model

    others = Counter(f"{e['model']} v{e.get('version', '?')}" for e in entries if not judged(e))
    if not others:
        return entries
    kept = [e for e in entries if judged(e)]
    named = ", ".join(f"{what}: {lines(count)}" for what, count in others.most_common(5))
    if not kept:
        raise DataError(
            f"{path}: every line of this prediction log is another model's: {named}; champion "
            f"v{version} of {name} is judged: give the log of the servers that serve it, or "
            "--model-name of the model that wrote this log"
        )
    log.warning(
        "%s: %s of other models left out (%s); %s of %s v%s compared",
        path, lines(sum(others.values())), named, lines(len(kept)), name, version,
    )  # fmt: skip
    return kept


def most_probable(entry: Mapping[str, Any]) -> tuple[str, float]:
    """A logged product's most probable class and its probability, as the reference counts: the
    first of its `top_k` (a path model logs the whole path as `label` with its deepest level's
    probability); `label` and `confidence` when no top-k was logged."""
    top = entry.get("top_k")
    if top:
        return str(top[0][0]), float(top[0][1])
    return str(entry["label"]), float(entry["confidence"])


def lines(count: int) -> str:
    """'1 line', '2 lines'."""
    return f"{count} line" if count == 1 else f"{count} lines"
