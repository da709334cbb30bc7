"""`python -m serving` / `product-serve`: validate the settings, then run uvicorn.

Configuration comes from environment variables only (see `serving.settings.Settings`); a bad one
stops start-up with one message per problem and exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from types import FrameType

from pydantic import ValidationError

from serving.settings import Settings, describe_settings_error
from serving.startup import postpone_full_collections

EXIT_BAD_SETTINGS = 2
EXIT_START_FAILED = 1

# Defaults for the libraries, set before they are imported; the environment still wins.
LIBRARY_DEFAULTS = {
    "OMP_NUM_THREADS": "1",  # small model calls: extra native threads only cost time
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "MLFLOW_CONFIGURE_LOGGING": "false",  # our JSON handler formats MLflow's logs too
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",  # the server retries with its own backoff
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
}


def main(argv: list[str] | None = None) -> None:
    postpone_full_collections()  # until the first model load attempt ends: see serving.startup
    parse_arguments(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        print(describe_settings_error(exc), file=sys.stderr)
        sys.exit(EXIT_BAD_SETTINGS)
    for name, value in LIBRARY_DEFAULTS.items():
        os.environ.setdefault(name, value)
    temporary_metrics_dir = prepare_metrics_dir(settings)
    signal.signal(signal.SIGTERM, exit_cleanly)  # uvicorn re-raises it after draining
    signal.signal(signal.SIGINT, exit_cleanly)
    code = EXIT_START_FAILED
    try:
        code = 0 if serve(settings) else EXIT_START_FAILED
    except SystemExit as stop:  # SIGTERM or SIGINT, re-raised by uvicorn once it has drained
        code = stop.code if isinstance(stop.code, int) else 0
    finally:
        if temporary_metrics_dir is not None:
            shutil.rmtree(temporary_metrics_dir, ignore_errors=True)
    exit_now(code)


def serve(settings: Settings) -> bool:
    """Run uvicorn until SIGTERM; False if the server never started (port taken, ...)."""
    import uvicorn

    from serving.logs import configure_logging
    from serving.transport import CoalescingHttpToolsProtocol

    configure_logging(settings.log_level)
    common = {
        "http": CoalescingHttpToolsProtocol,
        "host": settings.host,
        "port": settings.port,
        "log_config": None,
        "access_log": False,  # the app writes its own access log, without probes
        "server_header": False,
        "timeout_graceful_shutdown": settings.shutdown_timeout_seconds,
    }
    if settings.workers > 1:
        factory = "serving.app:app_from_environment"
        uvicorn.run(factory, factory=True, workers=settings.workers, **common)  # type: ignore[arg-type]
        return True
    from serving.api import create_app

    server = uvicorn.Server(uvicorn.Config(create_app(settings), **common))  # type: ignore[arg-type]
    server.run()
    return server.started


def prepare_metrics_dir(settings: Settings) -> Path | None:
    """Point prometheus-client at a clean multiprocess directory when there are several workers;
    returns the directory to remove at exit if this function created it."""
    created = None
    directory = settings.prometheus_multiproc_dir
    if directory is None and settings.workers > 1:
        directory = created = Path(tempfile.mkdtemp(prefix="product-serve-metrics-"))
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):  # values of a previous run must not leak in
            stale.unlink()
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    return created


def exit_now(code: int) -> None:
    """Exit without waiting for other threads: the server has answered or refused every request
    by now, and a model load stuck on an unresponsive MLflow must not hold the process (the
    Deployment's grace period is SHUTDOWN_TIMEOUT_SECONDS plus a little)."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def parse_arguments(argv: list[str] | None) -> None:
    """Only --help: everything is configured through environment variables."""
    epilog = "environment variables:\n" + "\n".join(
        f"  {name.upper():28} {field.description} (default: {field.default})"
        for name, field in Settings.model_fields.items()
    )
    parser = argparse.ArgumentParser(
        prog="product-serve",
        description="Serve the product classifier over HTTP.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.parse_args(argv)


if __name__ == "__main__":
    main()
