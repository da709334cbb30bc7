"""Helpers for tests: free ports, waiting for HTTP, and slices of the bundled sample catalog."""

from __future__ import annotations

import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

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


def start_mlflow_server(root: Path, port: int) -> subprocess.Popen[bytes]:
    """`mlflow server` on loopback with a SQLite store and proxied artifacts under `root`."""
    root.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [
            str(Path(sys.executable).parent / "mlflow"),
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
        stdout=(root / f"mlflow-{port}.log").open("wb"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "MLFLOW_TRACKING_URI": ""},
        start_new_session=True,
    )


def stop_process(process: subprocess.Popen[Any], timeout: float = 20) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def start_mlflow_models_serve(
    model_uri: str, tracking_uri: str, port: int, log: Path
) -> subprocess.Popen[bytes]:
    """`mlflow models serve` of `model_uri` on loopback, in this environment (no new venv)."""
    venv_bin = Path(sys.executable).parent
    return subprocess.Popen(
        [
            str(venv_bin / "mlflow"),
            "models",
            "serve",
            "-m",
            model_uri,
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        # mlflow models serve starts `uvicorn` from PATH, as in an activated environment.
        env={
            **os.environ,
            "MLFLOW_TRACKING_URI": tracking_uri,
            "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        },
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def marked_model_copy(folder: Path, destination: Path, marker: str) -> Path:
    """A copy of the saved model at `folder` whose own code (`code/product_model`) prefixes every
    class with `marker`: which code a server runs shows in its labels."""
    import shutil

    shutil.copytree(folder, destination)
    pyfunc = destination / "code" / "product_model" / "pyfunc.py"
    pyfunc.write_text(
        pyfunc.read_text()
        + "\n\n_load = ProductClassifierModel.load\n\n"
        + "def _marked_load(self, *args):\n"
        + "    _load(self, *args)\n"
        + f"    self.classes = np.asarray([{marker!r} + str(c) for c in self.classes])\n\n"
        + "ProductClassifierModel.load = _marked_load\n"
    )
    return destination
