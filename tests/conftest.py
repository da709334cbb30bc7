"""Fixtures shared by all tests: small catalogs and a real MLflow tracking server on loopback."""

from __future__ import annotations

import gzip
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from training.catalog import bundled_sample

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sample_records(limit: int | None = None, per_class: int | None = None) -> list[dict]:
    """Records of the bundled sample; `per_class` keeps the first n of each main_cat."""
    with gzip.open(bundled_sample(), "rt", encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle]
    if per_class:
        seen: dict[str, int] = {}
        kept = []
        for record in records:
            label = record["main_cat"]
            if seen.get(label, 0) < per_class:
                seen[label] = seen.get(label, 0) + 1
                kept.append(record)
        records = kept
    return records[:limit] if limit else records


def write_jsonl_gz(path: Path, records: list[dict]) -> Path:
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record) + "\n")
    return path


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


def wait_for_http(url: str, timeout: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


@pytest.fixture(scope="session")
def tracking_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `mlflow server` on loopback with its own SQLite store and served artifacts."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    mlflow_cli = Path(sys.executable).parent / "mlflow"
    process = subprocess.Popen(
        [
            str(mlflow_cli),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{root}/mlflow.db",
            "--artifacts-destination",
            str(root / "artifacts"),
            "--serve-artifacts",
            "--workers",
            "1",
        ],
        stdout=(root / "server.log").open("wb"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "MLFLOW_TRACKING_URI": ""},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/health", timeout=90, process=process)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
