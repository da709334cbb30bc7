"""Time to ready: from starting `product-serve` to `/readyz` answering 200, download included.

    .venv/bin/python -m bench.bench_readiness                 # sample and full-catalog models
    .venv/bin/python -m bench.bench_readiness --skip-full     # the sample model only
    git worktree add --detach /tmp/base main                  # then, before/after in one run:
    .venv/bin/python -m bench.bench_readiness --baseline-code /tmp/base
    .venv/bin/python -m bench.bench_readiness --mlflow-server     # through HTTP, as deployed

Registers the sample model (`product-train` on the bundled sample, the quick start's model) and
the full-catalog model (see bench/full_model.py) in a fresh SQLite store, then starts the server
on `models:/NAME@champion` --repeats times per model, one at a time, and prints the median and the
slowest start. After each start it times the first few one-product requests (what they cost
while the forest walk compiles in the background). With --baseline-code, every model is also
served by that checkout's `serving`, from a copy of the model carrying that checkout's
`product_model` (the same trees), the two starts alternating so that both see the same load.
Targets (issue 13): 3 s for the sample model, 5 s for the full-catalog model.
Writes bench/results/readiness.json (readiness-mlflow-server.json with --mlflow-server).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.full_model import REPO, default_catalog, full_catalog_model, write_results
from tests.support import (
    free_port,
    http_json,
    start_mlflow_server,
    stop_process,
    wait_for_http,
)

SAMPLE = REPO / "training" / "data" / "sample_catalog.jsonl.gz"
TARGETS = {"sample": 3.0, "full": 5.0}
POLL_SECONDS = 0.02  # tests.support polls every 0.3 s by default: too coarse for seconds to ready
FIRST_REQUESTS = 5
PRODUCT = {"title": "Wireless optical mouse with USB receiver", "description": "2.4 GHz, 1600 dpi"}


def register_sample(uri: str, scratch: Path) -> None:
    train = Path(sys.executable).parent / "product-train"
    subprocess.run(
        [str(train), "--data", str(SAMPLE), "--tracking-uri", uri, "--model-name", "sample", "-q"],
        check=True,
        cwd=scratch,  # the store's artifacts go under the scratch folder
    )


def register_folder(uri: str, folder: Path, name: str) -> None:
    """Upload the model folder into the store (through the server, if `uri` is one), register it
    and make it champion."""
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(uri)
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(folder), "model")
    version = mlflow.register_model(f"runs:/{run.info.run_id}/model", name)
    MlflowClient(uri).set_registered_model_alias(name, "champion", version.version)


def register_full(uri: str, scratch: Path, catalog: Path) -> None:
    # Registering a folder makes MLflow write into it: register a copy.
    copy = shutil.copytree(full_catalog_model(catalog), scratch / "full-model")
    register_folder(uri, copy, "full")


def register_baseline(store: str, name: str, uri: str, baseline: Path, scratch: Path) -> str:
    """A copy of `name`'s champion in `store` carrying the baseline's `product_model` (the same
    trees), registered in `uri` (the scratch store) as NAME-baseline."""
    import mlflow

    mlflow.set_tracking_uri(store)
    where = str(scratch / f"{name}-baseline")
    folder = Path(mlflow.artifacts.download_artifacts(f"models:/{name}@champion", dst_path=where))
    code = folder / "code" / "product_model"
    shutil.rmtree(code)
    shutil.copytree(baseline / "product_model", code, ignore=shutil.ignore_patterns("__pycache__"))
    register_folder(uri, folder, f"{name}-baseline")
    return f"{name}-baseline"


def time_to_ready(uri: str, name: str, scratch: Path, code: Path | None) -> dict[str, Any]:
    """Seconds from start to /readyz 200, then the first one-product requests' milliseconds."""
    port = free_port()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": uri,
        "MODEL_NAME": name,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "RELOAD_INTERVAL_SECONDS": "0",
        "LOG_LEVEL": "WARNING",
        "TMPDIR": str(scratch),
    }
    if code is not None:
        env["PYTHONPATH"] = str(code)  # the baseline's `serving` before the installed one
    serve = Path(sys.executable).parent / "product-serve"
    began = time.perf_counter()
    process = subprocess.Popen(
        [str(serve)], env=env, stdout=subprocess.DEVNULL, cwd=scratch, start_new_session=True
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/readyz", 300, process, poll=POLL_SECONDS)
        seconds = time.perf_counter() - began
        return {"seconds": seconds, "first_requests_ms": first_requests(port)}
    finally:
        stop_process(process)


def first_requests(port: int) -> list[float]:
    times = []
    for _ in range(FIRST_REQUESTS):
        began = time.perf_counter()
        status, answer = http_json(
            "POST", f"http://127.0.0.1:{port}/v1/predict", {"products": [PRODUCT]}
        )
        times.append(round((time.perf_counter() - began) * 1000, 1))
        if status != 200:
            raise SystemExit(f"/v1/predict answered {status}: {answer}")
    return times


def summary(name: str, starts: list[dict[str, Any]]) -> dict[str, Any]:
    seconds = [start["seconds"] for start in starts]
    return {
        "median_seconds": statistics.median(seconds),
        "max_seconds": max(seconds),
        "target_seconds": TARGETS[name.removesuffix("-baseline")],
        "runs": seconds,
        "first_requests_ms": [start["first_requests_ms"] for start in starts],
    }


@contextmanager
def tracking_store(scratch: Path, args: argparse.Namespace) -> Iterator[str]:
    """A fresh SQLite store, or an `mlflow server` on it (stopped on the way out)."""
    if not args.mlflow_server:
        yield f"sqlite:///{scratch}/mlflow.db"
        return
    port = free_port()
    server = start_mlflow_server(scratch / "server", port)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health", 120, server)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(server)


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=Path, default=default_catalog())
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-full", action="store_true")
    parser.add_argument(
        "--full-tracking-uri",
        help="serve the full-catalog model from this store's 'bench' champion (as kept by "
        "bench_training --keep DIR: sqlite:///DIR/full/mlflow.db) instead of registering one; "
        "only read, and it must carry code the baseline can load if --baseline-code is given",
    )
    parser.add_argument(
        "--mlflow-server",
        action="store_true",
        help="register into an `mlflow server` on loopback and serve from it over HTTP, as a "
        "deployed server does (the serving image has mlflow-skinny: no SQLite store)",
    )
    parser.add_argument(
        "--baseline-code",
        type=Path,
        help="a checkout of the commit to compare with (git worktree add --detach DIR main)",
    )
    return parser.parse_args()


def main() -> None:
    args = parse_arguments()
    report: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as folder, tracking_store(Path(folder), args) as uri:
        scratch = Path(folder)
        register_sample(uri, scratch)
        models = {"sample": (uri, "sample")}
        if args.full_tracking_uri:
            models["full"] = (args.full_tracking_uri, "bench")
        elif not args.skip_full:
            register_full(uri, scratch, args.catalog)
            models["full"] = (uri, "full")
        for name, (store, registered) in models.items():
            variants: dict[str, tuple[str, str, Path | None]] = {name: (store, registered, None)}
            if args.baseline_code:
                baseline = args.baseline_code.resolve()
                copy = register_baseline(store, registered, uri, baseline, scratch)
                variants[f"{name}-baseline"] = (uri, copy, baseline)
            starts: dict[str, list[dict[str, Any]]] = {variant: [] for variant in variants}
            for _ in range(args.repeats):
                for variant, (variant_store, model, code) in variants.items():
                    starts[variant].append(time_to_ready(variant_store, model, scratch, code))
            for variant, runs in starts.items():
                report[variant] = summary(variant, runs)
                print_summary(variant, report[variant])
    store = "mlflow server over HTTP" if args.mlflow_server else "SQLite file"
    name = "readiness-mlflow-server" if args.mlflow_server else "readiness"
    write_results(name, {"cpus": os.cpu_count(), "store": store, "models": report})


def print_summary(name: str, figures: dict[str, Any]) -> None:
    first = statistics.median(runs[0] for runs in figures["first_requests_ms"])
    print(
        f"{name:16} ready in {figures['median_seconds']:.2f} s median, "
        f"{figures['max_seconds']:.2f} s slowest (target {figures['target_seconds']} s); "
        f"first request {first:.0f} ms median",
        flush=True,
    )


if __name__ == "__main__":
    main()
