"""Model footprint benchmark: the full-catalog champion, stock forest vs compact forest.

    .venv/bin/python -m bench.bench_footprint --catalog ../shared/data/apt-catalog.jsonl.gz

Fits the default pipeline on the full catalog (stratified 20% holdout, seed 42), then side by side
for the stock scikit-learn forest and its compact form: pickled size, single-row and batch latency
in process, macro-F1 and the largest probability difference over the whole holdout. It then logs
and registers the compact model in a real `mlflow server` on loopback and measures what a serving
pod sees: the artifact size, the time from starting `product-serve` to `/readyz` answering 200
(model download included), the server's resident memory after warm-up, and the HTTP latency of one
product; and checks that `mlflow models serve` serves the same registered model.
Writes bench/results/footprint.json.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import mlflow
import numpy as np

from tests.support import (
    free_port,
    start_mlflow_models_serve,
    start_mlflow_server,
    stop_process,
    wait_for_http,
)
from training import registry, tracking
from training.catalog import load_catalog
from training.catalog_split import split_catalog, split_definition
from training.config import TrainConfig
from training.evaluate import evaluate
from training.model_metadata import model_metadata
from training.pipeline import build_pipeline, for_serving, model_input

RESULTS = Path(__file__).parent / "results"
TARGETS = {
    "artifact_mb": 200,
    "serving_rss_mb": 1024,
    "ready_seconds": 15,
    "max_proba_diff": 1e-6,
    "f1_macro": 0.80,
    "accuracy": 0.88,
}


def median_ms(call: Any, rows: list[Any]) -> float:
    call(rows[0])
    times = []
    for row in rows:
        start = time.perf_counter()
        call(row)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def in_process(pipeline: Any, holdout: Any, n_single: int) -> dict[str, float]:
    singles = [holdout.iloc[i : i + 1].to_dict("records") for i in range(n_single)]
    batch = holdout.head(1000).to_dict("records")
    start = time.perf_counter()
    pipeline.predict_proba(batch)
    batch_seconds = time.perf_counter() - start
    return {
        "single_row_ms": median_ms(pipeline.predict_proba, singles),
        "batch_1000_seconds": batch_seconds,
        "batch_rows_per_second": 1000 / batch_seconds,
        "pickled_mb": len(pickle.dumps(pipeline, protocol=5)) / 1e6,
    }


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def post_json(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        command, env={**os.environ, **env}, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


def serve_and_measure(uri: str, holdout: Any, scratch: Path) -> dict[str, float]:
    """Start product-serve on the registered champion; time to ready, RSS, HTTP latency."""
    port = free_port()
    env = {
        "MLFLOW_TRACKING_URI": uri,
        "MODEL_NAME": "footprint",
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "RELOAD_INTERVAL_SECONDS": "0",
        "LOG_LEVEL": "WARNING",
    }
    began = time.perf_counter()
    server = start([str(Path(sys.executable).parent / "product-serve")], env, scratch / "serve.log")
    try:
        wait_for_http(f"http://127.0.0.1:{port}/readyz", 300, server)
        ready = time.perf_counter() - began
        url = f"http://127.0.0.1:{port}/v1/predict"
        products = holdout.head(200).to_dict("records")
        latency = median_ms(
            lambda p: post_json(url, {"products": [p]}),
            [{k: v for k, v in p.items() if v == v} for p in products],
        )
        post_json(
            url, {"products": [{k: v for k, v in p.items() if v == v} for p in products[:100]]}
        )
        return {
            "ready_seconds": ready,
            "serving_rss_mb": rss_mb(server.pid),
            "http_single_product_ms": latency,
        }
    finally:
        stop(server)


def mlflow_models_serve(uri: str, scratch: Path, example: dict[str, Any]) -> dict[str, float]:
    port = free_port()
    began = time.perf_counter()
    server = start_mlflow_models_serve(
        "models:/footprint@champion", uri, port, scratch / "mlflow-serve.log"
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/ping", 300, server)
        ready = time.perf_counter() - began
        answer = post_json(f"http://127.0.0.1:{port}/invocations", {"dataframe_records": [example]})
        return {
            "ready_seconds": ready,
            "label": answer["predictions"][0]["label"],
            "rss_mb": rss_mb(server.pid),
        }
    finally:
        stop_process(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=Path, default=Path("../shared/data/apt-catalog.jsonl.gz"))
    parser.add_argument("--single-rows", type=int, default=200)
    args = parser.parse_args()

    config = TrainConfig(data=str(args.catalog.resolve()), model_name="footprint", compact=False)
    catalog = load_catalog(config)
    definition = split_definition(config)
    train_rows, test_rows = split_catalog(catalog, definition)
    y_train = train_rows["label"].to_numpy()
    holdout = model_input(test_rows, config)
    print(f"fitting the default pipeline on {len(train_rows)} rows ...", flush=True)
    started = time.perf_counter()
    stock = build_pipeline(config, y_train).fit(model_input(train_rows, config), y_train)
    fit_seconds = time.perf_counter() - started
    stock.named_steps["forest"].set_params(n_jobs=1)  # no per-call thread start-up
    stock_serving = for_serving(stock, compact=False)
    compact = for_serving(stock, compact=True)

    stock_proba = stock_serving.predict_proba(holdout)
    compact_proba = compact.predict_proba(holdout)
    quality = evaluate(test_rows["label"].to_numpy(), compact_proba, compact.classes_).metrics
    figures: dict[str, Any] = {
        "fit_seconds": fit_seconds,
        "holdout_rows": len(holdout),
        "max_proba_diff": float(np.abs(stock_proba - compact_proba).max()),
        "same_labels": bool((stock_proba.argmax(1) == compact_proba.argmax(1)).all()),
        "quality": quality,
        "stock": in_process(stock_serving, holdout, args.single_rows),
        "compact": in_process(compact, holdout, args.single_rows),
        "compact_forest_mb": compact.named_steps["forest"].nbytes / 1e6,
        "nodes": int(compact.named_steps["forest"].child_.size),
    }
    del stock, stock_serving

    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        port = free_port()
        server = start_mlflow_server(scratch, port)
        uri = f"http://127.0.0.1:{port}"
        try:
            wait_for_http(f"{uri}/health", 120, server)
            client = tracking.connect(uri)
            mlflow.set_experiment("footprint")
            with mlflow.start_run() as run:
                evaluation = evaluate(
                    test_rows["label"].to_numpy(), compact_proba, compact.classes_
                )
                model_uri = registry.log_model(
                    compact,
                    model_metadata(config, catalog, definition, evaluation, run.info.run_id),
                    holdout.head(3),
                )
            version = registry.register(client, model_uri, run.info.run_id, "footprint")
            registry.promote(client, "footprint", version.version)
            files = list((scratch / "artifacts").rglob("*"))
            figures["artifact_mb"] = sum(f.stat().st_size for f in files if f.is_file()) / 1e6
            figures["serving"] = serve_and_measure(uri, holdout, scratch)
            example = {k: v for k, v in holdout.iloc[0].to_dict().items() if v == v}
            figures["mlflow_models_serve"] = mlflow_models_serve(uri, scratch, example)
        finally:
            stop_process(server)

    report(figures)


def report(figures: dict[str, Any]) -> None:
    stock, compact = figures["stock"], figures["compact"]
    print(f"\n{'':28} {'stock forest':>14} {'compact forest':>15}")
    for key, label in (
        ("pickled_mb", "pickled size (MB)"),
        ("single_row_ms", "single row (ms)"),
        ("batch_1000_seconds", "batch of 1000 (s)"),
    ):
        print(f"{label:28} {stock[key]:14.2f} {compact[key]:15.2f}")
    serving = figures["serving"]
    quality = figures["quality"]
    lines = [
        ("artifact size (MB)", figures["artifact_mb"], TARGETS["artifact_mb"], "<="),
        (
            "serving RSS after warm-up (MB)",
            serving["serving_rss_mb"],
            TARGETS["serving_rss_mb"],
            "<=",
        ),
        ("time to ready (s)", serving["ready_seconds"], TARGETS["ready_seconds"], "<="),
        ("max |proba diff|", figures["max_proba_diff"], TARGETS["max_proba_diff"], "<="),
        ("macro-F1", quality["f1_macro"], TARGETS["f1_macro"], ">="),
        ("accuracy", quality["accuracy"], TARGETS["accuracy"], ">="),
    ]
    met = {}
    print(f"\n{'figure':32} {'value':>12} {'target':>10}")
    for label, value, target, sense in lines:
        ok = value <= target if sense == "<=" else value >= target
        met[label] = ok
        print(f"{label:32} {value:12.4g} {sense}{target:<9g} {'ok' if ok else 'NOT MET'}")
    print(f"HTTP single product (ms, median): {serving['http_single_product_ms']:.1f}")
    print(
        f"mlflow models serve: ready in {figures['mlflow_models_serve']['ready_seconds']:.1f}s, "
        f"answered {figures['mlflow_models_serve']['label']!r}"
    )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "footprint.json"
    out.write_text(
        json.dumps({"targets": TARGETS, "met": met, "figures": figures}, indent=1, default=str)
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
