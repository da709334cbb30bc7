"""Serving benchmark: this server against `mlflow models serve` and BentoML, on the same model.

    .venv/bin/python -m bench.bench_serving                  # trains the sample, then measures
    .venv/bin/python -m bench.bench_serving --tracking-uri sqlite:////path/mlflow.db  # reuse one

Registers one model (the bundled sample with the default training config, unless an existing
tracking store is given), then, for each repeat, starts each server in turn with one worker
process (`--workers N`: N each) on loopback and drives it with the same load generator (wrk, one
thread, a Lua script that posts real catalog products): single-product requests at concurrency 1,
8 and 32, and 100-product batches. Also measures the model's in-process `predict_proba`
throughput on batches of 100 (the ceiling) and each server's time from start to ready. Prints
medians over the repeats side by side and writes bench/results/serving.json. Needs Debian's wrk
(`apt-get install wrk`).

`--compare-with DIR` adds this server as another checkout has it (DIR holds its `serving` package,
e.g. `git archive <commit> serving | tar -x -C DIR`), run in turn with the others in each repeat, so
a change is measured against the code before it on the same busy machine.

The third server is BentoML with adaptive batching (bench/bentoml_service.py), run from its own
virtual environment (`make bench-bentoml-venv`, then `--bentoml-python .venv-bentoml/bin/python`);
without --bentoml-python it is left out.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
VENV_BIN = Path(sys.executable).parent
SINGLE_CONCURRENCY = (1, 8, 32)
BATCH_ROWS = 100
# Issue 13's targets, at concurrency 32 with one product per request unless named otherwise.
TARGETS = {
    "rps_ratio_c32": (">=", 30.0),  # req/s against `mlflow models serve`
    "p99_ratio_c32": ("<=", 0.05),  # p99 against `mlflow models serve`'s
    "rps_ratio_c32_vs_bentoml": (">=", 4.0),
    "batch_share_of_ceiling": (">=", 0.9),  # 100-product batches against the in-process ceiling
}  # time to ready is bench_readiness's (its target is over HTTP; this bench reads a SQLite file)
BATCH_CONCURRENCY = 2
THREAD_LIMITS = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@dataclass(frozen=True)
class Server:
    """How to start one server and talk to it."""

    name: str
    path: str
    ready_path: str
    body_key: str
    source: str | None = None  # this server from another checkout (--compare-with)

    @property
    def is_ours(self) -> bool:
        return self.name == "this server" or self.source is not None

    def command(self, model: str, alias_uri: str, port: int) -> list[str]:
        if self.is_ours:
            return [sys.executable, "-m", "serving"]
        if self.name == BENTOML_NAME:
            return [
                BENTOML_PYTHON[0], "-m", "bentoml", "serve",
                "bench.bentoml_service:ProductClassifier",
                "--host", "127.0.0.1", "--port", str(port),
            ]  # fmt: skip
        return [
            str(VENV_BIN / "mlflow"), "models", "serve", "-m", alias_uri,
            "--env-manager", "local", "-w", str(WORKERS[0]), "-h", "127.0.0.1", "-p", str(port),
        ]  # fmt: skip

    def environment(self, tracking_uri: str, model: str, port: int) -> dict[str, str]:
        env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri}
        env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"  # mlflow execs `uvicorn`
        if self.is_ours:
            env |= {"MODEL_NAME": model, "HOST": "127.0.0.1", "PORT": str(port)}
        env["WORKERS"] = env["BENCH_WORKERS"] = str(WORKERS[0])
        if self.source is not None:
            env["PYTHONPATH"] = self.source
        if self.name == BENTOML_NAME:  # a local copy: mlflow-skinny cannot read a SQLite registry
            env |= {"BENCH_MODEL_URI": BENTOML_MODEL[0], "PYTHONPATH": str(REPO)}
        return env


OURS = Server("this server", "/v1/predict", "/readyz", "products")
MLFLOW = Server("mlflow models serve", "/invocations", "/ping", "dataframe_records")
BENTOML_NAME = "bentoml (adaptive batching)"
BENTOML = Server(BENTOML_NAME, "/predict", "/readyz", "products")
BEFORE_NAME = "this server, before"
BENTOML_PYTHON: list[str] = []  # set from --bentoml-python
BENTOML_MODEL: list[str] = []  # the champion downloaded to a folder, for BentoML
WORKERS = [1]  # processes per server (--workers)


def main() -> None:
    args = parse_arguments()
    WORKERS[0] = args.workers
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: install Debian's wrk (apt-get install -y wrk)")
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench-serving-"))
    workdir.mkdir(parents=True, exist_ok=True)
    tracking_uri, train_seconds = args.tracking_uri, None
    if tracking_uri is None:
        tracking_uri = f"sqlite:///{workdir}/mlflow.db"
        train_seconds = train_sample(workdir, tracking_uri, args.model_name)
    products = load_products()
    scripts = write_scripts(workdir, products)
    print(f"model {args.model_name}@champion in {tracking_uri}", flush=True)
    ceiling = measure_ceiling(tracking_uri, args.model_name, products, args.repeats)
    print(f"in-process ceiling: {statistics.median(ceiling):.0f} rows/s", flush=True)
    servers = [OURS, MLFLOW]
    if args.compare_with:
        before = Server(BEFORE_NAME, OURS.path, OURS.ready_path, OURS.body_key, args.compare_with)
        servers.insert(0, before)
        for shape in ("single", "batch"):
            scripts[(BEFORE_NAME, shape)] = scripts[(OURS.name, shape)]
    if args.bentoml_python:
        BENTOML_PYTHON.append(str(Path(args.bentoml_python).absolute()))
        BENTOML_MODEL.append(download_champion(tracking_uri, args.model_name, workdir))
        servers.append(BENTOML)
    runs: dict[str, list[dict[str, Any]]] = {server.name: [] for server in servers}
    for repeat in range(args.repeats):
        for server in servers:
            print(f"repeat {repeat + 1}/{args.repeats}: {server.name}", flush=True)
            runs[server.name].append(
                run_server(server, tracking_uri, args.model_name, scripts, args.duration, workdir)
            )
    report = summarize(runs, ceiling, args, tracking_uri, train_seconds)
    print_table(report)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {output}")


def download_champion(tracking_uri: str, model_name: str, workdir: Path) -> str:
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    return str(
        mlflow.artifacts.download_artifacts(
            f"models:/{model_name}@champion", dst_path=str(workdir / "bentoml-model")
        )
    )


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", help="reuse this MLflow store instead of training")
    parser.add_argument("--model-name", default="product-classifier")
    parser.add_argument("--duration", type=int, default=10, help="seconds per load scenario")
    parser.add_argument("--repeats", type=int, default=3, help="runs of every scenario")
    parser.add_argument("--workdir", help="folder for the store, scripts and logs (default: tmp)")
    parser.add_argument("--output", default=str(RESULTS / "serving.json"))
    parser.add_argument("--bentoml-python", help="python of a venv with BentoML (third server)")
    parser.add_argument(
        "--compare-with", help="also run this server from the `serving` package in this folder"
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes of every server (default 1)"
    )
    return parser.parse_args()


def train_sample(workdir: Path, tracking_uri: str, model_name: str) -> float:
    """Train and register the bundled sample with the default configuration."""
    print("training the bundled sample (default configuration) ...", flush=True)
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "training", "--quiet", "--model-name", model_name],
        cwd=workdir, env=env, capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"training failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return time.perf_counter() - started


def load_products() -> list[dict[str, Any]]:
    from training.catalog import bundled_sample

    with gzip.open(bundled_sample(), "rt", encoding="utf-8") as handle:
        products = [json.loads(line) for line in handle]
    for product in products:
        product.pop("main_cat", None)  # the label
    return products


def write_scripts(workdir: Path, products: list[dict[str, Any]]) -> dict[tuple[str, str], Path]:
    """wrk Lua scripts that cycle through real products: one per server and request shape."""
    scripts = {}
    singles = [[p] for p in products[:500]]
    batches = [products[i : i + BATCH_ROWS] for i in range(0, 20 * BATCH_ROWS, BATCH_ROWS)]
    for server in (OURS, MLFLOW, BENTOML):
        for shape, groups in (("single", singles), ("batch", batches)):
            bodies = [json.dumps({server.body_key: group}) for group in groups]
            path = workdir / f"{server.path.strip('/').replace('/', '-')}-{shape}.lua"
            path.write_text(lua_script(server.path, bodies), "utf-8")
            scripts[(server.name, shape)] = path
    return scripts


def lua_script(path: str, bodies: list[str]) -> str:
    quoted = ",\n".join(f"[==[{body}]==]" for body in bodies)
    return (
        f"local bodies = {{\n{quoted}\n}}\n"
        "local headers = {['Content-Type'] = 'application/json'}\n"
        "local counter = 0\n"
        "request = function()\n"
        "  counter = counter + 1\n"
        f"  return wrk.format('POST', '{path}', headers, bodies[(counter % #bodies) + 1])\n"
        "end\n"
    )


def measure_ceiling(
    tracking_uri: str, model_name: str, products: list[dict[str, Any]], repeats: int
) -> list[float]:
    """Rows/s of the model's own predict_proba on batches of 100, in a fresh process, after one
    pass over the same batches (the servers, too, see these products again and again)."""
    code = (
        "import json, sys, time, mlflow\n"
        "products = json.load(sys.stdin)\n"
        f"model = mlflow.pyfunc.load_model('models:/{model_name}@champion')\n"
        "wrapper = model.unwrap_python_model()\n"
        f"batches = [products[i:i + {BATCH_ROWS}] for i in range(0, len(products), {BATCH_ROWS})]\n"
        "for batch in batches: wrapper.predict_proba(batch)  # warm: compile, token caches\n"
        "rates = []\n"
        f"for _ in range({repeats}):\n"
        "    start = time.perf_counter()\n"
        "    for batch in batches: wrapper.predict_proba(batch)\n"
        "    rates.append(sum(map(len, batches)) / (time.perf_counter() - start))\n"
        "print(json.dumps(rates))\n"
    )
    env = {**os.environ, **THREAD_LIMITS, "MLFLOW_TRACKING_URI": tracking_uri}
    env["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    done = subprocess.run(
        [sys.executable, "-c", code], input=json.dumps(products[: 20 * BATCH_ROWS]),
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return [float(rate) for rate in json.loads(done.stdout.strip().splitlines()[-1])]


def run_server(
    server: Server,
    tracking_uri: str,
    model_name: str,
    scripts: dict[tuple[str, str], Path],
    duration: int,
    workdir: Path,
) -> dict[str, Any]:
    port = free_port()
    log = (workdir / f"{server.path.strip('/').replace('/', '-')}-{port}.log").open("wb")
    alias_uri = f"models:/{model_name}@champion"
    started = time.perf_counter()
    process = subprocess.Popen(
        server.command(model_name, alias_uri, port), cwd=workdir,
        env=server.environment(tracking_uri, model_name, port),
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        ready = wait_ready(url + server.ready_path, process, timeout=180) - started
        single, batch = scripts[(server.name, "single")], scripts[(server.name, "batch")]
        wrk(url, single, 8, 2)  # warm-up, not recorded
        result: dict[str, Any] = {"time_to_ready_s": ready}
        for concurrency in SINGLE_CONCURRENCY:
            result[f"single_c{concurrency}"] = wrk(url, single, concurrency, duration)
        result[f"batch{BATCH_ROWS}_c{BATCH_CONCURRENCY}"] = wrk(
            url, batch, BATCH_CONCURRENCY, duration
        )
        return result
    finally:
        stop(process)
        log.close()


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float) -> float:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return time.perf_counter()
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"{url} not ready within {timeout}s")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's whole process group (mlflow serve runs uvicorn as a child)."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass
    time.sleep(0.5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # leftovers of the group, if any


_LATENCY = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s|m)\s*$", re.MULTILINE)
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def wrk(url: str, script: Path, concurrency: int, duration: int) -> dict[str, float]:
    """One wrk run: requests/s, p50 and p99 latency (ms), and failed requests."""
    command = [
        "wrk", "-t1", f"-c{concurrency}", f"-d{duration}s", "--timeout", "30s", "--latency",
        "-s", str(script), url,
    ]  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    latency = {p: float(v) * _UNITS[u] for p, v, u in _LATENCY.findall(out)}
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    failed = int(non_2xx.group(1)) if non_2xx else 0
    failed += sum(int(n) for n in socket_errors.groups()) if socket_errors else 0
    return {"rps": rps, "p50_ms": latency["50"], "p99_ms": latency["99"], "failed": failed}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def summarize(
    runs: dict[str, list[dict[str, Any]]],
    ceiling: list[float],
    args: argparse.Namespace,
    tracking_uri: str,
    train_seconds: float | None,
) -> dict[str, Any]:
    servers = {name: medians(results) for name, results in runs.items()}
    ours, theirs = servers[OURS.name], servers[MLFLOW.name]
    batch_key = f"batch{BATCH_ROWS}_c{BATCH_CONCURRENCY}"
    ceiling_rows = statistics.median(ceiling)
    figures = {
        "rps_ratio_c32": ours["single_c32"]["rps"] / theirs["single_c32"]["rps"],
        "p99_ratio_c32": ours["single_c32"]["p99_ms"] / theirs["single_c32"]["p99_ms"],
        "batch_rows_per_s": ours[batch_key]["rps"] * BATCH_ROWS,
        "batch_share_of_ceiling": ours[batch_key]["rps"] * BATCH_ROWS / ceiling_rows,
        "time_to_ready_s": ours["time_to_ready_s"],
    }
    if BENTOML_NAME in servers:
        bento = servers[BENTOML_NAME]["single_c32"]
        figures["rps_ratio_c32_vs_bentoml"] = ours["single_c32"]["rps"] / bento["rps"]
        figures["p99_ratio_c32_vs_bentoml"] = ours["single_c32"]["p99_ms"] / bento["p99_ms"]
    if BEFORE_NAME in servers:
        before = servers[BEFORE_NAME]
        figures["rps_ratio_c32_vs_before"] = ours["single_c32"]["rps"] / before["single_c32"]["rps"]
        figures["batch_share_of_ceiling_before"] = (
            before[batch_key]["rps"] * BATCH_ROWS / ceiling_rows
        )
    targets = {key: bound for key, bound in TARGETS.items() if key in figures}
    met = {
        key: (figures[key] >= bound if op == ">=" else figures[key] <= bound)
        for key, (op, bound) in targets.items()
    }
    return {
        "command": " ".join(
            [Path(sys.executable).name, "-m", "bench.bench_serving", *sys.argv[1:]]
        ),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_at_end": os.getloadavg(),
        },
        "settings": {
            "duration_s": args.duration,
            "repeats": args.repeats,
            "load_generator": "wrk -t1 (Lua POST script)",
            "workers": args.workers,
        },
        "model": {
            "name": args.model_name,
            "tracking_uri": tracking_uri,
            "train_seconds": train_seconds,
        },
        "ceiling_rows_per_s": {"median": ceiling_rows, "runs": ceiling},
        "servers": servers,
        "runs": runs,
        "figures": figures,
        "targets": {k: {"op": op, "bound": b, "met": met[k]} for k, (op, b) in targets.items()},
    }


def medians(results: list[dict[str, Any]]) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "time_to_ready_s": statistics.median(r["time_to_ready_s"] for r in results)
    }
    for key, value in results[0].items():
        if isinstance(value, dict):
            summary[key] = {
                field: statistics.median(r[key][field] for r in results) for field in value
            }
            summary[key]["failed"] = sum(r[key]["failed"] for r in results)
    return summary


def print_table(report: dict[str, Any]) -> None:
    names = list(report["servers"])
    columns = [report["servers"][name] for name in names]
    print(f"\nmedians of {report['settings']['repeats']} runs, one worker process each")
    print(f"{'scenario':<24}" + "".join(f"{name:>34}" for name in names))
    for key in (k for k in columns[0] if isinstance(columns[0][k], dict)):
        cells = [
            f"{s[key]['rps']:8.1f} req/s {s[key]['p50_ms']:7.1f}/{s[key]['p99_ms']:7.1f} ms"
            + (f" ({s[key]['failed']} failed)" if s[key]["failed"] else "")
            for s in columns
        ]
        print(f"{key:<24}" + "".join(f"{cell:>34}" for cell in cells))
    ready = [f"{s['time_to_ready_s']:.1f} s" for s in columns]
    print(f"{'time to ready':<24}" + "".join(f"{cell:>34}" for cell in ready))
    ceiling = report["ceiling_rows_per_s"]["median"]
    print(f"in-process ceiling (batches of {BATCH_ROWS}): {ceiling:.0f} rows/s")
    for key, figure in report["figures"].items():
        target = report["targets"].get(key)
        verdict = (
            f"  target {target['op']} {target['bound']}: {'met' if target['met'] else 'NOT met'}"
            if target
            else ""
        )
        print(f"  {key:<26}{figure:10.3f}{verdict}")


if __name__ == "__main__":
    main()
