"""`product-train` / `python -m training`: parse options, run one training, print a summary.

Every field of `TrainConfig` is an option (`n_estimators` → `--n-estimators`); `--config FILE`
supplies defaults that options on the command line override.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from pydantic_settings import CliSettingsSource, SettingsError

from training.config import TrainConfig
from training.config_files import make_config, read_config_file
from training.errors import ConfigError, TrainingError
from training.interrupts import ignore_further_signals, stop_on_signals
from training.logs import check_log_level, configure_logging, mlflow_prints

EXIT_INTERRUPTED = 130
log = logging.getLogger(__name__)
# The library names an option's value by its type and has no per-field metavar; these read better
# as their syntax, set as it adds each option (through add_argument_method, its public hook).
METAVARS = {
    "data": "FILE",
    "label_map": "FILE",
    "text_columns": "A,B,...",
    "token_columns": "A,B,...",
    "numeric_columns": "A,B,...",
    "smote_strategy": "share:R|min:N|NAME",
    "max_features": "sqrt|log2|NUMBER",
}


def _add_option(parser: argparse.ArgumentParser, *names: str, **options: Any) -> argparse.Action:
    if options.get("dest") in METAVARS:
        options["metavar"] = METAVARS[options["dest"]]
    return parser.add_argument(*names, **options)


def build_command_line() -> tuple[argparse.ArgumentParser, CliSettingsSource[TrainConfig]]:
    """The parser: `--config` and `-q` here, one option per TrainConfig field from the library."""
    parser = argparse.ArgumentParser(
        prog="product-train",
        description="Train a product classifier on a catalog, log it to MLflow, register it, "
        "and promote it to champion if it beats the current one.",
        epilog="Exit codes: 0 success, 1 a failure of the program itself, 2 bad option or config, "
        "3 unreadable or unusable data, "
        "4 MLflow unreachable, 5 MLflow refused a request, 130 interrupted.",
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="YAML, JSON or TOML file of options (keys as below with underscores; relative "
        "paths in it are relative to the file's folder); command-line options override it",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="print only warnings, errors and the summary"
    )
    return parser, CliSettingsSource(
        TrainConfig, root_parser=parser, add_argument_method=_add_option
    )


def build_parser() -> argparse.ArgumentParser:
    return build_command_line()[0]


def parse_config(argv: list[str] | None = None) -> tuple[TrainConfig, argparse.Namespace]:
    """The options of one run: the config file's values, overridden by the command line's."""
    parser, command_line = build_command_line()
    args = parser.parse_args(argv)
    # The file is named on the command line, so it is read after parsing; its values enter as
    # init arguments, which the library ranks below its CLI source: the command line wins.
    values = read_config_file(args.config) if args.config else {}
    source = f"options (config file {args.config})" if args.config else "options"
    try:
        given = command_line(parsed_args=args)
    except SettingsError as error:
        raise ConfigError(f"invalid {source}: {error}") from None
    return make_config(values, source, _cli_settings_source=given), args


def check_inputs(config: TrainConfig) -> None:
    """Fail in a moment, before connecting to MLflow, on a catalog or label map that is unusable,
    or a tracking store MLflow would refuse (product-tune calls this too)."""
    from training.tracking_uri import check_store_allowed

    check_store_allowed(config.tracking_uri)
    if config.label_map is not None:
        from training.labels import load_label_map

        load_label_map(Path(config.label_map))
    if config.data is None:
        return
    from training.catalog_files import check_catalog_file, detect_format  # pandas: with --data

    path = Path(config.data)
    check_catalog_file(path)
    detect_format(path, config.format)


def print_summary(result: Any) -> None:
    metrics = result.metrics
    lines = [
        "training summary",
        f"  run id:          {result.run_id}",
        f"  model:           {result.model_uri}",
        f"  version:         {result.model_version}",
        *score_lines(metrics),
        f"  champion F1:     {'-' if result.champion_f1 is None else f'{result.champion_f1:.4f}'}",
        f"  promoted:        {'yes' if result.promoted else 'no'} ({result.decision})",
    ]
    if result.classes_changed:
        lines.append(f"  classes:         {result.classes_changed}")
    if result.inputs_changed:
        lines.append(f"  inputs:          {result.inputs_changed}")
    print("\n".join(lines), flush=True)


SCORE_LINES = {  # the first of these a run has decides which scores its summary shows
    "accuracy": (
        ("accuracy", "accuracy"),
        ("macro-F1", "f1_macro"),
        ("weighted-F1", "f1_weighted"),
        ("ROC-AUC (OvR)", "roc_auc_ovr_macro"),
    ),
    "f1_samples": (
        ("micro-F1", "f1_micro"),
        ("macro-F1", "f1_macro"),
        ("samples-F1", "f1_samples"),
        ("Hamming loss", "hamming_loss"),
        ("subset accuracy", "subset_accuracy"),
    ),
}


def score_lines(metrics: dict[str, float]) -> list[str]:
    """The summary's score lines: single-label scores, or multi-label ones."""
    shown = SCORE_LINES["accuracy" if "accuracy" in metrics else "f1_samples"]
    return [f"  {name + ':':<17}{metrics.get(key, float('nan')):.4f}" for name, key in shown]


def main(argv: list[str] | None = None) -> None:
    try:
        check_log_level()
        config, args = parse_config(argv)
        check_inputs(config)
    except TrainingError as error:
        print(f"product-train: error: {error}", file=sys.stderr)
        sys.exit(error.exit_code)
    configure_logging(args.quiet)
    log.debug("options: %s", config.model_dump(exclude={"tracking_uri"}))
    stop_on_signals()
    from training.tracking import bound_retries

    bound_retries(config.tracking_timeout_seconds)
    from training.run import train  # heavy imports only after the options are known good

    try:
        with mlflow_prints(args.quiet):
            result = train(config)
    except TrainingError as error:
        print(f"product-train: error: {error}", file=sys.stderr)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        ignore_further_signals()
        print(
            "product-train: interrupted; the registry is as it was, unless a warning above names "
            "what is left to undo (any run it had started is marked FAILED)",
            file=sys.stderr,
        )
        sys.exit(EXIT_INTERRUPTED)
    except Exception as error:  # a bug or an environment fault: one line, details at debug
        log.debug("unexpected error", exc_info=True)
        print(
            f"product-train: error: {type(error).__name__}: {error}; the registry is as it was, "
            "unless a warning above names what is left to undo (any run it had started is marked "
            "FAILED; set LOG_LEVEL=DEBUG for the traceback)",
            file=sys.stderr,
        )
        sys.exit(1)
    print_summary(result)
