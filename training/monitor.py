"""`product-monitor`: the drift report and the retraining decision.

    product-monitor report --prometheus URL          # print and draw live vs. the reference
    product-monitor should-retrain --data CATALOG    # exit 0: retrain, 1: keep the champion

The reference is the champion's own (logged with its training run); the live side comes from
Prometheus or a prediction log. Exit codes: 0 report written / retrain, 1 keep the champion,
2 bad option, 3 unreadable catalog or log (or no live predictions to compare), 4 Prometheus or
MLflow unreachable (5 refused). Every failure is one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from training.catalog import bundled_sample, file_sha256
from training.config_files import make_config, read_config_file
from training.drift_report import (
    LEVELS,
    MIN_PRODUCTS,
    Comparison,
    Prometheus,
    check_report_folder,
    compare,
    log_profile,
    write_report_files,
)
from training.errors import DataError, TrainingError
from training.logs import check_log_level, requested_level

log = logging.getLogger("product-monitor")
PROG = "product-monitor"
DEFAULT_SELECTOR = 'job="product-classifier"'
PROMQL_DURATION = re.compile(r"(?:\d+(?:ms|s|m|h|d|w|y))+")


@dataclass(frozen=True)
class Champion:
    version: str
    run_id: str
    profile: dict[str, Any] | None
    data_sha256: str | None
    task: str = "single_label"


@dataclass(frozen=True)
class Decision:
    retrain: bool
    reason: str


def load_champion(tracking_uri: str | None, model_name: str) -> Champion | None:
    """The champion's version, reference profile and training-data hash (None: no champion)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from training import registry, tracking

    uri = tracking.resolve_tracking_uri(tracking_uri)
    client = tracking.connect(uri)
    try:
        version = registry.current_champion(client, model_name)
        if version is None:
            return None
        run = client.get_run(str(version.run_id))
        with tempfile.TemporaryDirectory() as scratch:
            try:
                path = mlflow.artifacts.download_artifacts(
                    run_id=run.info.run_id,
                    artifact_path="monitoring/reference_profile.json",
                    dst_path=scratch,
                )
                profile = json.loads(Path(path).read_text("utf-8"))
            except (MlflowException, OSError):  # trained before reference profiles existed
                profile = None
    except MlflowException as error:
        raise tracking.as_tracking_error(error, f"reading the champion of {model_name}") from None
    sha = run.data.tags.get("data.sha256")
    task = run.data.params.get("task", "single_label")  # runs before tasks were single-label
    return Champion(str(version.version), run.info.run_id, profile, sha, task)


def decide(champion: Champion | None, catalog_sha: str, drift: Comparison | None) -> Decision:
    """Retrain when there is something new to learn and live traffic has moved (or cannot tell)."""
    if champion is None:
        return Decision(True, "no champion yet")
    level = drift.level() if drift is not None else "unknown"
    if champion.data_sha256 == catalog_sha:
        advice = " add recent products to the catalog" if level in ("warning", "critical") else ""
        return Decision(
            False,
            f"the catalog is champion v{champion.version}'s training data "
            f"(sha256 {catalog_sha[:12]}); retraining would reproduce it; drift is {level}"
            + (f":{advice}" if advice else ""),
        )
    if level == "ok":
        return Decision(
            False,
            f"the catalog changed, but live traffic still matches champion v{champion.version}'s "
            "reference (drift below the warning level); --always trains anyway",
        )
    why = "no drift verdict (too little live traffic)" if level == "unknown" else f"drift {level}"
    return Decision(True, f"the catalog changed and {why}")


def live_profile(args: argparse.Namespace, champion: Champion) -> dict[str, Any] | None:
    """The live side, from the prediction log or Prometheus (None: neither given)."""
    if args.prediction_log is not None:
        reference = champion.profile or {}
        fields = list(reference.get("fill_rate", {}))
        live = log_profile(args.prediction_log, fields, list(reference.get("text_length", {})))
        if not live["rows"]:  # explicitly given and empty: a wrong file or logging was off
            raise DataError(
                f"{args.prediction_log}: no predictions in this prediction log, nothing to compare "
                "with the reference; give the file the servers append to (PREDICTION_LOG)"
                + ("" if args.command == "report" else ", or leave it out to decide on the catalog")
            )
        return live
    if args.prometheus is not None:
        return Prometheus(args.prometheus, args.selector, args.window).live_profile(champion.task)
    return None


def no_traffic(args: argparse.Namespace) -> str:
    return (
        f"Prometheus at {args.prometheus} has no predictions of {{{args.selector}}} over the last "
        f"{args.window}; widen --window or check --selector"
    )


def format_report(champion: Champion, drift: Comparison, server: dict[str, float]) -> str:
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


# -- command line ---------------------------------------------------------------------------


class OneLineParser(argparse.ArgumentParser):
    """Bad options are one line on stderr and exit 2, like every other failure here."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def promql_duration(text: str) -> str:
    """--window: a PromQL range such as 30m, 6h, 1d or 1h30m."""
    value = text.strip()
    if not PROMQL_DURATION.fullmatch(value) or not any(int(n) for n in re.findall(r"\d+", value)):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a PromQL duration; give e.g. 30m, 6h, 1d or 1h30m"
        )
    return value


def positive_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not seconds > 0 or seconds == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return seconds


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG,
        description="Compare live predictions with the champion's reference profile.",
        epilog="Exit codes: 0 report written / retrain, 1 keep the champion, 2 bad option, "
        "3 unreadable catalog or log (or no live predictions to compare), "
        "4 Prometheus or MLflow unreachable, 5 MLflow refused.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    report = commands.add_parser("report", help="print and draw live vs. reference")
    retrain = commands.add_parser("should-retrain", help="exit 0 if a retraining is due, else 1")
    for command in (report, retrain):
        add_common_options(command, required_source=command is report)
    report.add_argument(
        "--out", type=Path, default=Path("drift-report"), help="folder (default: drift-report)"
    )
    retrain.add_argument(
        "--config", type=Path, help="product-train's config file: data, model name, MLflow"
    )
    retrain.add_argument("--data", type=Path, help="the catalog to train on (else the config's)")
    retrain.add_argument("--always", action="store_true", help="decide to retrain regardless")
    return parser


def add_common_options(command: argparse.ArgumentParser, required_source: bool) -> None:
    command.add_argument("--model-name", help="registered model (default: product-classifier)")
    command.add_argument("--tracking-uri", help="MLflow (default: MLFLOW_TRACKING_URI)")
    command.add_argument(
        "--tracking-timeout-seconds",
        type=positive_seconds,
        metavar="SECONDS",
        help="how long each MLflow call retries an unreachable server before exit 4 "
        "(default: the config's tracking_timeout_seconds, else 60)",
    )
    source = command.add_mutually_exclusive_group(required=required_source)
    source.add_argument("--prometheus", metavar="URL", help="Prometheus base URL")
    source.add_argument("--prediction-log", type=Path, metavar="FILE")
    command.add_argument(
        "--selector",
        default=DEFAULT_SELECTOR,
        metavar="MATCHERS",
        help="PromQL label matchers of the servers, without braces, e.g. "
        'job="shop",namespace="prod" (default: %(default)s)',
    )
    command.add_argument(
        "--window",
        type=promql_duration,
        default="6h",
        metavar="DURATION",
        help="PromQL range of live traffic: 30m, 6h, 1d, 1h30m (default: %(default)s)",
    )


def with_training_config(args: argparse.Namespace) -> argparse.Namespace:
    """Fill what the command line left out from product-train's config (the CronJob shares it
    with the training run), then from product-train's defaults."""
    path = getattr(args, "config", None)
    config = make_config(read_config_file(path) if path else {}, f"config file {path}")
    args.model_name = args.model_name or config.model_name
    args.tracking_uri = args.tracking_uri or config.tracking_uri
    args.tracking_timeout_seconds = args.tracking_timeout_seconds or config.tracking_timeout_seconds
    if hasattr(args, "data"):
        args.data = args.data or (Path(config.data) if config.data else bundled_sample())
    return args


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
    if champion is None or champion.profile is None:
        what = "no champion" if champion is None else f"champion v{champion.version}"
        raise DataError(
            f"{args.model_name}: {what} with a reference profile (models from an older "
            "version of this project have none; retrain to get one)"
        )
    live = live_profile(args, champion)
    assert live is not None
    if not live["rows"]:
        raise DataError(no_traffic(args) + "; nothing to report")
    drift = compare(live, champion.profile)
    server = (
        Prometheus(args.prometheus, args.selector, args.window).server_scores()
        if (args.prometheus)
        else {}
    )
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
        log.info("%s: no drift verdict", no_traffic(args))
        return None
    drift = compare(live, champion.profile)
    scores = ", ".join(f"{k}={v:.3f}" for k, v in drift.scores.items())
    few = f" (fewer than {MIN_PRODUCTS}: no drift verdict)" if drift.level() == "unknown" else ""
    log.info("drift over %d live products%s: %s", drift.products, few, scores)
    return drift


def run_should_retrain(args: argparse.Namespace) -> int:
    if not args.data.is_file():
        raise DataError(f"{args.data}: no such catalog file (--data)")
    if args.always:
        decision = Decision(True, "--always given")
    else:
        champion = load_champion(args.tracking_uri, args.model_name)
        drift = live_drift(args, champion)
        decision = decide(champion, file_sha256(args.data), drift)
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
    args = build_parser().parse_args(argv)
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
