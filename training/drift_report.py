"""Live traffic against the champion's reference profile: the drift report and the retraining
decision behind `product-monitor`.

The live profile is read from Prometheus (what every serving pod exported over a time window:
predicted labels, confidence and out-of-vocabulary histograms, missing fields) or from a
prediction log, in the same shape as the reference, so both go through the same distances
(`product_model.profile`) and the same picture (`training.profile.plot_profiles`).
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from product_model.profile import (
    CONFIDENCE_EDGES,
    OOV_EDGES,
    build_profile,
    jensen_shannon_distance,
    population_stability_index,
)
from training.errors import ConfigError, DataError, TrackingError

# (warning, critical) per kind; why these levels: README, "Model monitoring".
LEVELS: dict[str, tuple[float, float]] = {
    "label": (0.2, 0.3),
    "confidence": (0.1, 0.25),
    "oov": (0.1, 0.25),
}
MIN_PRODUCTS = 500
"""Fewer live products than this and the scores are sampling noise: no drift verdict."""


class SourceError(TrackingError):
    """Prometheus (or the prediction log) cannot be read."""


@dataclass(frozen=True)
class Comparison:
    scores: dict[str, float]
    products: int

    def level(self) -> str:
        """ "critical", "warning", "ok", or "unknown" (too few products to tell)."""
        if self.products < MIN_PRODUCTS:
            return "unknown"
        if any(self.scores.get(k, 0.0) >= LEVELS[k][1] for k in LEVELS):
            return "critical"
        if any(self.scores.get(k, 0.0) >= LEVELS[k][0] for k in LEVELS):
            return "warning"
        return "ok"


def compare(live: Mapping[str, Any], reference: Mapping[str, Any]) -> Comparison:
    scores = {
        "label": jensen_shannon_distance(live["labels"], reference["labels"]),
        "confidence": population_stability_index(
            live["confidence"]["shares"], reference["confidence"]["shares"]
        ),
    }
    if live.get("oov") and sum(live["oov"]["shares"]) > 0:
        scores["oov"] = population_stability_index(
            live["oov"]["shares"], reference["oov"]["shares"]
        )
    return Comparison(scores, int(live["rows"]))


# -- Prometheus -------------------------------------------------------------------------------


class Prometheus:
    """Plain-HTTP queries of Prometheus' API (`/api/v1/query`)."""

    def __init__(self, url: str, selector: str, window: str) -> None:
        self.url, self.selector, self.window = url.rstrip("/"), selector, window

    def query(self, expr: str) -> list[dict[str, Any]]:
        address = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            with urllib.request.urlopen(address, timeout=30) as response:
                answer = json.loads(response.read())
        except (urllib.error.URLError, OSError, ValueError) as error:
            raise SourceError(
                f"Prometheus at {self.url} did not answer {expr!r}: {error}; check --prometheus"
            ) from None
        if answer.get("status") != "success":
            raise SourceError(f"Prometheus refused {expr!r}: {answer.get('error')}")
        return list(answer["data"]["result"])

    def increase_by(self, series: str, by: str) -> dict[str, float]:
        expr = f"sum by ({by}) (increase({series}{{{self.selector}}}[{self.window}]))"
        return {r["metric"].get(by, ""): float(r["value"][1]) for r in self.query(expr)}

    def live_profile(self) -> dict[str, Any]:
        """What the servers saw over the window, shaped like a reference profile."""
        confidence = self.increase_by("prediction_confidence_bucket", "le")
        total = confidence.get("+Inf", 0.0)
        missing = self.increase_by("prediction_input_missing_total", "field")
        labels = self.increase_by("predictions_total", "label")
        return {
            "rows": round(total),
            "labels": {k: v / total for k, v in labels.items() if v > 0} if total else {},
            "confidence": shares_from_buckets(confidence, CONFIDENCE_EDGES),
            "oov": shares_from_buckets(
                self.increase_by("prediction_oov_share_bucket", "le"), OOV_EDGES
            ),
            "fill_rate": {k: 1 - v / total for k, v in missing.items()} if total else {},
        }

    def server_scores(self) -> dict[str, float]:
        """The serving pods' own window scores now (the largest over pods), by kind."""
        expr = f"max by (kind) (prediction_drift_score{{{self.selector}}})"
        return {r["metric"]["kind"]: float(r["value"][1]) for r in self.query(expr)}


def shares_from_buckets(cumulative: Mapping[str, float], edges: Iterable[float]) -> dict[str, Any]:
    """Per-bin shares for `edges` from cumulative Prometheus buckets keyed by `le`; every upper
    edge must be one of the buckets' bounds."""
    by_bound = {float(le): count for le, count in cumulative.items()}
    total = by_bound.get(float("inf"), 0.0)
    bounds = list(edges)
    shares, below = [], 0.0
    for upper in bounds[1:]:
        at = by_bound.get(upper, below)
        shares.append((at - below) / total if total else 0.0)
        below = at
    return {"edges": bounds, "shares": shares, "mean": None}


# -- prediction log ---------------------------------------------------------------------------


def log_profile(path: Path, fields: Iterable[str], text_fields: Iterable[str]) -> dict[str, Any]:
    """The live profile of a prediction log (JSON lines of `serving.prediction_log`); fill
    rates only if it logged product fields, and no out-of-vocabulary shares."""
    try:
        lines = path.read_text("utf-8").splitlines()
    except OSError as error:
        raise DataError(
            f"{path}: cannot read the prediction log ({error.strerror}); check --prediction-log"
        ) from None
    try:
        entries = [json.loads(line) for line in lines if line.strip()]
        labels = [str(e["label"]) for e in entries]
        confidences = [float(e["confidence"]) for e in entries]
        products = [e.get("product") or {} for e in entries]
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise DataError(
            f"{path}: not a prediction log of JSON lines with label and confidence ({error!r})"
        ) from None
    logged_fields = list(fields) if any(products) else []
    profile = build_profile(products, labels, confidences, [], logged_fields, list(text_fields))
    profile["oov"] = None
    return profile


# -- the report's files -----------------------------------------------------------------------


def write_report_files(
    folder: Path, report: Mapping[str, Any], profiles: Mapping[str, Any], title: str
) -> list[Path]:
    """Write `drift_report.json` and `drift_report.png` into `folder`, both or neither: each is
    written under a hidden partial name and renamed into place only once both are complete; a
    failure removes the partial files, and the folder if this call created it."""
    from training.profile import plot_profiles

    created = _make_folder(folder)
    final = [folder / "drift_report.json", folder / "drift_report.png"]
    partial = [path.with_name(f".{path.stem}.partial-{os.getpid()}{path.suffix}") for path in final]
    try:
        partial[0].write_text(json.dumps(report, indent=1), encoding="utf-8")
        plot_profiles(profiles, partial[1], title)
        for done in (1, 0):  # the JSON last: when it is there, its picture is too
            partial[done].replace(final[done])
    except BaseException as error:
        for path in partial:
            path.unlink(missing_ok=True)
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        if isinstance(error, OSError):
            raise ConfigError(f"--out {folder}: cannot write the report ({error})") from None
        raise
    return final


def check_report_folder(folder: Path) -> None:
    """`folder` can hold the report: a folder, or nothing yet under a folder."""
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        raise ConfigError(
            f"--out {folder}: {existing} is a file; the report is a folder (drift_report.json "
            "and .png): give a new or existing folder"
        )


def _make_folder(folder: Path) -> Path | None:
    """Create `folder` (and missing parents); returns the topmost folder created, if any."""
    check_report_folder(folder)
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(
            f"--out {folder}: cannot create the folder ({error.strerror}); give a writable folder"
        ) from None
    return missing[-1] if missing else None
