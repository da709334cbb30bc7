"""Start-up helpers of `python -m serving` that need no server."""

from __future__ import annotations

import os

import pytest

from serving.__main__ import LIBRARY_DEFAULTS, prepare_metrics_dir
from serving.settings import Settings

PLACEHOLDER = "placeholder"


@pytest.fixture(autouse=True)
def _metrics_dir_variable_undone(monkeypatch) -> None:
    """prepare_metrics_dir sets PROMETHEUS_MULTIPROC_DIR; monkeypatch removes it afterwards."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", PLACEHOLDER)


def test_several_workers_get_a_temporary_metrics_dir() -> None:
    created = prepare_metrics_dir(Settings(workers=2, prometheus_multiproc_dir=None))
    assert created is not None and created.is_dir()
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(created)
    created.rmdir()


def test_a_given_metrics_dir_is_cleaned_not_owned(tmp_path) -> None:
    (tmp_path / "counter_123.db").write_bytes(b"stale")
    (tmp_path / "keep.txt").write_text("not ours")
    assert prepare_metrics_dir(Settings(workers=3, prometheus_multiproc_dir=tmp_path)) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(tmp_path)


def test_one_worker_needs_no_metrics_dir() -> None:
    assert prepare_metrics_dir(Settings(prometheus_multiproc_dir=None)) is None
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == PLACEHOLDER  # untouched


def test_library_defaults_keep_mlflow_quiet_and_threads_single() -> None:
    assert LIBRARY_DEFAULTS["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "0"
    assert LIBRARY_DEFAULTS["OMP_NUM_THREADS"] == "1"
