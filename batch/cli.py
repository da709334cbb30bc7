"""`product-classify` / `python -m batch`: parse options, score a catalog, print a summary.

Exit codes are training's: 0 success, 1 unexpected failure, 2 bad option or set-up (an output
that cannot be written, a model URI whose storage client is not installed), 3 unreadable or
unusable data, 4 MLflow unreachable, 5 MLflow refused (no such model or alias), 130 interrupted.
Any failure leaves nothing under the output name; a signal that arrives once the output is in
place does not undo the run (exit 0, see `batch.publish`).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

from batch import publish
from batch.config import BatchConfig, make_config, parse_spark_conf
from training.errors import TrainingError
from training.interrupts import ignore_further_signals, raise_if_interrupted, stop_on_signals
from training.logs import check_log_level, requested_level

EXIT_INTERRUPTED = 130
PROG = "product-classify"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Classify every product of a catalog with a registered model and write one "
        "row per product (id, label, probability, top-k, model name and version).",
        epilog="Exit codes: 0 success, 2 bad option or set-up, 3 unreadable or unusable data, "
        "4 MLflow unreachable, 5 MLflow refused (no such model or alias), 130 interrupted.",
    )
    fields = BatchConfig.model_fields
    for name in ("model", "data", "output"):
        parser.add_argument(f"--{name}", required=True, help=fields[name].description)
    parser.add_argument("--engine", choices=["local", "spark"], help=_help("engine"))
    parser.add_argument(
        "--format", choices=["auto", "amazon", "jsonl", "csv", "parquet"], help=_help("format")
    )
    for name in ("csv_separator", "id_column", "tracking_uri", "spark_master"):
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, help=_help(name))
    for name in ("top_k", "chunk_size"):
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, type=int, help=_help(name))
    parser.add_argument(
        "--tracking-timeout-seconds", type=float, help=_help("tracking_timeout_seconds")
    )
    parser.add_argument(
        "--spark-conf",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a Spark setting passed through to the session (repeatable)",
    )
    parser.add_argument("--overwrite", action="store_true", default=None, help=_help("overwrite"))
    parser.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        default=None,
        help="no progress bars (neither the scoring's nor MLflow's while it downloads the model)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and the summary")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON line")
    return parser


def _help(name: str) -> str:
    info = BatchConfig.model_fields[name]
    default = "" if info.is_required() else f" (default: {info.default})"
    return f"{info.description}{default}"


def parse_config(argv: list[str] | None = None) -> tuple[BatchConfig, argparse.Namespace]:
    args = build_parser().parse_args(argv)
    values = {
        name: value
        for name, value in vars(args).items()
        if name in BatchConfig.model_fields and value is not None and name != "spark_conf"
    }
    values["spark_conf"] = parse_spark_conf(args.spark_conf)
    return make_config(values), args


def _fail(message: str, code: int) -> NoReturn:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    sys.exit(code)


def score(config: BatchConfig) -> Any:
    """Check the output can be written, pin and load the model, then run the chosen engine."""
    from batch import model as models
    from batch.writers import check_output

    if "://" not in config.output:  # a Spark engine's remote URI is checked by Spark
        check_output(Path(config.output), config.overwrite)
    if not (Path(config.model.removeprefix("file://")) / "MLmodel").is_file():
        from training.tracking_uri import check_store_exists  # a model folder needs no store

        check_store_exists(config.tracking_uri)
    ref = models.resolve(config.model, config.tracking_uri, config.tracking_timeout_seconds)
    loaded = models.load(ref, config.id_column)
    raise_if_interrupted()
    if config.engine == "spark":
        from batch.spark import run_spark

        return run_spark(config, loaded)
    from batch.local import run_local

    return run_local(config, loaded)


def main(argv: list[str] | None = None) -> None:
    try:
        check_log_level()
        config, args = parse_config(argv)
    except TrainingError as error:
        _fail(str(error), error.exit_code)
    logging.basicConfig(
        level=requested_level(args.quiet),
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
    )
    if not config.progress:  # MLflow's own bar, as it downloads the model, too
        os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    stop_on_signals()
    publish.forget()
    summary = None
    try:
        summary = score(config)
        ignore_further_signals()  # done: a late signal must not turn it into an interrupted run
    except TrainingError as error:
        _fail(str(error), error.exit_code)
    except KeyboardInterrupt:
        ignore_further_signals()
        if summary is None and not publish.published():
            _fail(f"interrupted; nothing was written to {config.output}", EXIT_INTERRUPTED)
        if summary is None:
            print(
                f"{PROG}: interrupted after the output was complete: {config.output} holds "
                "every row (the summary was not finished)",
                file=sys.stderr,
            )
    except Exception as error:  # a bug or an environment fault: one line, details at debug
        logging.getLogger(__name__).debug("unexpected error", exc_info=True)
        first = (str(error).strip().splitlines() or [""])[0][:500]
        outcome = (
            f"{config.output} was written in full"
            if publish.published()
            else f"nothing was written to {config.output}"
        )
        _fail(
            f"{type(error).__name__}: {first}; {outcome} (set LOG_LEVEL=DEBUG for the traceback)",
            1,
        )
    if summary is not None:
        print(summary.json() if args.json else summary.text(), flush=True)
