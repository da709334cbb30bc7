"""`product-monitor`: the drift report and the retraining decision.

    product-monitor report --prometheus URL          # print and draw live vs. the reference
    product-monitor should-retrain --data CATALOG    # exit 0: retrain, 1: keep the champion

The reference is the champion's own (logged with its training run); the live side comes from
Prometheus or a prediction log. Exit codes: 0 report written / retrain, 1 keep the champion,
2 bad option, 3 unreadable catalog or log (or no live predictions to compare, or a model name
the store does not hold), 4 Prometheus or MLflow unreachable (5 refused). Every failure is one
line on stderr, never a traceback.

The options are parsed in `monitor_options.py`; the champion is read and the retraining decided in
`retrain_decision.py`; this module wires them to the live side and writes the report.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

from training.catalog import file_sha256
from training.drift_log import log_profile
from training.drift_report import LEVELS, MIN_PRODUCTS, Comparison, Prometheus, compare
from training.errors import DataError, TrainingError
from training.logs import check_log_level, quiet_third_parties, requested_level
from training.monitor_options import PROG, parse_arguments, with_training_config
from training.report_files import check_report_folder, write_report_files
from training.retrain_decision import (
    Champion,
    Decision,
    decide,
    load_champion,
    unregistered_model,
    without_champion,
)

log = logging.getLogger("product-monitor")

FOREIGN_LABELS_LIMIT = 0.05
"""Share of live products whose label the reference never saw, beyond which the live side is
taken to hold other models' predictions: a class too rare to show up in the holdout's predictions
stays rarer than this live, while another model's traffic (its own label set) is far above it."""


def live_profile(args: argparse.Namespace, champion: Champion) -> dict[str, Any] | None:
    """The live side of the champion's own servers, from the prediction log or Prometheus (None:
    neither given)."""
    model = (args.model_name, champion.version)
    if args.prediction_log is not None:
        reference = champion.profile or {}
        fields, texts = list(reference.get("fill_rate", {})), list(reference.get("text_length", {}))
        live = log_profile(args.prediction_log, fields, texts, model, args.window)
        if not live["rows"]:  # explicitly given and empty: a wrong file or logging was off
            raise DataError(
                f"{args.prediction_log}: no predictions in this prediction log, nothing to compare "
                "with the reference; give the file the servers append to (PREDICTION_LOG)"
                + ("" if args.command == "report" else ", or leave it out to decide on the catalog")
            )
    elif args.prometheus is not None:
        live = prometheus(args, champion).live_profile(champion.task)
    else:
        return None
    check_own_labels(args, champion, live)
    return live


def prometheus(args: argparse.Namespace, champion: Champion) -> Prometheus:
    """Prometheus, asked about the servers of the champion only."""
    model = (args.model_name, champion.version)
    return Prometheus(args.prometheus, args.selector, str(args.window), model)


def check_own_labels(args: argparse.Namespace, champion: Champion, live: dict[str, Any]) -> None:
    """`DataError` when more than FOREIGN_LABELS_LIMIT of the live products carry labels the
    reference does not know: the selector (or the log) mixes in other models' predictions."""
    known = set((champion.profile or {}).get("labels", {}))
    foreign = {label: share for label, share in live["labels"].items() if label not in known}
    if not known or sum(foreign.values()) <= FOREIGN_LABELS_LIMIT:
        return
    few = ", ".join(sorted(foreign, key=foreign.__getitem__, reverse=True)[:5])
    fix = (
        f"narrow --selector ({args.selector!r}) to the servers of {args.model_name}"
        if args.prediction_log is None
        else "give the prediction log of its servers"
    )
    raise DataError(
        f"{len(foreign)} live labels ({few}{', ...' if len(foreign) > 5 else ''}; "
        f"{sum(foreign.values()):.0%} of the live products) are not among champion "
        f"v{champion.version}'s {len(known)} classes: other models' predictions are mixed in; {fix}"
    )


def no_traffic(args: argparse.Namespace, champion: Champion) -> str:
    """Why Prometheus gave no live side: the champion took no traffic yet (e.g. it was just
    swapped in; earlier versions' answers do not count), or which option to change."""
    served = prometheus(args, champion).models_served()
    judged = f"{args.model_name} v{champion.version}"
    if judged in served:  # e.g. just swapped in: the previous version answered until then
        others = [model for model in served if model != judged]
        not_counted = (
            f"; the answers of {', '.join(others[:5])} in that time are not the champion's and "
            "do not count"
        )
        return (
            f"champion {judged} has answered no predictions yet on the servers "
            f"{{{args.selector}}} that serve it, over the last {args.window}"
            + (not_counted if others else "")
            + "; run again once it has had traffic"
        )
    return (
        f"Prometheus at {args.prometheus} has no predictions of {judged} "
        f"by {{{args.selector}}} over the last {args.window}"
        + (f" (those servers served {', '.join(served[:5])})" if served else "")
        + "; widen --window or check --selector"
    )


def format_report(champion: Champion, drift: Comparison, server: dict[str, float]) -> str:
    """The printed table: each drift score against its levels and the servers' own score."""
    lines = [
        f"champion v{champion.version} (run {champion.run_id}); {drift.products} live products",
        f"{'kind':<12}{'live vs ref':>12}{'warning':>9}{'critical':>9}{'servers now':>13}",
    ]
    for kind, (warning, critical) in LEVELS.items():
        score = drift.scores.get(kind)
        shown = f"{score:.3f}" if score is not None else "-"
        now = f"{server[kind]:.3f}" if kind in server else "-"
        lines.append(f"{kind:<12}{shown:>12}{warning:>9}{critical:>9}{now:>13}")
    if "oov" not in drift.scores:
        lines.append("oov: not scored, the live data has no out-of-vocabulary shares")
    few = f" (fewer than {MIN_PRODUCTS} live products: too few to tell)"
    lines.append(f"level: {drift.level()}" + (few if drift.level() == "unknown" else ""))
    return "\n".join(lines)


def write_report(
    folder: Path, champion: Champion, live: dict[str, Any], drift: Comparison, server: Any
) -> list[Path]:
    """drift_report.json and .png in `folder`, both or neither."""
    report = {
        "champion_version": champion.version,
        "run_id": champion.run_id,
        "level": drift.level(),
        "scores": drift.scores,
        "levels": LEVELS,
        "server_scores": server,
        "live": live,
        "reference": champion.profile,
    }
    assert champion.profile is not None
    profiles = {"reference (holdout)": champion.profile, "live": live}
    title = f"Champion v{champion.version}: live vs. reference"
    return write_report_files(folder, report, profiles, title)


class FirstRetryOnly(logging.Filter):
    """urllib3's retry warnings (one long line per try) as one short line at the first retry."""

    def __init__(self, timeout_seconds: float) -> None:
        super().__init__()
        self.timeout_seconds, self.seen = timeout_seconds, False

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith("Retrying"):
            return True
        if self.seen:
            return False
        self.seen = True
        record.msg = "no answer; retrying for up to %gs (--tracking-timeout-seconds)"
        record.args = (self.timeout_seconds,)
        return True


def bound_mlflow_retries(timeout_seconds: float) -> None:
    """Every MLflow request retries an unreachable server for at most about `timeout_seconds` (as
    product-train's), unless the environment sets MLflow's own retry variables."""
    from training.tracking import bound_retries

    bound_retries(timeout_seconds)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    pool = logging.getLogger("urllib3.connectionpool")
    for earlier in [f for f in pool.filters if isinstance(f, FirstRetryOnly)]:
        pool.removeFilter(earlier)
    pool.addFilter(FirstRetryOnly(timeout_seconds))


def run_report(args: argparse.Namespace) -> int:
    check_report_folder(args.out)  # before the slow part
    champion = load_champion(args.tracking_uri, args.model_name)
    unknown = unregistered_model(args.tracking_uri, args.model_name) if champion is None else None
    if unknown:
        raise DataError(unknown)
    if champion is None:
        raise DataError(
            f"{args.model_name}: no version has the champion alias, so there is no reference to "
            "compare with; train one that passes the gate (or use product-train --force-promote)"
        )
    if champion.profile is None:
        raise DataError(
            f"{args.model_name}: champion v{champion.version} has no reference profile (models "
            "from an older version of this project have none; retrain to get one)"
        )
    live = live_profile(args, champion)
    assert live is not None
    if not live["rows"]:
        raise DataError(no_traffic(args, champion) + "; nothing to report")
    drift = compare(live, champion.profile)
    server = prometheus(args, champion).server_scores() if args.prometheus else {}
    print(format_report(champion, drift, server))
    for path in write_report(args.out, champion, live, drift, server):
        print(f"wrote {path}")
    return 0


def live_drift(args: argparse.Namespace, champion: Champion | None) -> Comparison | None:
    """Live traffic against the champion's reference; None when there is nothing to compare."""
    if champion is None or champion.profile is None:
        return None
    live = live_profile(args, champion)
    if live is None:
        return None
    if not live["rows"]:
        log.info("%s: no drift verdict", no_traffic(args, champion))
        return None
    drift = compare(live, champion.profile)
    scores = ", ".join(f"{k}={v:.3f}" for k, v in drift.scores.items())
    few = f" (fewer than {MIN_PRODUCTS}: no drift verdict)" if drift.level() == "unknown" else ""
    log.info("drift over %d live products%s: %s", drift.products, few, scores)
    return drift


def run_should_retrain(args: argparse.Namespace) -> int:
    if args.data.is_dir():
        raise DataError(f"{args.data} is a folder, not a catalog file (--data): give one file")
    if not args.data.is_file():
        raise DataError(f"{args.data}: no such catalog file (--data)")
    if args.always:
        decision = Decision(True, "--always given")
    else:
        champion = load_champion(args.tracking_uri, args.model_name)
        if champion is None:  # the first training, or a misspelt model name
            decision = without_champion(args.tracking_uri, args.model_name)
        else:
            decision = decide(champion, file_sha256(args.data), live_drift(args, champion))
    verdict = "retrain" if decision.retrain else "keep the champion"
    log.info("decision: %s: %s", verdict, decision.reason)
    return 0 if decision.retrain else 1


def main(argv: list[str] | None = None) -> None:
    try:
        check_log_level()
    except TrainingError as error:
        fail(str(error), error.exit_code)
    level = requested_level(quiet=False)
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(message)s")
    quiet_third_parties(level)  # e.g. matplotlib's line per chart of labels that look like numbers
    args = parse_arguments(argv)
    command = run_report if args.command == "report" else run_should_retrain
    try:
        args = with_training_config(args)
        if not getattr(args, "always", False):  # `should-retrain --always` reads no champion
            from training.tracking_uri import check_store_exists

            check_store_exists(args.tracking_uri)
        bound_mlflow_retries(args.tracking_timeout_seconds)
        sys.exit(command(args))
    except TrainingError as error:
        fail(str(error), error.exit_code)
    except Exception as error:  # a bug or an environment fault: one line, details at debug
        log.debug("unexpected error", exc_info=True)
        first = (str(error).strip().splitlines() or [""])[0][:500]
        fail(f"{type(error).__name__}: {first} (LOG_LEVEL=DEBUG shows the traceback)", 1)


def fail(message: str, code: int) -> NoReturn:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    sys.exit(code)


if __name__ == "__main__":
    main()
