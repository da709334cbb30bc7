"""Time to ready: from starting `product-serve` to `/readyz` answering 200, download included.

    .venv/bin/python -m bench.bench_readiness                 # sample and full-catalog models
    .venv/bin/python -m bench.bench_readiness --skip-full     # the sample model only

Registers the sample model (`product-train` on the bundled sample, the quick start's model) and
the full-catalog model (see bench/full_model.py) in a fresh SQLite store, then starts the server
on `models:/NAME@champion` --repeats times per model, one at a time, and prints the median and the
slowest start. Targets (issue 13): 3 s for the sample model, 5 s for the full-catalog model.
Writes bench/results/readiness.json.
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
from pathlib import Path
from typing import Any

from bench.full_model import REPO, default_catalog, full_catalog_model, write_results
from tests.support import free_port, stop_process, wait_for_http

SAMPLE = REPO / "training" / "data" / "sample_catalog.jsonl.gz"
TARGETS = {"sample": 3.0, "full": 5.0}


def register_sample(uri: str) -> None:
    train = Path(sys.executable).parent / "product-train"
    subprocess.run(
        [str(train), "--data", str(SAMPLE), "--tracking-uri", uri, "--model-name", "sample", "-q"],
        check=True,
    )


def register_full(uri: str, scratch: Path, catalog: Path) -> None:
    import mlflow
    from mlflow import MlflowClient

    # Registering a folder makes MLflow write into it: register a copy.
    copy = shutil.copytree(full_catalog_model(catalog), scratch / "full-model")
    client = MlflowClient(uri)
    mlflow.set_tracking_uri(uri)
    version = mlflow.register_model(str(copy), "full")
    client.set_registered_model_alias("full", "champion", version.version)


def time_to_ready(uri: str, name: str, scratch: Path) -> float:
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
    serve = Path(sys.executable).parent / "product-serve"
    began = time.perf_counter()
    process = subprocess.Popen(
        [str(serve)], env=env, stdout=subprocess.DEVNULL, cwd=scratch, start_new_session=True
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/readyz", 300, process)
        return time.perf_counter() - began
    finally:
        stop_process(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=Path, default=default_catalog())
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-full", action="store_true")
    parser.add_argument(
        "--full-tracking-uri",
        help="serve the full-catalog model from this store's 'bench' champion (as kept by "
        "bench_training --keep DIR: sqlite:///DIR/full/mlflow.db) instead of registering one",
    )
    args = parser.parse_args()
    report: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        uri = f"sqlite:///{scratch}/mlflow.db"
        register_sample(uri)
        models = {"sample": (uri, "sample")}
        if args.full_tracking_uri:
            models["full"] = (args.full_tracking_uri, "bench")
        elif not args.skip_full:
            register_full(uri, scratch, args.catalog)
            models["full"] = (uri, "full")
        for name, (store, registered) in models.items():
            seconds = [time_to_ready(store, registered, scratch) for _ in range(args.repeats)]
            report[name] = {
                "median_seconds": statistics.median(seconds),
                "max_seconds": max(seconds),
                "target_seconds": TARGETS[name],
                "runs": seconds,
            }
            print(
                f"{name:7} ready in {report[name]['median_seconds']:.2f} s median, "
                f"{report[name]['max_seconds']:.2f} s slowest (target {TARGETS[name]} s)",
                flush=True,
            )
    write_results("readiness", {"cpus": os.cpu_count(), "models": report})


if __name__ == "__main__":
    main()
