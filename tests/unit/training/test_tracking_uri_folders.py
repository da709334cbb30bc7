"""A `sqlite:///` store in a folder that cannot be created or written stops the writing commands
at start-up (exit 2, naming the path), before any run exists."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from training.errors import ConfigError
from training.tracking_uri import check_store_allowed, check_store_exists

# /proc takes no new entries and /sys no new files, even for root (the tests may run as root, for
# whom permission bits alone refuse nothing).
UNCREATABLE = "sqlite:////proc/nope/mlflow.db"
UNWRITABLE = "sqlite:////sys/mlflow.db"


@pytest.fixture(autouse=True)
def _no_store_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_ALLOW_FILE_STORE"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        (UNCREATABLE, "the folder /proc/nope does not exist and cannot be created in /proc ("),
        (UNWRITABLE, "cannot write in the folder /sys (Permission denied)"),
    ],
)
def test_a_store_folder_that_cannot_be_made_or_written_is_a_config_error(
    uri: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        check_store_allowed(uri)
    message = str(caught.value)
    store = uri.removeprefix("sqlite:///")
    assert message.startswith(f"cannot create the MLflow store at {store} (the tracking URI")
    assert problem in message and "give a path in a folder you can write" in message
    assert caught.value.exit_code == 2


def test_a_file_in_the_way_of_the_folder_is_named(tmp_path: Path) -> None:
    (tmp_path / "notes").write_text("")
    with pytest.raises(ConfigError, match=f"{tmp_path / 'notes'} is a file, not a folder"):
        check_store_allowed(f"sqlite:///{tmp_path}/notes/sub/mlflow.db")


def test_the_registry_store_is_checked_by_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", UNCREATABLE)
    with pytest.raises(ConfigError, match=r"\(the registry URI .*, MLFLOW_REGISTRY_URI\)"):
        check_store_allowed("http://mlflow:5000")


def test_a_folder_mlflow_can_create_passes_and_nothing_is_left(tmp_path: Path) -> None:
    check_store_allowed(f"sqlite:///{tmp_path}/new/sub/mlflow.db")
    assert list(tmp_path.iterdir()) == []


def test_read_only_commands_still_report_the_missing_store() -> None:
    with pytest.raises(ConfigError) as caught:
        check_store_exists(UNCREATABLE)
    assert str(caught.value).startswith("no MLflow store at /proc/nope/mlflow.db ")


@pytest.mark.parametrize("module", ["training", "training.tune"])
def test_train_and_tune_stop_at_start_without_claiming_a_run(tmp_path: Path, module: str) -> None:
    """It was exit 1 (a failure of the program) after the catalog was read, saying "a run it
    started is marked FAILED" when none had started."""
    result = subprocess.run(
        [sys.executable, "-m", module, "--tracking-uri", UNCREATABLE],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (result.returncode, result.stdout) == (2, ""), result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert "cannot create the MLflow store at /proc/nope/mlflow.db" in result.stderr
    assert "FAILED" not in result.stderr and "Traceback" not in result.stderr
