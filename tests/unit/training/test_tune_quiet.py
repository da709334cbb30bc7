"""`-q` prints only warnings, errors and the summary: MLflow's own log lines and the lines it
prints while registering a model included (README: "-q prints only warnings, errors and the
summary")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from training.logs import mlflow_prints


def test_product_tune_q_shows_no_mlflow_log_lines(tmp_path: Path) -> None:
    """A fresh process, as MLflow sets up its own INFO handler when first imported: here it
    creates a store ("Creating initial MLflow database tables...") before the study is missed."""
    command = [sys.executable, "-m", "training.tune", "--role", "best", "--wait-seconds", "1"]
    command += ["--storage", f"sqlite:///{tmp_path}/optuna.db", "--study-name", "none"]
    command += ["--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db", "-q"]
    # Without MLflow's variables (a test run here may have set MLFLOW_CONFIGURE_LOGGING).
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    done = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.stderr.splitlines() == [
        f"product-tune: error: no study named 'none' in sqlite:///{tmp_path}/optuna.db; "
        "check --study-name and --storage"
    ]
    assert (tmp_path / "mlflow.db").is_file()  # MLflow did connect (and stayed quiet)


@pytest.mark.parametrize("quiet", [True, False])
def test_mlflow_s_line_for_a_later_model_version_is_hidden_only_when_quiet(
    quiet: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    """MLflow prints it when the registered model exists already (every training but the
    first), with its own `eprint`."""
    from mlflow.utils.logging_utils import eprint

    line = "Registered model 'shop' already exists. Creating a new version of this model..."
    with mlflow_prints(quiet):
        eprint(line)
        eprint("something else")
    expected = "something else\n" if quiet else f"{line}\nsomething else\n"
    assert capsys.readouterr().err == expected
