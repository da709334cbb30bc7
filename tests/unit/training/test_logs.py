"""What the training CLI prints: the project's lines at LOG_LEVEL, other libraries' quieter."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest
from mlflow.environment_variables import MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT

from training.logs import NO_RUN_LINKS, mlflow_prints

EMIT = """
import logging, warnings
from training.logs import configure_logging
configure_logging(quiet={quiet})
logging.getLogger("training.api").debug("project debug")
logging.getLogger("training.api").info("project info")
logging.getLogger("matplotlib.font_manager").debug("findfont: score")
logging.getLogger("matplotlib.category").info("Using categorical units to plot a list of strings")
logging.getLogger("mlflow.store.db.utils").info("Creating initial MLflow database tables")
logging.getLogger("alembic.runtime.migration").info("Running upgrade")
logging.getLogger("mlflow.pyfunc").warning("Passing a Python object as `python_model` ...")
logging.getLogger("mlflow.pyfunc").warning("a real MLflow warning")
warnings.warn("a library warning", UserWarning)
"""


def emitted(quiet: bool, log_level: str | None) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "LOG_LEVEL"}
    if log_level:
        env["LOG_LEVEL"] = log_level
    result = subprocess.run(
        [sys.executable, "-c", EMIT.format(quiet=quiet)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    return [line.split(" ", 1)[1] for line in result.stderr.splitlines()]


def test_quiet_prints_only_warnings() -> None:
    assert emitted(quiet=True, log_level=None) == [
        "WARNING mlflow.pyfunc: a real MLflow warning",
        "WARNING py.warnings: UserWarning: a library warning (<string>:13)",
    ]


def test_debug_shows_the_project_not_third_party_noise() -> None:
    lines = emitted(quiet=False, log_level="DEBUG")
    assert lines[:3] == [
        "DEBUG training.api: project debug",
        "INFO training.api: project info",
        "INFO mlflow.store.db.utils: Creating initial MLflow database tables",
    ]
    assert not any("findfont" in line or "alembic" in line for line in lines)
    assert not any("categorical units" in line for line in lines)
    assert not any("Passing a Python object" in line for line in lines)


@pytest.mark.parametrize("quiet", [True, False])
def test_registry_chatter_hidden_only_when_quiet(quiet: bool, monkeypatch) -> None:
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    with mlflow_prints(quiet):
        print("Successfully registered model 'm'.", file=sys.stderr)
        print("Created version '1' of model 'm'.", file=sys.stderr)
        print("something else", file=sys.stderr)
    expected = "something else\n"
    if not quiet:
        expected = (
            "Successfully registered model 'm'.\nCreated version '1' of model 'm'.\n" + expected
        )
    assert stream.getvalue() == expected


@pytest.mark.parametrize("quiet", [True, False])
def test_mlflow_s_run_links_are_switched_off_only_when_quiet(quiet: bool, monkeypatch) -> None:
    monkeypatch.delenv(NO_RUN_LINKS, raising=False)
    with mlflow_prints(quiet):
        assert MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT.get() is quiet
    assert NO_RUN_LINKS not in os.environ  # put back as it was


def test_product_monitor_logs_nothing_of_matplotlib_below_warning() -> None:
    """product-monitor configures its own logging: the plots of number-like labels must not add
    matplotlib's INFO lines to its output."""
    script = (
        "import logging\n"
        "from training import monitor\n"
        "try:\n"
        "    monitor.main(['report', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "logging.getLogger('matplotlib.category').info('Using categorical units to plot')\n"
        "logging.getLogger('training.monitor').info('project info')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "LOG_LEVEL"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    )
    assert "project info" in result.stderr
    assert "categorical units" not in result.stderr
