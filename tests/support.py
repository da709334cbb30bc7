"""Helpers shared by every test level: free ports, waiting for HTTP, slices of the bundled sample,
real servers started on loopback, and the tiny model trained into a real MLflow store.

Fixtures live in one conftest per level and build on these; test modules import helpers from here,
never from a conftest."""

from __future__ import annotations

import gzip
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from training.catalog import bundled_sample

REPO = Path(__file__).resolve().parent.parent
TINY_ROWS = 1500


@dataclass(frozen=True)
class Registry:
    """An MLflow store (a server or SQLite) and the tiny model registered in it as champion."""

    tracking_uri: str
    root: Path
    model_name: str
    version: str
    logged_model_uri: str


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def refused_port() -> Iterator[int]:
    """A loopback port that refuses connections for as long as the block runs: bound but not
    listening, so no other test (another xdist worker's server) can take it meanwhile."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


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


def wait_for_http(
    url: str, timeout: float, process: subprocess.Popen | None = None, poll: float = 0.3
) -> None:
    """Return once `url` answers 200; poll every `poll` seconds while it refuses or errs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(poll)
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


@contextmanager
def tracking_uri_restored() -> Iterator[None]:
    """Undo `mlflow.set_tracking_uri` done inside (a training run sets it, and MLflow copies it into
    MLFLOW_TRACKING_URI), so that later tests resolve the tracking URI they had before."""
    import mlflow

    before = os.environ.get("MLFLOW_TRACKING_URI")
    try:
        yield
    finally:
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]  # back to "not set"
        if before is not None:
            os.environ["MLFLOW_TRACKING_URI"] = before


def sqlite_store(root: Path, experiment_name: str = "product-categorization") -> str:
    """A SQLite MLflow store under `root`, its experiment created with its artifacts there too
    (by default they would go under the working directory)."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{root}/mlflow.db"
    client = MlflowClient(uri)
    if client.get_experiment_by_name(experiment_name) is None:
        client.create_experiment(experiment_name, artifact_location=(root / "artifacts").as_uri())
    return uri


def train_tiny(tracking_uri: str, model_name: str, root: Path, **overrides: Any) -> Registry:
    """Train a tiny model on a slice of the bundled sample (written under `root`), register it
    and make it champion."""
    from training.config import TrainConfig
    from training.run import train

    data = write_jsonl_gz(root / "tiny-slice.jsonl.gz", sample_records(limit=TINY_ROWS))
    values: dict[str, Any] = {
        "data": str(data),
        "model_name": model_name,
        "n_estimators": 20,
        "smote": False,
        "select_k_best": 5000,
        "force_promote": True,
        "tracking_uri": tracking_uri,
        "n_jobs": 1,
    }
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    with tracking_uri_restored():
        result = train(TrainConfig(**(values | overrides)))
    return Registry(tracking_uri, root, model_name, result.model_version, result.model_uri)


@dataclass
class ServingProcess:
    """`python -m serving` running on a free loopback port."""

    process: subprocess.Popen[bytes]
    url: str
    log_path: Path
    started: float = field(default_factory=time.monotonic)

    def get(self, path: str, timeout: float = 10) -> tuple[int, Any]:
        return http_json("GET", self.url + path, timeout=timeout)

    def post(self, path: str, body: Any, timeout: float = 60) -> tuple[int, Any]:
        return http_json("POST", self.url + path, body, timeout=timeout)

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.assert_running()
            try:
                if self.get("/readyz", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{self.url} not ready within {timeout}s:\n{self.log_tail()}")

    def wait_live(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.assert_running()
            try:
                if self.get("/healthz", timeout=2)[0] == 200:
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"{self.url} not live within {timeout}s:\n{self.log_tail()}")

    def assert_running(self) -> None:
        if self.process.poll() is not None:
            raise AssertionError(
                f"server exited with {self.process.returncode}:\n{self.log_tail()}"
            )

    def log_lines(self) -> list[str]:
        return self.log_path.read_text("utf-8", errors="replace").splitlines()

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_lines()[-lines:])

    def metrics_text(self) -> str:
        try:
            with urllib.request.urlopen(self.url + "/metrics", timeout=10) as response:
                return response.read().decode()
        except urllib.error.HTTPError as error:  # keep the server's side of it in the failure
            raise AssertionError(f"/metrics answered {error.code}:\n{self.log_tail()}") from error


def launch_server(folder: Path, **env: str) -> ServingProcess:
    """`python -m serving` on a free loopback port, in `folder`, with extra environment."""
    port = free_port()
    log_path = folder / f"serving-{port}.log"
    # Not what a CLI run in this test process set for itself: a server picks its own MLflow retries.
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_HTTP_REQUEST_")}
    variables = {
        **inherited,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "RELOAD_INTERVAL_SECONDS": "0",
        **env,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "serving"],
        cwd=folder,
        env=variables,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return ServingProcess(process, f"http://127.0.0.1:{port}", log_path)


def http_json(method: str, url: str, body: Any = None, timeout: float = 30) -> tuple[int, Any]:
    """One request; returns the status and the decoded JSON body (4xx/5xx included)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def imported_by(code: str, *modules: str) -> list[bool]:
    """Whether running `code` in a fresh interpreter imports each of `modules` (the serving image
    lacks some packages the test environment has, such as SQLAlchemy)."""
    shown = ", ".join(f"{module!r} in sys.modules" for module in modules)
    out = subprocess.run(
        [sys.executable, "-c", f"import sys; {code}; print({shown})"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    return [word == "True" for word in out.split()]


def require_binary(path: str, package: str) -> str:
    """The path of a system tool the test needs, or a clear failure (never a skip)."""
    if not Path(path).exists():
        pytest.fail(f"{path} not found: install Debian's {package} (apt-get install -y {package})")
    return path


def wait_until_ready(client: Any, timeout: float = 60) -> None:
    """Poll /readyz of a FastAPI TestClient until it answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get("/readyz")
        if response.status_code == 200:
            return
        time.sleep(0.05)
    raise AssertionError(f"not ready after {timeout}s: {client.get('/readyz').json()}")


def scrape_config(
    folder: Path, job: str, target: str, labels: dict[str, str] | None = None
) -> Path:
    """A Prometheus config in `folder` that scrapes `target` (host:port) every second as `job`,
    with `labels` on its series, and evaluates rules every second."""
    static: dict[str, Any] = {"targets": [target]} | ({"labels": labels} if labels else {})
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": job, "static_configs": [static]}],
    }
    path = folder / "prometheus.yml"
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


def start_prometheus(
    binary: str, config: Path, folder: Path
) -> tuple[subprocess.Popen[bytes], str]:
    """Debian's `prometheus` with `config` on a free loopback port, its data under `folder`;
    returns the process and its base URL once it is ready."""
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={folder / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=(folder / "prometheus.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{base}/-/ready", timeout=60, process=process)
    except BaseException:
        stop_process(process)
        raise
    return process, base


@contextmanager
def signal_handlers_restored() -> Iterator[None]:
    """SIGINT's and SIGTERM's handlers as they were before the block: the CLIs run in the test
    process install their own (`stop_on_signals`) or ignore signals once done."""
    saved = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in saved.items():
            signal.signal(number, handler)


def metrics_exposed(metrics: Any) -> ThreadingHTTPServer:
    """`metrics` (a `serving.metrics.ServingMetrics`) on /metrics of a loopback port, served by a
    thread, for a real Prometheus to scrape (stop with `shutdown`)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body, content_type = metrics.render()
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def write_tag_catalog(
    path: Path,
    kinds: dict[str, list[str]],
    modifiers: dict[str, list[str]],
    count: int,
    brands: tuple[str, ...] = ("Acme",),
) -> Path:
    """A CSV `sku,title,tags` of `count` products: one kind each and each modifier with chance
    0.4, tags joined by '|'; the title is a brand, then a word for each tag (seeded)."""
    rng = random.Random(3)
    lines = ["sku,title,tags"]
    for i in range(count):
        kind = rng.choice(sorted(kinds))
        tags = [kind] + [m for m in sorted(modifiers) if rng.random() < 0.4]
        words = [rng.choice(modifiers[m]) for m in tags[1:]] + [rng.choice(kinds[kind])]
        brand = rng.choice(brands) if len(brands) > 1 else brands[0]
        lines.append(f"{i},{brand} {' '.join(words)},{'|'.join(tags)}")
    path.write_text("\n".join(lines) + "\n")
    return path
