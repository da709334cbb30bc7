"""`product-tune`: search training options with Optuna; write the best as a `product-train` config.

The tuning options are parsed here; every other option is a `product-train` option (data, column
mapping, fixed model options, MLflow) and is parsed by the training CLI, so the two never drift.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import warnings
from pathlib import Path
from typing import Any, NoReturn

from training.errors import ConfigError, TrainingError
from training.interrupts import ignore_further_signals, stop_on_signals
from training.logs import check_log_level, quiet_third_parties, requested_level

EXIT_INTERRUPTED = 130
LOCAL_WORKER = "--local-worker"  # a worker started by `product-tune --workers W` on this machine


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="product-tune",
        description="Search training options (Optuna: TPE sampler, median pruning between "
        "folds) for the model `product-train` trains for --task, by its k-fold gate metric on "
        "the training split (macro-F1 for single_label, micro-F1 for multilabel, samples-F1 for "
        "path, or --gate-metric); write the best as a config file for `product-train --config`. "
        "Every `product-train` option (see product-train --help) is accepted too and fixes that "
        "option for all trials.",
        epilog="Exit codes: 0 success, 2 bad option, config or search space, 3 unreadable or "
        "unusable data, 4 MLflow or the study storage unreachable, 5 MLflow refused a request, "
        "130 interrupted.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add("--search-space", type=Path, help="YAML search space (default: the packaged one)")
    add("--print-space", action="store_true", help="print the default search space and exit")
    add(
        "--trials",
        type=_positive(int),
        default=20,
        help="trials in the study, all workers together",
    )
    add("--timeout", type=_positive(float), help="stop starting trials after this many seconds")
    add("--workers", type=_positive(int), default=1, help="local worker processes")
    add(
        "--storage",
        default="sqlite:///optuna.db",
        help="study storage URL: sqlite:///PATH or postgresql://USER@HOST:PORT/DB",
    )
    add("--study-name", default="product-tune", help="study to create, or to resume if it exists")
    add("--folds", type=_positive(int, minimum=2), default=3, help="cross-validation folds")
    add("--output", type=Path, default=Path("best.yaml"), help="where to write the best config")
    add("--role", choices=["all", "worker", "best"], default="all", help=argparse.SUPPRESS)
    add(
        "--worker-index",
        type=int,
        default=int(os.environ.get("JOB_COMPLETION_INDEX", "0")),
        help=argparse.SUPPRESS,
    )
    add("--wait-seconds", type=_positive(float), default=86400.0, help=argparse.SUPPRESS)
    add("--heartbeat-seconds", type=_positive(int), default=10, help=argparse.SUPPRESS)
    add(LOCAL_WORKER, action="store_true", help=argparse.SUPPRESS)
    add("-q", "--quiet", action="store_true", help="only warnings, errors and the summary")
    return parser


def _positive(kind: type, minimum: int = 1) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {text}")
        return value

    return parse


def parse(args: argparse.Namespace, train_argv: list[str]) -> tuple[Any, Any]:
    """(the training options, the tuning options), checked before any study or run exists."""
    from training.cli import check_inputs, parse_config
    from training.tuning.report import check_output
    from training.tuning.space import load_space
    from training.tuning.storage import check_storage_url
    from training.tuning.study_setup import TuneOptions

    refuse_tuning_options_in_config(train_argv)
    base, _ = parse_config(train_argv)
    check_inputs(base)
    check_storage_url(args.storage)
    if args.role != "worker":  # the roles that write it
        check_output(args.output)
    options = TuneOptions(
        space=load_space(args.search_space, base),
        trials=args.trials,
        timeout=args.timeout,
        workers=args.workers,
        storage=args.storage,
        study_name=args.study_name,
        folds=args.folds,
        output=args.output,
        worker_index=args.worker_index,
        wait_seconds=args.wait_seconds,
        heartbeat_seconds=args.heartbeat_seconds,
    )
    return base, options


def refuse_tuning_options_in_config(train_argv: list[str]) -> None:
    """ConfigError (exit 2) naming the `product-tune` options that the --config file holds: it
    holds `product-train` options only (the training CLI would call them unknown options of its
    own, and send the user to `product-train --help`)."""
    finder = argparse.ArgumentParser(add_help=False)
    finder.add_argument("--config", type=Path)
    path = finder.parse_known_args(train_argv)[0].config
    if path is None:
        return
    from training.config_files import read_config_file

    tuning = set(vars(build_parser().parse_args([])))
    found = {k: v for k, v in read_config_file(path).items() if k.replace("-", "_") in tuning}
    if not found:
        return
    names = ", ".join(found)
    what = "is a product-tune option" if len(found) == 1 else "are product-tune options"
    flags = " ".join(f"--{name.replace('_', '-')} {value}" for name, value in found.items())
    raise ConfigError(
        f"config file {path}: {names} {what}, which a config file cannot hold (it holds "
        f"product-train options only); give {flags} on the command line instead"
    )


def _configure_logging(quiet: bool, index: int, role: str) -> None:
    """Log lines at the requested level (-q: warnings), MLflow's included: left to itself, MLflow
    installs its own INFO handler when imported (so this runs before it is)."""
    os.environ.setdefault("MLFLOW_CONFIGURE_LOGGING", "false")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    prefix = f"worker {index} " if role == "worker" else ""
    logging.basicConfig(
        level=requested_level(quiet),
        format=f"%(asctime)s %(levelname)s {prefix}%(message)s",
        datefmt="%H:%M:%S",
    )
    quiet_third_parties(requested_level(quiet))
    import optuna

    # We log each trial ourselves, and a failed one reaches the user as one line, not Optuna's
    # traceback.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    if requested_level(quiet) == logging.INFO:
        # A multilabel or path trial fits a tag model per fold: its per-chunk progress lines
        # would bury the trial lines.
        logging.getLogger("training.tag_model").setLevel(logging.WARNING)
    # Heartbeats are "experimental" in Optuna; a drawn k above the vocabulary keeps every feature.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message=r"k=\d+ is greater than n_features")


def _fail(message: str, code: int) -> NoReturn:
    print(f"product-tune: error: {message}", file=sys.stderr)
    sys.exit(code)


def run(argv: list[str]) -> None:
    check_log_level()
    args, train_argv = build_parser().parse_known_args(argv)
    _configure_logging(args.quiet, args.worker_index, args.role)
    base, options = parse(args, train_argv)
    from mlflow.exceptions import MlflowException
    from sqlalchemy.exc import SQLAlchemyError

    from training.logs import mlflow_prints
    from training.tracking import as_tracking_error
    from training.tuning import run as runs
    from training.tuning.report import format_summary
    from training.tuning.storage import StudyStorageError

    try:
        with mlflow_prints(args.quiet):  # -q: without MLflow's links to each run it ends
            if args.role == "worker":
                runs.run_worker(base, options)
                return
            if args.role == "best":
                result = runs.export(base, options)
            else:
                result = runs.run_all(base, options, argv)
    except MlflowException as error:
        raise as_tracking_error(error, "tuning") from None
    except SQLAlchemyError as error:
        raise StudyStorageError(f"the study storage failed: {_first_line(error)}") from None
    print(format_summary(result), flush=True)


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0][:300] if str(error).strip() else type(error).__name__


def _ignore_signals_after_the_first() -> None:
    """For a local worker, which may get one signal twice: from the terminal (Ctrl-C reaches the
    whole process group) and forwarded by the tuning process that started it. The second must
    not cut short the cleanup the first began (its trial marked failed, its MLflow run KILLED)."""
    for number in (signal.SIGINT, signal.SIGTERM):
        interrupt = signal.getsignal(number)

        def first_only(signum: int, frame: Any, interrupt: Any = interrupt) -> None:
            ignore_further_signals()
            interrupt(signum, frame)

        signal.signal(number, first_only)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if "--print-space" in argv:
        from training.tuning.space import default_space_path

        print(default_space_path().read_text("utf-8"), end="")
        return
    local_worker = LOCAL_WORKER in argv
    stop_on_signals()
    if local_worker:
        _ignore_signals_after_the_first()
    try:
        run(argv)
    except TrainingError as error:
        _fail(str(error), error.exit_code)
    except KeyboardInterrupt:
        ignore_further_signals()
        if local_worker:  # the tuning process that started it says so, once for all workers
            sys.exit(EXIT_INTERRUPTED)
        _fail(
            "interrupted; the running trial is marked failed, the others are kept: re-run with "
            "the same --study-name to resume",
            EXIT_INTERRUPTED,
        )
    except Exception as error:  # a bug or an environment fault: one line, details at debug
        logging.getLogger(__name__).debug("unexpected error", exc_info=True)
        _fail(f"{type(error).__name__}: {error} (set LOG_LEVEL=DEBUG for the traceback)", 1)


if __name__ == "__main__":
    main()
