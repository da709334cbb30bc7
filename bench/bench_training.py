"""Training benchmark: quality, wall time and peak memory of `product-train`, run as users run it.

    .venv/bin/python -m bench.bench_training --catalog ../shared/data/apt-catalog.jsonl.gz

Runs the CLI in a fresh embedded MLflow store, once on the full catalog (defaults, stratified 20%
holdout, seed 42) and once on the bundled sample, and reports macro-F1, accuracy, wall time and
the peak memory: the largest process's resident set, and the sum over the training process and
its worker processes (proportional set size, so pages they share count once), sampled five times
a second. Writes bench/results/training.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import mlflow

from bench.bench_batch import process_tree

RESULTS = Path(__file__).parent / "results"
TARGETS = {
    "f1_macro": 0.80,
    "accuracy": 0.88,
    "full_wall_seconds": 600,
    "peak_rss_gb": 8.0,
    "sample_wall_seconds": 60,
}


def run_training(catalog: Path | None, workdir: Path, extra: list[str]) -> dict[str, float]:
    """Run product-train in `workdir`; return wall time, peak RSS and the run's metrics."""
    command = [sys.executable, "-m", "training", "--quiet", "--model-name", "bench", *extra]
    if catalog:
        command += ["--data", str(catalog)]
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{workdir}/mlflow.db"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    tree_peak_kb = [0]
    sampler = threading.Thread(target=_sample_tree_pss, args=(process, tree_peak_kb), daemon=True)
    sampler.start()
    _, stderr = process.communicate()
    wall = time.perf_counter() - start
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"training failed ({process.returncode}):\n{stderr[-3000:]}")
    peak_kb = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    run = mlflow.search_runs(
        experiment_names=["product-categorization"],
        max_results=1,
        order_by=["attributes.start_time DESC"],
    ).iloc[0]
    metrics = {
        k[len("metrics.") :]: float(v)
        for k, v in run.items()
        if k.startswith("metrics.") and v == v
    }
    return {
        "wall_seconds": wall,
        "peak_rss_gb": peak_kb / 1024 / 1024,
        "peak_tree_pss_gb": tree_peak_kb[0] / 1024 / 1024,
        **metrics,
    }


def _sample_tree_pss(process: subprocess.Popen[str], peak_kb: list[int]) -> None:
    """Keep in `peak_kb[0]` the largest sum of PSS over `process` and its descendants."""
    while process.poll() is None:
        peak_kb[0] = max(peak_kb[0], sum(map(_pss_kb, process_tree(process.pid))))
        time.sleep(0.2)


def _pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=Path, default=Path("../shared/data/apt-catalog.jsonl.gz"))
    parser.add_argument("--skip-full", action="store_true", help="only the bundled sample")
    parser.add_argument("--extra", default="", help="extra product-train options for both runs")
    parser.add_argument(
        "--keep",
        type=Path,
        help="keep the MLflow stores in this folder (full/mlflow.db: the full-catalog champion "
        "'bench', for bench_drift and bench_readiness --tracking-uri)",
    )
    args = parser.parse_args()
    extra = args.extra.split()

    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as temporary:
        scratch = args.keep.resolve() if args.keep else Path(temporary)
        sample_dir = Path(scratch) / "sample"
        sample_dir.mkdir(parents=True)
        results["sample"] = run_training(None, sample_dir, extra)
        if not args.skip_full:
            full_dir = Path(scratch) / "full"
            full_dir.mkdir()
            results["full"] = run_training(args.catalog.resolve(), full_dir, extra)

    print(
        f"{'run':8} {'macro-F1':>9} {'accuracy':>9} {'ROC-AUC':>8} {'wall s':>8} {'peak GB':>8} "
        f"{'all GB':>7} {'fit s':>7}"
    )
    for name, r in results.items():
        fit = next((v for k, v in r.items() if k.startswith("time_fitting")), float("nan"))
        print(
            f"{name:8} {r['f1_macro']:9.4f} {r['accuracy']:9.4f} {r['roc_auc_ovr_macro']:8.4f} "
            f"{r['wall_seconds']:8.1f} {r['peak_rss_gb']:8.2f} {r['peak_tree_pss_gb']:7.2f} "
            f"{fit:7.1f}"
        )
    verdict = {}
    if "full" in results:
        full = results["full"]
        verdict = {
            "f1_macro": full["f1_macro"] >= TARGETS["f1_macro"],
            "accuracy": full["accuracy"] >= TARGETS["accuracy"],
            "full_wall_seconds": full["wall_seconds"] <= TARGETS["full_wall_seconds"],
            "peak_rss_gb": max(full["peak_rss_gb"], full["peak_tree_pss_gb"])
            <= TARGETS["peak_rss_gb"],
        }
    verdict["sample_wall_seconds"] = (
        results["sample"]["wall_seconds"] <= TARGETS["sample_wall_seconds"]
    )
    print("targets met:", ", ".join(f"{k}={'yes' if v else 'NO'}" for k, v in verdict.items()))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "training.json"
    out.write_text(
        json.dumps(
            {
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "extra_options": extra,
                "targets": TARGETS,
                "met": verdict,
                "results": results,
            },
            indent=1,
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
