"""`product-monitor`'s command line: the parser, its value types, and what product-train's config
fills in (the retraining CronJob shares that config with the training run)."""

from __future__ import annotations

import argparse
import re
import urllib.parse
from pathlib import Path
from typing import NoReturn

from training.catalog import bundled_sample
from training.config_files import make_config, read_config_file
from training.drift_log_lines import Window

PROG = "product-monitor"
DEFAULT_SELECTOR = 'job="product-classifier"'
PROMQL_DURATION = re.compile(r"(?:\d+(?:ms|s|m|h|d|w|y))+")
PROMQL_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
PROMQL_UNIT_SECONDS["y"] = 365 * PROMQL_UNIT_SECONDS["d"]  # Prometheus' year
DEFAULT_WINDOW = Window("6h", 6 * 3600)


class OneLineParser(argparse.ArgumentParser):
    """Bad options are one line on stderr and exit 2, like every other failure here."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def promql_duration(text: str) -> Window:
    """--window: a PromQL range such as 30m, 6h, 1d or 1h30m."""
    value = text.strip()
    if not PROMQL_DURATION.fullmatch(value) or not any(int(n) for n in re.findall(r"\d+", value)):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a PromQL duration; give e.g. 30m, 6h, 1d or 1h30m"
        )
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w|y)", value)
    return Window(value, sum(int(n) * PROMQL_UNIT_SECONDS[unit] for n, unit in parts))


def http_url(text: str) -> str:
    """--prometheus: an http:// or https:// URL with a host (a bare `host:port` would be read as
    a URL of the scheme `host`, and fail later as if Prometheus were unreachable)."""
    parts = urllib.parse.urlsplit(text.strip())
    try:
        valid = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # a port that is not a number
        valid = False
    if not valid:
        example = f"http://{text.strip()}" if "://" not in text else "http://prometheus:9090"
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an http:// or https:// URL of Prometheus; give e.g. {example}"
        )
    return text.strip()


def positive_seconds(text: str) -> float:
    """--tracking-timeout-seconds: a finite number above 0."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not seconds > 0 or seconds == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return seconds


def build_parser() -> argparse.ArgumentParser:
    """Both commands, `report` and `should-retrain`, with their options."""
    parser = OneLineParser(
        prog=PROG,
        description="Compare live predictions with the champion's reference profile.",
        epilog="Exit codes: 0 report written / retrain, 1 keep the champion, 2 bad option, "
        "3 unreadable catalog or log (or no live predictions to compare, or a --model-name the "
        "store does not hold), "
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
    """The registry, MLflow and live-side options both commands take."""
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
    source.add_argument(
        "--prometheus",
        type=http_url,
        metavar="URL",
        help="Prometheus base URL (http:// or https://)",
    )
    source.add_argument(
        "--prediction-log",
        type=Path,
        metavar="FILE",
        help="the JSON lines the servers append with PREDICTION_LOG=FILE (only the champion's "
        "lines count; instead of --prometheus)",
    )
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
        metavar="DURATION",
        help="live traffic of the last DURATION, a PromQL range: 30m, 6h, 1d, 1h30m (default: "
        f"{DEFAULT_WINDOW} with --prometheus; the whole log with --prediction-log, whose lines "
        "it otherwise selects by their time)",
    )


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, with --window's default for Prometheus (a prediction log is read whole
    unless --window is given)."""
    args = build_parser().parse_args(argv)
    if args.window is None and args.prometheus is not None:
        args.window = DEFAULT_WINDOW
    return args


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
