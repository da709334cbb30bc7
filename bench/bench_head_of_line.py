"""Head-of-line benchmark: a one-product request beside four maximum-size requests.

    .venv/bin/python -m bench.bench_head_of_line
    .venv/bin/python -m bench.bench_head_of_line --seconds 60 --model-uri path/to/model-folder

Starts `product-serve` on loopback with the full-catalog model (see bench/full_model.py). First
measures a one-product request every 100 ms alone (the baseline), then again while four clients
keep maximum-size requests in flight back to back (1000 products each, long descriptions, the
body just under MAX_BODY_BYTES). Large requests are cut into BATCH_MAX_SIZE chunks that queue
behind small requests, so the small one should wait for at most the model call under way.
Target: the one-product request's p99 under 1 s with the four large requests in flight.
Writes bench/results/head_of_line.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.full_model import (
    catalog_products,
    default_catalog,
    full_catalog_model,
    percentile,
    post,
    start_server,
    write_results,
)
from tests.support import stop_process

TARGET_P99_SECONDS = 1.0
LARGE_PRODUCTS = 1000
MAX_BODY_BYTES = 10 * 1024 * 1024


def large_body(products: list[dict[str, Any]]) -> bytes:
    """1000 real products whose descriptions are padded with catalog text to just under the
    body limit (about 10 KB each)."""
    text = " ".join(str(p.get("description", "")) for p in products[:400])
    per_product = (MAX_BODY_BYTES - 200_000) // LARGE_PRODUCTS - 300
    rows = []
    for i in range(LARGE_PRODUCTS):
        product = dict(products[i % len(products)])
        start = (i * 97) % max(1, len(text) - per_product)
        product["description"] = text[start : start + per_product]
        rows.append(product)
    body = json.dumps({"products": rows}).encode()
    assert len(body) < MAX_BODY_BYTES, len(body)
    return body


def probe(url: str, bodies: list[bytes], seconds: float) -> dict[str, Any]:
    """One-product requests every 100 ms for `seconds`; their latencies."""
    latencies, statuses = [], []
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        started = time.perf_counter()
        statuses.append(post(url, bodies[i % len(bodies)], timeout=60))
        latencies.append(time.perf_counter() - started)
        i += 1
        time.sleep(max(0.0, 0.1 - (time.perf_counter() - started)))
    return {
        "requests": len(latencies),
        "non_200": sum(1 for s in statuses if s != 200),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 1),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1),
    }


class LargeClients:
    """Four threads keeping one large request each in flight until stopped."""

    def __init__(self, url: str, body: bytes, count: int = 4) -> None:
        self.url, self.body = url, body
        self.stopping = threading.Event()
        self.durations: list[float] = []
        self.statuses: list[int] = []
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(count)]

    def run(self) -> None:
        while not self.stopping.is_set():
            started = time.perf_counter()
            self.statuses.append(post(self.url, self.body, timeout=600))
            self.durations.append(time.perf_counter() - started)

    def __enter__(self) -> LargeClients:
        for thread in self.threads:
            thread.start()
        time.sleep(3)  # all four bodies sent and being worked on
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=600)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--model-uri", help="a saved MLflow model folder (default: full catalog)")
    parser.add_argument("--catalog", type=Path, default=default_catalog())
    parser.add_argument("--batch-max-size", type=int, default=100, help="BATCH_MAX_SIZE")
    parser.add_argument("--model-threads", type=int, default=2, help="MODEL_THREADS")
    args = parser.parse_args()

    model = args.model_uri or str(full_catalog_model(args.catalog))
    products = catalog_products(args.catalog, 2000)
    small = [json.dumps({"products": [p]}).encode() for p in products[:200]]
    large = large_body(products)
    with tempfile.TemporaryDirectory() as scratch_dir:
        tmpdir = Path(scratch_dir) / "tmp"
        tmpdir.mkdir()
        process, url = start_server(
            model,
            tmpdir,
            BATCH_MAX_SIZE=str(args.batch_max_size),
            MODEL_THREADS=str(args.model_threads),
        )
        try:
            url += "/v1/predict"
            alone = probe(url, small, args.seconds / 3)
            print(f"one product, alone:            {alone}", flush=True)
            with LargeClients(url, large) as clients:
                beside = probe(url, small, args.seconds)
            print(f"one product, beside 4 x large: {beside}", flush=True)
        finally:
            stop_process(process)
    report(args, model, alone, beside, clients, len(large))


def report(
    args: argparse.Namespace,
    model: str,
    alone: dict[str, Any],
    beside: dict[str, Any],
    clients: LargeClients,
    large_bytes: int,
) -> None:
    figures = {
        "model": model,
        "batch_max_size": args.batch_max_size,
        "model_threads": args.model_threads,
        "large_request": {"products": LARGE_PRODUCTS, "bytes": large_bytes},
        "large_requests_completed": len(clients.durations),
        "large_statuses": sorted(set(clients.statuses)),
        "large_seconds_median": round(percentile(clients.durations, 0.5), 2),
        "small_alone": alone,
        "small_beside_large": beside,
        "note": "shared 2-core machine, other jobs running; compare within one run",
    }
    met = {"small_p99_under_1s": beside["p99_ms"] < TARGET_P99_SECONDS * 1000}
    target = {"small_p99_seconds": TARGET_P99_SECONDS}
    name = f"head_of_line_b{args.batch_max_size}_t{args.model_threads}"
    path = write_results(name, {"targets": target, "met": met, "figures": figures})
    print(f"p99 beside large requests: {beside['p99_ms']} ms (target < 1000 ms) -> {path}")


if __name__ == "__main__":
    main()
