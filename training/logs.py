"""What a training run prints: the project's lines at the chosen level, other libraries' quieter.

`LOG_LEVEL` (default INFO, WARNING with `-q`) sets the level of this project's loggers; other
libraries never log below INFO (their DEBUG lines, e.g. matplotlib's font lookups, are noise
here), nor below the project's level. Call `configure_logging` before MLflow is imported: MLflow
installs its own handler at import unless told not to.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr
from typing import TextIO

from training.errors import ConfigError

PROJECT_LOGGERS = ("training", "product_model")
# MLflow warns about pickled models on every run; logging the model object is this project's
# deliberate choice (its code travels with it as code_paths), so the warning says nothing new.
KNOWN_WARNINGS = {"mlflow.pyfunc": "Passing a Python object as `python_model`"}
# Libraries whose INFO lines are noise here (alembic: one line per MLflow schema migration;
# matplotlib: "Using categorical units ..." for each chart of labels that look like numbers).
THIRD_PARTY_LEVELS = {"alembic": logging.WARNING, "matplotlib": logging.WARNING}
# Lines MLflow prints (not logs) while registering a model (the first or a later version).
REGISTRY_CHATTER = ("Successfully registered model", "Registered model ", "Created version ")
# MLflow's own switch for the links it prints (not logs) to stdout as a run ends.
NO_RUN_LINKS = "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"


class DropMessages(logging.Filter):
    """Drops the records whose message starts with `prefix`."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefix)


def check_log_level() -> None:
    """Stop (exit 2, one line) when LOG_LEVEL names no level, instead of quietly ignoring it."""
    name = os.environ.get("LOG_LEVEL", "").strip()
    if name and name.upper() not in logging.getLevelNamesMapping():
        raise ConfigError(
            f"LOG_LEVEL={name!r} is not a level; use DEBUG, INFO, WARNING, ERROR or CRITICAL"
        )


def requested_level(quiet: bool) -> int:
    """The project's level: LOG_LEVEL if it names one, else WARNING with -q, else INFO."""
    name = os.environ.get("LOG_LEVEL", "").strip().upper()
    levels = logging.getLevelNamesMapping()
    return levels.get(name, logging.WARNING if quiet else logging.INFO)


def quiet_third_parties(level: int) -> None:
    """The libraries of `THIRD_PARTY_LEVELS` log at their level there, or `level` if higher."""
    for name, third_party_level in THIRD_PARTY_LEVELS.items():
        logging.getLogger(name).setLevel(max(level, third_party_level))


def configure_logging(quiet: bool) -> None:
    os.environ.setdefault("MLFLOW_CONFIGURE_LOGGING", "false")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    level = requested_level(quiet)
    logging.basicConfig(
        level=max(level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        force=True,
    )
    for name in PROJECT_LOGGERS:
        logging.getLogger(name).setLevel(level)
    quiet_third_parties(level)
    for name, prefix in KNOWN_WARNINGS.items():
        logging.getLogger(name).addFilter(DropMessages(prefix))
    warnings.formatwarning = _one_line_warning
    logging.captureWarnings(True)


def _one_line_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    line: str | None = None,
) -> str:
    return f"{category.__name__}: {message} ({filename}:{lineno})"


class _LinesWithout(io.TextIOBase):
    """A text stream that passes on everything but the lines starting with `prefixes`."""

    def __init__(self, stream: TextIO, prefixes: tuple[str, ...]) -> None:
        self.stream = stream
        self.prefixes = prefixes
        self.dropping = False

    def write(self, text: str) -> int:
        if text.startswith(self.prefixes):
            self.dropping = True
        elif not (self.dropping and text == "\n"):  # print() writes the newline on its own
            self.dropping = False
            self.stream.write(text)
        else:
            self.dropping = False
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


@contextmanager
def run_links_not_printed() -> Iterator[None]:
    """MLflow prints links to the run and its experiment whenever a run is marked finished over
    HTTP; inside this, it does not (the variable is read at each print, then put back)."""
    before = os.environ.get(NO_RUN_LINKS)
    os.environ[NO_RUN_LINKS] = "true"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(NO_RUN_LINKS, None)
        else:
            os.environ[NO_RUN_LINKS] = before


@contextmanager
def mlflow_prints(quiet: bool) -> Iterator[None]:
    """With -q, hide what MLflow prints (not logs): the lines it writes to stderr when it
    registers a model, and its links to the run and experiment on stdout."""
    if not quiet:
        yield
        return
    with redirect_stderr(_LinesWithout(sys.stderr, REGISTRY_CHATTER)), run_links_not_printed():
        yield
