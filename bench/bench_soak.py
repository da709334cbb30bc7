"""Soak benchmark: a fixed request rate against the full-catalog model for N minutes.

    .venv/bin/python -m bench.bench_soak --minutes 30            # the target run
    .venv/bin/python -m bench.bench_soak --minutes 3 --rate 20   # a short look
    .venv/bin/python -m bench.bench_soak --model-uri path/to/model-folder

Starts `product-serve` on loopback with the model (by default the full-catalog model of the
footprint benchmark, trained once and cached in build/bench/), then sends requests of 1 to 10 real
catalog products at a fixed rate from a pool of client threads (open loop: a slow answer does not
slow the sender). Every minute it prints the requests sent, errors (anything but 200, or no
answer), and p50/p99 latency; at the start (after warm-up) and the end it records the server's
resident memory and open files. Targets: 0 errors and RSS growth under 5% over 30 minutes.
Writes bench/results/soak.json.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.full_model import (
    catalog_products,
    default_catalog,
    full_catalog_model,
    percentile,
    post,
    process_figures,
    start_server,
    write_results,
)
from tests.support import stop_process

TARGETS = {"errors": 0, "rss_growth_pct": 5.0}


class Minute:
    """Latencies and errors of the requests started in one minute."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.errors: dict[str, int] = {}
        self.lock = threading.Lock()

    def record(self, seconds: float, outcome: str) -> None:
        with self.lock:
            if outcome == "200":
                self.latencies.append(seconds)
            else:
                self.errors[outcome] = self.errors.get(outcome, 0) + 1

    def summary(self, index: int) -> dict[str, Any]:
        with self.lock:
            return {
                "minute": index + 1,
                "requests": len(self.latencies) + sum(self.errors.values()),
                "errors": dict(self.errors),
                "p50_ms": round(percentile(self.latencies, 0.50) * 1000, 1),
                "p99_ms": round(percentile(self.latencies, 0.99) * 1000, 1),
            }


def one_request(url: str, body: bytes, minute: Minute) -> None:
    started = time.perf_counter()
    try:
        outcome = str(post(url, body, timeout=30))
    except OSError as error:
        outcome = type(error).__name__
    minute.record(time.perf_counter() - started, outcome)


def drive(url: str, bodies: list[bytes], minutes: float, rate: float) -> list[dict[str, Any]]:
    """Send `rate` requests a second for `minutes`, printing each minute's figures."""
    summaries: list[dict[str, Any]] = []
    period = 1.0 / rate
    start = time.monotonic()
    end = start + minutes * 60
    current, index, sent = Minute(), 0, 0
    with ThreadPoolExecutor(max(8, int(rate * 2))) as pool:
        while (now := time.monotonic()) < end:
            if now - start >= (index + 1) * 60:
                summaries.append(report_minute(current, index))
                current, index = Minute(), index + 1
            pool.submit(one_request, url, random.choice(bodies), current)
            sent += 1
            time.sleep(max(0.0, start + sent * period - time.monotonic()))
    summaries.append(report_minute(current, index))
    return summaries


def report_minute(minute: Minute, index: int) -> dict[str, Any]:
    time.sleep(0.5)  # let the last requests of the minute finish
    summary = minute.summary(index)
    print(
        f"minute {summary['minute']:3}: {summary['requests']:6} requests, "
        f"errors {summary['errors'] or 0}, p50 {summary['p50_ms']} ms, p99 {summary['p99_ms']} ms",
        flush=True,
    )
    return summary


def request_bodies(products: list[dict[str, Any]], count: int = 500) -> list[bytes]:
    rng = random.Random(7)
    return [
        json.dumps({"products": rng.sample(products, rng.randint(1, 10))}).encode()
        for _ in range(count)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=20.0, help="requests per second")
    parser.add_argument("--model-uri", help="a saved MLflow model folder (default: full catalog)")
    parser.add_argument("--catalog", type=Path, default=default_catalog())
    args = parser.parse_args()

    model = args.model_uri or str(full_catalog_model(args.catalog))
    bodies = request_bodies(catalog_products(args.catalog, 5000))
    with tempfile.TemporaryDirectory() as scratch_dir:
        tmpdir = Path(scratch_dir) / "tmp"
        tmpdir.mkdir()
        process, url = start_server(model, tmpdir)
        try:
            for body in bodies[:50]:  # warm-up, not measured
                post(url + "/v1/predict", body)
            start = process_figures(process.pid)
            print(f"start: {start}", flush=True)
            minutes = drive(url + "/v1/predict", bodies, args.minutes, args.rate)
            end = process_figures(process.pid)
            print(f"end:   {end}", flush=True)
            left_in_tmpdir = len(list(tmpdir.iterdir()))
        finally:
            stop_process(process)
    report(args, model, start, end, minutes, left_in_tmpdir)


def report(
    args: argparse.Namespace,
    model: str,
    start: dict[str, float],
    end: dict[str, float],
    minutes: list[dict[str, Any]],
    left_in_tmpdir: int,
) -> None:
    errors = sum(sum(m["errors"].values()) for m in minutes)
    growth = (end["rss_mb"] - start["rss_mb"]) / start["rss_mb"] * 100
    figures = {
        "minutes": args.minutes,
        "rate_per_second": args.rate,
        "model": model,
        "requests": sum(m["requests"] for m in minutes),
        "errors": errors,
        "start": start,
        "end": end,
        "rss_growth_pct": round(growth, 2),
        "files_left_in_tmpdir": left_in_tmpdir,
        "per_minute": minutes,
        "note": "shared 2-core machine, other jobs running; compare within one run",
    }
    met = {"errors": errors <= TARGETS["errors"], "rss_growth_pct": growth < 5.0}
    path = write_results("soak", {"targets": TARGETS, "met": met, "figures": figures})
    print(f"{figures['requests']} requests, {errors} errors, RSS {growth:+.2f}% -> {path}")


if __name__ == "__main__":
    main()
