"""Fixtures shared by all tests: small catalogs and a real MLflow tracking server on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import (
    free_port,
    sample_records,
    start_mlflow_server,
    stop_process,
    wait_for_http,
    write_jsonl_gz,
)


@pytest.fixture(scope="session")
def small_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 480 products: 12 of each of the sample's 40 largest classes."""
    records = sample_records(per_class=12)
    counts: dict[str, int] = {}
    for record in records:
        counts[record["main_cat"]] = counts.get(record["main_cat"], 0) + 1
    keep = set(sorted(counts, key=lambda label: -counts[label])[:40])
    path = tmp_path_factory.mktemp("catalog") / "small.jsonl.gz"
    return write_jsonl_gz(path, [r for r in records if r["main_cat"] in keep])


@pytest.fixture(scope="session")
def tracking_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `mlflow server` on loopback with its own SQLite store and served artifacts."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    process = start_mlflow_server(root, port)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/health", timeout=90, process=process)
        yield url
    finally:
        stop_process(process)
