"""`product-train` / `python -m training`: parse options, run one training, print a summary.

Every field of `TrainConfig` is an option (`n_estimators` → `--n-estimators`); `--config FILE`
supplies defaults that options on the command line override.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal, NoReturn

from training.config import TrainConfig, make_config, read_config_file
from training.errors import TrainingError

EXIT_INTERRUPTED = 130


def _option_type(annotation: Any) -> tuple[dict[str, Any], bool]:
    """argparse keyword arguments for a field's type, and whether it is a list."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        return _option_type(args[0])
    if origin is Literal:
        return {"choices": list(typing.get_args(annotation))}, False
    if origin is list:
        return {"metavar": "A,B,..."}, True
    if annotation is bool:
        return {"action": argparse.BooleanOptionalAction}, False
    return {"type": annotation if annotation in (int, float) else str}, False


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="product-train",
        description="Train a product classifier on a catalog, log it to MLflow, register it, "
        "and promote it to champion if it beats the current one.",
        epilog="Exit codes: 0 success, 2 bad option or config, 3 unreadable or unusable data, "
        "4 MLflow unreachable, 5 MLflow refused a request, 130 interrupted.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--config",
        type=Path,
        help="YAML, JSON or TOML file of options "
        "(keys as below with underscores); command-line options override it",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and the summary")
    for name, info in TrainConfig.model_fields.items():
        kwargs, _ = _option_type(info.annotation)
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            dest=name,
            default=argparse.SUPPRESS,
            help=f"{info.description} (default: {info.default!r})",
            **kwargs,
        )
    return parser


def parse_config(argv: list[str] | None = None) -> tuple[TrainConfig, argparse.Namespace]:
    args = build_parser().parse_args(argv)
    values: dict[str, Any] = read_config_file(args.config) if args.config else {}
    for name, info in TrainConfig.model_fields.items():
        if name in vars(args):
            value = getattr(args, name)
            if _option_type(info.annotation)[1]:
                value = [item.strip() for item in value.split(",") if item.strip()]
            values[name] = value
    return make_config(values, "options" if not args.config else f"options ({args.config})"), args


def _interrupt(signum: int, _frame: Any) -> NoReturn:
    raise KeyboardInterrupt(f"signal {signum}")


def print_summary(result: Any) -> None:
    metrics = result.metrics
    lines = [
        "training summary",
        f"  run id:          {result.run_id}",
        f"  model:           {result.model_uri}",
        f"  version:         {result.model_version}",
        f"  accuracy:        {metrics['accuracy']:.4f}",
        f"  macro-F1:        {metrics['f1_macro']:.4f}",
        f"  weighted-F1:     {metrics['f1_weighted']:.4f}",
        f"  ROC-AUC (OvR):   {metrics['roc_auc_ovr_macro']:.4f}",
        f"  champion F1:     {'-' if result.champion_f1 is None else f'{result.champion_f1:.4f}'}",
        f"  promoted:        {'yes' if result.promoted else 'no'} ({result.decision})",
    ]
    print("\n".join(lines), flush=True)


def main(argv: list[str] | None = None) -> None:
    try:
        config, args = parse_config(argv)
    except TrainingError as error:
        print(f"product-train: error: {error}", file=sys.stderr)
        sys.exit(error.exit_code)
    level = os.environ.get("LOG_LEVEL", "WARNING" if args.quiet else "INFO").upper()
    logging.basicConfig(
        level=level if level in logging.getLevelNamesMapping() else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
    )
    signal.signal(signal.SIGTERM, _interrupt)
    from training.tracking import retry_settings

    # Every MLflow request of the run retries an unreachable server for the configured time.
    for name, value in retry_settings(config.tracking_timeout_seconds).items():
        os.environ.setdefault(name, value)
    from training.run import train  # heavy imports only after the options are known good

    try:
        result = train(config)
    except TrainingError as error:
        print(f"product-train: error: {error}", file=sys.stderr)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        print(
            "product-train: interrupted; no alias was moved (a run it started is marked FAILED)",
            file=sys.stderr,
        )
        sys.exit(EXIT_INTERRUPTED)
    except Exception as error:  # a bug or an environment fault: one line, details at debug
        logging.getLogger(__name__).debug("unexpected error", exc_info=True)
        print(
            f"product-train: error: {type(error).__name__}: {error}; no alias was moved (a run "
            "it started is marked FAILED; set LOG_LEVEL=DEBUG for the traceback)",
            file=sys.stderr,
        )
        sys.exit(1)
    print_summary(result)
