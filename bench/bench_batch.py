"""Batch-scoring benchmark: the local engine against Spark local[2], on 1x, 4x and 16x a catalog.

    .venv/bin/python -m bench.bench_batch --tracking-uri sqlite:////path/mlflow.db \
        --model models:/product-classifier@champion            # a full-catalog model
    .venv/bin/python -m bench.bench_batch --scales 1,4 --engines local   # a shorter run

The catalog (default: the shared 63k-product catalog) is repeated N times into one JSON-lines
file, each copy's ids suffixed so that every row stays unique. Each engine then runs as its own
`python -m batch` process, exactly as a user would start it. Per run: wall time, rows/s (over the
scoring, as the summary reports it, and over the whole process), peak memory of the process tree
(the Python process, and for Spark the JVM and its Python workers too, sampled every 0.2 s), and
the time from start to the first scored rows on disk. At every scale it checks that both engines
gave the same label to every row. Prints a table and writes bench/results/batch.json.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models:/product-classifier@champion")
    parser.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI"))
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data/apt-catalog.jsonl.gz"))
    parser.add_argument("--rows", type=int, help="use only the catalog's first ROWS products")
    parser.add_argument("--scales", default="1,4,16", help="catalog repeats, comma separated")
    parser.add_argument("--engines", default="local,spark")
    parser.add_argument("--spark-master", default="local[2]")
    parser.add_argument("--workdir", type=Path, help="where scaled catalogs and outputs go")
    parser.add_argument("--output", type=Path, default=RESULTS / "batch.json")
    return parser.parse_args()


def repeat_catalog(source: Path, times: int, target: Path, limit: int | None) -> int:
    """`times` copies of the catalog (its first `limit` rows) in one file; copy k>0 has ids
    suffixed with `~k`."""
    if target.exists():
        with gzip.open(target, "rt", encoding="utf-8") as handle:
            return sum(1 for _ in handle)
    with gzip.open(source, "rt", encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle if line.strip()][:limit]
    partial = target.with_suffix(".partial")
    with gzip.open(partial, "wt", encoding="utf-8", compresslevel=1) as out:
        for copy in range(times):
            for record in records:
                if copy:
                    record = {**record, "asin": f"{record['asin']}~{copy}"}
                out.write(json.dumps(record) + "\n")
    partial.rename(target)
    return len(records) * times


def tree_rss(root: int) -> int:
    """Resident memory of `root` and all its descendants, in bytes."""
    return sum(_rss(pid) for pid in process_tree(root))


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants, from their parents in `/proc`."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            children.setdefault(int(_stat_fields(int(entry.name))[1]), []).append(int(entry.name))
        except OSError:
            continue
    pids, stack = [], [root]
    while stack:
        pid = stack.pop()
        pids.append(pid)
        stack.extend(children.get(pid, []))
    return pids


def _stat_fields(pid: int) -> list[str]:
    """`/proc/PID/stat` after the command name (field 3 onwards)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _rss(pid: int) -> int:
    try:
        return int(_stat_fields(pid)[21]) * PAGE_SIZE
    except OSError:  # the process ended meanwhile
        return 0


def has_output(output: Path) -> bool:
    """Scored rows on disk: a partial file past its header, or a Spark part file."""
    for candidate in output.parent.glob(f".{output.name}.partial-*"):
        if candidate.is_file() and candidate.stat().st_size > 4096:
            return True
        if candidate.is_dir() and next(candidate.rglob("part-*"), None) is not None:
            return True
    return output.exists()


def remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def run_engine(engine: str, data: Path, output: Path, args: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, "-m", "batch", "--engine", engine, "--model", args.model]
    command += ["--data", str(data), "--output", str(output), "--overwrite", "--json"]
    command += ["--no-progress", "--quiet", "--spark-master", args.spark_master]
    env = {**os.environ, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
    if args.tracking_uri:
        env["MLFLOW_TRACKING_URI"] = args.tracking_uri
    remove(output)  # a previous run's output would count as this run's first output
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak, first = 0, [None]

    def sample() -> None:
        nonlocal peak
        while process.poll() is None:
            peak = max(peak, tree_rss(process.pid))
            if first[0] is None and has_output(output):
                first[0] = time.perf_counter() - started
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = process.communicate()
    sampler.join()
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"{engine} failed ({process.returncode}): {stderr.decode()[-2000:]}")
    summary = json.loads(stdout.decode().strip().splitlines()[-1])
    return {
        "engine": engine,
        "rows": summary["rows"],
        "no_text": summary["no_text"],
        "wall_seconds": round(wall, 1),
        "scoring_seconds": summary["seconds"],
        "rows_per_second_scoring": summary["rows_per_second"],
        "rows_per_second_wall": round(summary["rows"] / wall, 1),
        "peak_rss_mib": round(peak / 2**20),
        "first_output_seconds": None if first[0] is None else round(first[0], 1),
    }


def label_mismatches(local: Path, spark: Path) -> dict[str, int]:
    """Rows whose label differs between the two outputs, joined on the product id."""
    import pandas as pd

    left = pd.read_parquet(local, columns=["product_id", "label"])
    right = pd.read_parquet(spark, columns=["product_id", "label"])
    joined = left.merge(right, on="product_id", how="outer", suffixes=("_local", "_spark"))
    missing = int(joined.isna().any(axis=1).sum())
    differ = int((joined["label_local"] != joined["label_spark"]).sum()) - missing
    return {"rows_compared": len(joined), "missing_in_one": missing, "labels_differ": differ}


def main() -> None:
    args = parse_arguments()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-batch-"))
    workdir.mkdir(parents=True, exist_ok=True)
    engines = args.engines.split(",")
    runs, checks = [], []
    for scale in (int(s) for s in args.scales.split(",")):
        data = workdir / f"catalog-{args.rows or 'all'}-x{scale}.jsonl.gz"
        rows = repeat_catalog(args.data, scale, data, args.rows)
        outputs = {}
        for engine in engines:
            outputs[engine] = workdir / f"labels-x{scale}-{engine}.parquet"
            result = run_engine(engine, data, outputs[engine], args) | {"scale": scale}
            runs.append(result)
            print(json.dumps(result), flush=True)
        if len(outputs) == 2:
            check = label_mismatches(outputs["local"], outputs["spark"]) | {"scale": scale}
            checks.append(check)
            print(json.dumps(check), flush=True)
        assert all(r["rows"] == rows for r in runs if r["scale"] == scale), "rows lost"
    print_table(runs)
    report = {
        "model": args.model,
        "catalog": str(args.data),
        "catalog_rows": args.rows or "all",
        "spark_master": args.spark_master,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, shared with other jobs",
        "runs": runs,
        "label_checks": checks,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1) + "\n")
    print(f"written to {args.output}")


def print_table(runs: list[dict[str, Any]]) -> None:
    header = f"{'scale':>5} {'engine':>6} {'rows':>9} {'wall s':>8} {'rows/s':>8} "
    header += f"{'rows/s wall':>11} {'peak MiB':>9} {'first out s':>11}"
    print(header)
    for r in runs:
        print(
            f"{r['scale']:>5} {r['engine']:>6} {r['rows']:>9} {r['wall_seconds']:>8} "
            f"{r['rows_per_second_scoring']:>8} {r['rows_per_second_wall']:>11} "
            f"{r['peak_rss_mib']:>9} {r['first_output_seconds']!s:>11}"
        )


if __name__ == "__main__":
    main()
