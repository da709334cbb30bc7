"""Drift benchmark: do the model-health scores tell in-distribution traffic from shifted traffic,
and does computing them leave single-product latency alone?

    .venv/bin/python -m bench.bench_drift          # trains a model of the shared catalog
    .venv/bin/python -m bench.bench_drift --tracking-uri sqlite:////path/mlflow.db --data CATALOG

Trains (or reuses) a model of the shared catalog, serves it with `python -m serving`, and sends
in turn `--window` products of each stream, reading /metrics after each (a scrape slides the
window, so each stream's scores are its own):
- in distribution: products the model held out (its own hash split of the catalog);
- three classes: held-out products of the three most frequent classes only;
- descriptions removed: held-out products without their description and feature text;
- titles only, shortened: held-out products reduced to the first 3 words of their title.
Prints every drift score per stream beside the warning and critical levels, then compares
single-product p50 latency of this server against main's (a `git worktree` of `main`, same venv),
interleaved in rounds, while /metrics is scraped every second. Writes bench/results/drift.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support import free_port, stop_process, wait_for_http
from training.drift_report import LEVELS

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
SHARED = Path("/work/shared/data/apt-catalog.jsonl.gz")
MODEL = "drift-bench"
BEFORE_DRIFT = "bdc680f^1"  # main just before drift monitoring was merged


def main() -> None:
    args = parse_arguments()
    work = Path(tempfile.mkdtemp(prefix="bench-drift-"))
    tracking = args.tracking_uri or f"sqlite:///{work}/mlflow.db"
    config = training_config(args, tracking)
    if not args.tracking_uri:
        train_model(config, work)
    holdout, fields = held_out_products(config)
    streams = make_streams(holdout, fields, args.window, random.Random(7))
    server = start_server(REPO, tracking, args, work / "serve.log")
    try:
        scores = {name: drift_scores(server, products) for name, products in streams.items()}
        latency = compare_latency(tracking, args, work, server)
    finally:
        stop_process(server.process)
    report(args, config, scores, latency)


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracking-uri", help="reuse a store whose champion is the model")
    parser.add_argument(
        "--model-name", default=MODEL, help="the registered model (bench_training --keep: 'bench')"
    )
    parser.add_argument("--data", type=Path, default=SHARED, help="the catalog")
    parser.add_argument("--max-rows", type=int, default=0, help="rows to train on (0: all)")
    parser.add_argument("--n-estimators", type=int, default=300)
    parser.add_argument("--window", type=int, default=2000, help="DRIFT_WINDOW_SIZE")
    parser.add_argument("--latency-requests", type=int, default=300, help="per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--baseline",
        default=BEFORE_DRIFT,
        help="git revision whose server has no drift monitoring (default: main before it landed)",
    )
    return parser.parse_args()


def training_config(args: argparse.Namespace, tracking: str) -> Any:
    from training.config import TrainConfig

    return TrainConfig(
        data=str(args.data),
        max_rows=args.max_rows or None,
        n_estimators=args.n_estimators,
        model_name=args.model_name,
        tracking_uri=tracking,
        force_promote=True,
    )


def train_model(config: Any, work: Path) -> None:
    from training.run import train

    started = time.perf_counter()
    os.chdir(work)  # a SQLite store keeps its artifacts under the working directory
    result = train(config)
    print(
        f"trained v{result.model_version} in {time.perf_counter() - started:.0f} s: "
        f"macro-F1 {result.metrics['f1_macro']:.3f}"
    )


def held_out_products(config: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """The products the model's own split held out, with their label, as the API takes them."""
    from training.catalog import load_catalog
    from training.catalog_split import split_catalog, split_definition
    from training.pipeline import feature_spec

    catalog = load_catalog(config)
    _, holdout = split_catalog(catalog, split_definition(config))
    fields = [c for c in feature_spec(config).columns() if c in holdout.columns]
    records = holdout[[*fields, "label"]].to_dict("records")
    return [{k: v for k, v in r.items() if is_value(v)} for r in records], fields


def is_value(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and value != value) and value != ""


def make_streams(
    holdout: list[dict[str, Any]], fields: list[str], size: int, rng: random.Random
) -> dict[str, list[dict[str, Any]]]:
    counts: dict[str, int] = {}
    for product in holdout:
        counts[product["label"]] = counts.get(product["label"], 0) + 1
    top3 = set(sorted(counts, key=lambda k: -counts[k])[:3])

    def sample(pool: list[dict[str, Any]], change: Callable[[dict], dict]) -> list[dict]:
        chosen = [rng.choice(pool) for _ in range(size)]
        return [{k: v for k, v in change(p).items() if k in fields} for p in chosen]

    def short_title(p: dict) -> dict:
        return {"title": " ".join(str(p.get("title", "product")).split()[:3]) or "product"}

    return {
        "in distribution": sample(holdout, dict),
        "three classes": sample([p for p in holdout if p["label"] in top3], dict),
        "descriptions removed": sample(
            [p for p in holdout if p.get("title")],
            lambda p: {k: v for k, v in p.items() if k not in ("description", "feature")},
        ),
        "titles only, shortened": sample([p for p in holdout if p.get("title")], short_title),
    }


class Server:
    def __init__(self, process: subprocess.Popen[bytes], url: str) -> None:
        self.process, self.url = process, url

    def post(self, products: list[dict[str, Any]]) -> dict[str, Any]:
        body = json.dumps({"products": products}).encode()
        request = urllib.request.Request(
            self.url + "/v1/predict", body, {"content-type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            return dict(json.loads(response.read()))

    def metrics(self) -> str:
        with urllib.request.urlopen(self.url + "/metrics", timeout=60) as response:
            return str(response.read().decode())


def start_server(code: Path, tracking: str, args: argparse.Namespace, log: Path) -> Server:
    port = free_port()
    env = os.environ | {
        "MLFLOW_TRACKING_URI": tracking,
        "MODEL_NAME": args.model_name,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WORKERS": "1",
        "DRIFT_WINDOW_SIZE": str(args.window),
        "DRIFT_WINDOW_SECONDS": "0",
        "RELOAD_INTERVAL_SECONDS": "0",
        "PYTHONPATH": str(code),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "serving"],
        cwd=code,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    wait_for_http(url + "/readyz", timeout=600, process=process)
    return Server(process, url)


def drift_scores(server: Server, products: list[dict[str, Any]]) -> dict[str, float]:
    """Send a stream 50 products at a time, scrape, and read every score of its window."""
    version = ""
    for start in range(0, len(products), 50):
        version = server.post(products[start : start + 50])["model_version"]
    text = server.metrics()
    values = {}
    for line in text.splitlines():
        for kind in LEVELS:
            if line.startswith(f'prediction_drift_score{{kind="{kind}",version="{version}"}}'):
                values[kind] = float(line.split()[-1])
        for kind in ("confidence", "oov"):
            if line.startswith(f'prediction_window_mean{{kind="{kind}",version="{version}"}}'):
                values[f"mean_{kind}"] = float(line.split()[-1])
        if line.startswith(f'prediction_drift_window_size{{version="{version}"}}'):
            values["window"] = float(line.split()[-1])
    return values


def compare_latency(
    tracking: str, args: argparse.Namespace, work: Path, drift_server: Server
) -> dict[str, Any]:
    """Single-product p50 of this server and of main's, in interleaved rounds, with /metrics
    scraped every second on both (the drift work happens on scrape)."""
    baseline_code = work / "baseline"
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", str(baseline_code), args.baseline],
        check=True,
        capture_output=True,
    )
    baseline = start_server(baseline_code, tracking, args, work / "baseline.log")
    assert "prediction_drift_score" not in baseline.metrics(), "the baseline runs this branch"
    servers = {"this code (drift)": drift_server, f"{args.baseline} (no drift)": baseline}
    stop = threading.Event()
    scraper = threading.Thread(target=scrape_every_second, args=(servers.values(), stop))
    scraper.start()
    product = {"title": "Stainless steel chef knife 8 inch", "brand": "Acme"}
    p50s: dict[str, list[float]] = {name: [] for name in servers}
    try:
        for _ in range(args.rounds):
            for name, server in servers.items():
                p50s[name].append(single_product_p50(server, product, args.latency_requests))
    finally:
        stop.set()
        scraper.join()
        stop_process(baseline.process)
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "remove", "--force", str(baseline_code)],
            check=False,
            capture_output=True,
        )
    medians = {name: statistics.median(values) for name, values in p50s.items()}
    drift, baseline_p50 = medians.values()
    ratio = drift / baseline_p50
    return {"p50_ms_per_round": p50s, "p50_ms": medians, "ratio": ratio}


def scrape_every_second(servers: Any, stop: threading.Event) -> None:
    while not stop.wait(1.0):
        for server in servers:
            server.metrics()


def single_product_p50(server: Server, product: dict[str, Any], requests: int) -> float:
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        server.post([product])
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def report(
    args: argparse.Namespace,
    config: Any,
    scores: dict[str, dict[str, float]],
    latency: dict[str, Any],
) -> None:
    print(
        f"\nwindow {args.window} products; levels (warning / critical): "
        + ", ".join(f"{k} {w} / {c}" for k, (w, c) in LEVELS.items())
    )
    print(
        f"{'stream':<24}" + "".join(f"{k:>12}" for k in LEVELS) + f"{'mean conf':>11}"
        f"{'mean oov':>10}  verdict"
    )
    verdicts = {}
    for name, values in scores.items():
        worst = max(
            (2 if values.get(k, 0) >= c else 1 if values.get(k, 0) >= w else 0)
            for k, (w, c) in LEVELS.items()
        )
        verdicts[name] = ("ok", "warning", "critical")[worst]
        print(
            f"{name:<24}"
            + "".join(f"{values.get(k, float('nan')):>12.3f}" for k in LEVELS)
            + f"{values.get('mean_confidence', 0):>11.3f}{values.get('mean_oov', 0):>10.3f}"
            f"  {verdicts[name]}"
        )
    print("\nsingle-product p50 (ms), median of rounds, /metrics scraped every second:")
    for name, value in latency["p50_ms"].items():
        print(
            f"  {name:<22} {value:7.2f}   rounds: "
            + ", ".join(f"{v:.2f}" for v in latency["p50_ms_per_round"][name])
        )
    print(f"  ratio drift / main: {latency['ratio']:.3f}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    result = {
        "model": {
            "data": str(config.data),
            "max_rows": config.max_rows,
            "n_estimators": config.n_estimators,
        },
        "window": args.window,
        "levels": LEVELS,
        "scores": scores,
        "verdicts": verdicts,
        "latency": latency,
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg(),
        },
    }
    (RESULTS / "drift.json").write_text(json.dumps(result, indent=1))
    print(f"wrote {RESULTS / 'drift.json'}")


if __name__ == "__main__":
    main()
