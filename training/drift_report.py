"""Live traffic against the champion's reference profile: the drift report and the retraining
decision behind `product-monitor`.

The live profile is read from Prometheus (what every serving pod exported over a time window:
predicted labels, confidence and out-of-vocabulary histograms, missing fields) or from a
prediction log (`training.drift_log`), in the same shape as the reference, so both go through the
same distances (`product_model.profile`) and the same picture (`training.profile.plot_profiles`,
written by `training.report_files`).
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from product_model.profile import (
    CONFIDENCE_EDGES,
    OOV_EDGES,
    jensen_shannon_distance,
    population_stability_index,
)
from training.errors import ConfigError, DataError, TrackingError

log = logging.getLogger(__name__)

SELECTOR_EXAMPLE = 'job="product-classifier" or job="shop",namespace="prod"'

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

    def __init__(
        self, url: str, selector: str, window: str, model: tuple[str, str] | None = None
    ) -> None:
        """`model` (name, version): only its own series count, those of its version on the
        servers that served it (None: every series the selector matches)."""
        self.url, self.selector, self.window = url.rstrip("/"), selector, window
        self.model = model

    def series(self, name: str, version: str | None = None) -> str:
        """`name` with the selector's matchers and the judged model's `version` label (or the
        given one: "" matches series without that label): a server's prediction series carry
        the version that answered, so the previous one's answers before a swap are left out."""
        selector = self.selector.strip().rstrip(",")  # `job="x",` is valid PromQL alone
        matchers = [selector] if selector else []
        if version is None and self.model is not None:
            version = self.model[1]
        if version is not None:
            matchers.append(f"version={json.dumps(version, ensure_ascii=False)}")
        return f"{name}{{{','.join(matchers)}}}"

    def of_model(self, expr: str, window: str | None) -> str:
        """`expr` restricted to the servers (job, instance) whose `model_info` names the judged
        model, over `window` (None: now): the series name no model, only its version, and a
        selector may match servers of other models."""
        if self.model is None:
            return expr
        name, version = (json.dumps(value, ensure_ascii=False) for value in self.model)
        info = f"model_info{{name={name},version={version}}}"
        served = f"max_over_time({info}[{window}])" if window else info
        return f"({expr}) and on (job, instance) ({served} > 0)"

    def query(self, expr: str) -> list[dict[str, Any]]:
        address = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            with urllib.request.urlopen(address, timeout=30) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as error:
            answer = prometheus_error(error)
            if answer is None:
                raise SourceError(
                    f"{self.url} answered {expr!r} with HTTP {error.code}, not as Prometheus' "
                    "query API does; check --prometheus"
                ) from None
        except (urllib.error.URLError, OSError, ValueError) as error:
            raise SourceError(
                f"Prometheus at {self.url} did not answer {expr!r}: {error}; check --prometheus"
            ) from None
        if answer.get("status") != "success":
            self.refused(expr, answer)
        return list(answer["data"]["result"])

    def refused(self, expr: str, answer: Mapping[str, Any]) -> None:
        """Raise what Prometheus said: a query it cannot parse is a bad --selector (--window is
        checked before), anything else a Prometheus failure."""
        said = answer.get("error") or "no reason given"
        if answer.get("errorType") == "bad_data":
            raise ConfigError(
                f"--selector {self.selector!r} is not valid PromQL label matchers: Prometheus says "
                f"{said} (in {expr!r}); give matchers without braces, e.g. {SELECTOR_EXAMPLE}"
            )
        raise SourceError(f"Prometheus at {self.url} refused {expr!r}: {said}")

    def increase_by(self, series: str, by: str, version: str | None = None) -> dict[str, float]:
        """The judged model's increase of `series` over the window, summed by the label `by`."""
        increase = f"increase({self.series(series, version)}[{self.window}])"
        expr = f"sum by ({by}) ({self.of_model(increase, self.window)})"
        return {r["metric"].get(by, ""): float(r["value"][1]) for r in self.query(expr)}

    def live_profile(self, task: str = "single_label") -> dict[str, Any]:
        """What the servers saw over the window, shaped like a reference profile: each product's
        most probable class and its probability, as the reference counts and bins them: the drift
        window's `prediction_top_class_total` and `prediction_top_probability` (summed over a
        server's workers). Not `predictions_total`, which counts every tag or path node a
        multilabel or path model answers, nor `prediction_confidence`, whose `le` buckets put a
        probability on a bin's edge (a forest's 0.9) in the bin below, not above."""
        labels = self.increase_by("prediction_top_class_total", "label")
        confidence = self.increase_by("prediction_top_probability_bucket", "le")
        if not confidence and any(self.increase_by("prediction_confidence_count", "job").values()):
            if task != "single_label":
                raise DataError(old_servers(task))
            log.warning(old_servers(task))
            labels = self.increase_by("predictions_total", "label")
            confidence = self.increase_by("prediction_confidence_bucket", "le")
        total = confidence.get("+Inf", 0.0)
        unversioned = self.unversioned_traffic() if self.model is not None else 0.0
        if unversioned and not total:
            raise DataError(unversioned_servers())
        if unversioned:  # e.g. during a rolling upgrade of the servers
            log.warning(
                "about %d predictions of servers whose series carry no version label (older "
                "than this product-monitor) are left out: whose they are cannot be told",
                round(unversioned),
            )
        missing = self.increase_by("prediction_input_missing_total", "field")
        return {
            "rows": round(total),
            "labels": {k: v / total for k, v in labels.items() if v > 0} if total else {},
            "confidence": shares_from_buckets(confidence, CONFIDENCE_EDGES),
            "oov": shares_from_buckets(
                self.increase_by("prediction_oov_share_bucket", "le"), OOV_EDGES
            ),
            "fill_rate": {k: 1 - v / total for k, v in missing.items()} if total else {},
        }

    def unversioned_traffic(self) -> float:
        """How many predictions the judged model's servers made over the window with series that
        carry no version (servers older than this product-monitor)."""
        return sum(self.increase_by("prediction_confidence_count", "job", version="").values())

    def server_scores(self) -> dict[str, float]:
        """The serving pods' own window scores now (the largest over pods), by kind: the judged
        version's only (a pod that has not answered with it yet has none)."""
        scores = self.of_model(self.series("prediction_drift_score"), None)
        return {
            r["metric"]["kind"]: float(r["value"][1])
            for r in self.query(f"max by (kind) ({scores})")
        }

    def models_served(self) -> list[str]:
        """The models ("name vVERSION") the selector's servers served over the window."""
        info = f"max_over_time(model_info{{{self.selector}}}[{self.window}]) > 0"
        found = self.query(f"count by (name, version) ({info})")
        return sorted(
            f"{r['metric'].get('name', '?')} v{r['metric'].get('version', '?')}" for r in found
        )


def old_servers(task: str) -> str:
    if task == "single_label":
        return (
            "the servers export no prediction_top_probability (older than this product-monitor): "
            "the confidence score reads prediction_confidence instead, whose buckets put a "
            "probability on a bin's edge in the bin below, so it may read drift that is not "
            "there; update the servers, or give --prediction-log"
        )
    what = "every tag" if task == "multilabel" else "every node of a path"
    return (
        f"the servers predicted, but export no prediction_top_probability (older than this "
        f"product-monitor): for a {task} model predictions_total counts {what}, not one class per "
        "product as the reference does; update the servers, or give --prediction-log"
    )


def unversioned_servers() -> str:
    return (
        "the servers predicted, but their prediction series carry no version label (older than "
        "this product-monitor), so the champion's own answers cannot be told from an earlier "
        "version's; update the servers, or give --prediction-log"
    )


def prometheus_error(error: urllib.error.HTTPError) -> dict[str, Any] | None:
    """The JSON body of Prometheus' error answer (None if the answer is not Prometheus')."""
    try:
        body = json.loads(error.read())
    except (OSError, ValueError):
        return None
    return body if isinstance(body, dict) and body.get("status") == "error" else None


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
