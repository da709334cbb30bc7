"""What the soak and head-of-line benchmarks share: the full-catalog model as a folder on disk,
a `product-serve` process on loopback serving it, and the process figures they report.

The model is the one the footprint benchmark measures (default training config on the whole
catalog, compact forest), trained once and kept in build/bench/full-catalog-model; pass
`--model-uri` to serve another one (a saved MLflow model folder).
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.support import free_port, stop_process, wait_for_http

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
CACHED_MODEL = REPO / "build" / "bench" / "full-catalog-model"
CATALOG_CANDIDATES = [
    folder / "shared" / "data" / "apt-catalog.jsonl.gz" for folder in REPO.parents
]


def default_catalog() -> Path:
    """The shared full catalog, looked for next to the repository and above it."""
    return next((path for path in CATALOG_CANDIDATES if path.is_file()), CATALOG_CANDIDATES[0])


def full_catalog_model(catalog: Path) -> Path:
    """The cached full-catalog model folder, trained and saved on first use (minutes)."""
    if (CACHED_MODEL / "MLmodel").is_file():
        return CACHED_MODEL
    import mlflow

    from training import registry
    from training.catalog import load_catalog
    from training.catalog_split import split_catalog, split_definition
    from training.config import TrainConfig
    from training.evaluate import evaluate
    from training.model_metadata import model_metadata
    from training.pipeline import build_pipeline, for_serving, model_input

    config = TrainConfig(data=str(catalog.resolve()), model_name="soak")
    rows = load_catalog(config)
    definition = split_definition(config)
    train_rows, test_rows = split_catalog(rows, definition)
    labels = train_rows["label"].to_numpy()
    print(f"training the full-catalog model on {len(train_rows)} rows (once) ...", flush=True)
    stock = build_pipeline(config, labels).fit(model_input(train_rows, config), labels)
    compact = for_serving(stock, compact=True)
    holdout = model_input(test_rows, config)
    with tempfile.TemporaryDirectory() as scratch:
        mlflow.set_tracking_uri(f"sqlite:///{scratch}/mlflow.db")
        experiment = mlflow.create_experiment("soak", artifact_location=f"{scratch}/artifacts")
        with mlflow.start_run(experiment_id=experiment) as run:
            quality = evaluate(
                test_rows["label"].to_numpy(), compact.predict_proba(holdout), compact.classes_
            )
            metadata = model_metadata(config, rows, definition, quality, run.info.run_id)
            uri = registry.log_model(compact, metadata, holdout.head(3))
        CACHED_MODEL.parent.mkdir(parents=True, exist_ok=True)
        mlflow.artifacts.download_artifacts(uri, dst_path=str(CACHED_MODEL))
    return CACHED_MODEL


def catalog_products(catalog: Path, limit: int) -> list[dict[str, Any]]:
    """The first `limit` products of the catalog, without their label."""
    products = []
    with gzip.open(catalog, "rt", encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            record.pop("main_cat", None)
            products.append(record)
            if len(products) >= limit:
                break
    return products


def start_server(model: str, scratch: Path, **env: str) -> tuple[subprocess.Popen[bytes], str]:
    """`python -m serving` on a free loopback port serving `model`; waits until ready."""
    port = free_port()
    variables = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "MODEL_URI": model,
        "RELOAD_INTERVAL_SECONDS": "0",
        "LOG_LEVEL": "WARNING",
        "TMPDIR": str(scratch),
        **env,
    }
    log = (scratch.parent / f"serving-{port}.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "serving"],
        env=variables,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/readyz", timeout=300, process=process)
    except Exception:
        stop_process(process)
        raise
    return process, url


def post(url: str, body: bytes, timeout: float = 120) -> int:
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def process_figures(pid: int) -> dict[str, float]:
    """Resident memory (MB) and open file descriptors of a process."""
    rss_kb = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss_kb = int(line.split()[1])
    return {
        "rss_mb": rss_kb / 1024,
        "open_files": sum(1 for _ in Path(f"/proc/{pid}/fd").iterdir()),
    }


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def write_results(name: str, report: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(report, indent=1) + "\n")
    return path


def now() -> float:
    return time.monotonic()
