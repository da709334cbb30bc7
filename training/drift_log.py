"""The live profile of a prediction log (`serving.prediction_log`'s JSON lines) for
`product-monitor`: the judged model's lines only, each product's most probable class as the
reference counts it. The lines are read and checked in `drift_log_lines`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from product_model.profile import build_profile
from training.drift_log_lines import Prediction, Window, lines, read_predictions
from training.errors import DataError

log = logging.getLogger("product-monitor")


def log_profile(
    path: Path,
    fields: Iterable[str],
    text_fields: Iterable[str],
    model: tuple[str, str] | None = None,
    window: Window | None = None,
) -> dict[str, Any]:
    """The live profile of a prediction log (JSON lines of `serving.prediction_log`); fill
    rates only if it logged product fields, and no out-of-vocabulary shares. With `model`
    (name, version), only that model's lines (see `lines_of_model`); with `window`, only the
    lines logged within it."""
    predictions = read_predictions(path, window)
    if model is not None:
        predictions = lines_of_model(path, predictions, model)
    labels = [p.label for p in predictions]
    confidences = [p.confidence for p in predictions]
    products = [p.product for p in predictions]
    logged_fields = list(fields) if any(products) else []
    profile = build_profile(products, labels, confidences, [], logged_fields, list(text_fields))
    profile["oov"] = None
    return profile


def lines_of_model(
    path: Path, predictions: list[Prediction], model: tuple[str, str]
) -> list[Prediction]:
    """The lines `model` (name, version) wrote (lines naming no model are kept: they cannot
    tell); the others are left out with a warning, and a `DataError` if none are left."""
    name, version = model

    def judged(prediction: Prediction) -> bool:
        return prediction.model is None or prediction.model == model

    others = Counter(
        f"{p.model[0]} v{p.model[1]}" for p in predictions if p.model and not judged(p)
    )
    if not others:
        return predictions
    kept = [p for p in predictions if judged(p)]
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
