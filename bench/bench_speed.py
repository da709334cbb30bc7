"""In-process speed of the model: today's code vs a baseline commit vs stock scikit-learn.

    .venv/bin/python -m bench.bench_speed --workdir /tmp/speed-sample
    .venv/bin/python -m bench.bench_speed --catalog ../shared/data/apt-catalog.jsonl.gz \\
        --workdir /tmp/speed-full --name full

Fits the default pipeline once into --workdir (reused on later runs: a full-catalog fit takes
minutes) and saves it twice: as served (compact forest) and with the stock scikit-learn forest.
The baseline's `product_model` is exported from git (`--baseline`, default the commit before this
work) and loads the same pipeline, its forest saved in the node order that code reads. Each
round then runs one process per contender (baseline, current, stock; current also held to one
core, stock also with n_jobs=-1: see `contenders`) in turn, so all see the same machine load;
figures are medians over rounds, in rows/s for a batch of 1,000 and ms for one product, as wall
time and as the process's own CPU time (the machine is shared; CPU time is the steadier).
Checks that the current probabilities equal stock scikit-learn's on the whole holdout, and
profiles a batch with pyinstrument for baseline and current into bench/results/.
Writes bench/results/speed-<name>.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import joblib
import numpy as np

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).parent / "speed_worker.py"
BASELINE = "484a10d"  # main before the speed work (issue 13)
FIGURES = ("rows_per_s_wall", "rows_per_s_cpu", "single_wall_ms", "single_cpu_ms")


def fit_once(catalog: Path, workdir: Path) -> dict[str, Any]:
    """Fit and save the default pipeline (served and stock forms) unless already saved."""
    done = workdir / "fit.json"
    if done.exists():
        return json.loads(done.read_text())
    from training.catalog import load_catalog
    from training.catalog_split import split_catalog, split_definition
    from training.config import TrainConfig
    from training.pipeline import build_pipeline, for_serving, model_input

    # The model issue 13 measured: without linear class scores, which the baseline's code cannot
    # load; this compares code speed on one saved model (their cost: see bench_serving's ceiling).
    config = TrainConfig(
        data=str(catalog.resolve()), model_name="speed", compact=False, linear_scores=False
    )
    train_rows, test_rows = split_catalog(load_catalog(config), split_definition(config))
    y_train = train_rows["label"].to_numpy()
    started = time.perf_counter()
    fitted = build_pipeline(config, y_train).fit(model_input(train_rows, config), y_train)
    fit = {
        "fit_seconds": time.perf_counter() - started,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    fitted.named_steps["forest"].set_params(n_jobs=1)  # no per-call thread start-up
    model_input(test_rows, config).to_pickle(workdir / "holdout.pkl")
    served = for_serving(fitted, compact=True)
    joblib.dump(served, workdir / "compact.joblib")
    joblib.dump(in_old_node_order(served), workdir / "compact-baseline.joblib")
    joblib.dump(for_serving(fitted, compact=False), workdir / "stock.joblib")
    done.write_text(json.dumps(fit))
    return fit


def in_old_node_order(served: Any) -> Any:
    """The served pipeline with its forest pickled in the node order the baseline's code reads
    (children side by side); the saved form is otherwise the same."""
    from product_model.forest import CompactForest
    from product_model.node_order import side_by_side_state

    name, forest = served.steps[-1]
    old = CompactForest.__new__(CompactForest)
    old.__dict__.update(side_by_side_state(forest))  # pickled as is: no node_order_
    baseline = copy.copy(served)
    baseline.steps = [*served.steps[:-1], (name, old)]
    return baseline


def export_baseline(ref: str, workdir: Path) -> Path:
    target = workdir / f"baseline-{ref}"
    if not (target / "product_model").exists():
        target.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", ref, "product_model"],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def run_worker(
    code_root: Path,
    pipeline: Path,
    holdout: Path,
    extra: list[str],
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(code_root), **(env or {})}
    command = [sys.executable, str(WORKER), str(pipeline), str(holdout), *extra]
    done = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def contenders(workdir: Path, baseline: Path) -> dict[str, tuple[Path, Path, list[str], dict]]:
    """label: (code, pipeline, worker options, environment). Today's code walks batches of 512
    rows or more on every core; "one core" holds it to one (joblib's LOKY_MAX_CPU_COUNT), and
    stock scikit-learn is measured with n_jobs=1 (its batch on one core, no per-call thread
    start-up for one product) and with n_jobs=-1 (its batch on every core)."""
    compact, stock = workdir / "compact.joblib", workdir / "stock.joblib"
    return {
        "baseline": (baseline, workdir / "compact-baseline.joblib", [], {}),
        "current": (ROOT, compact, [], {}),
        "current, one core": (ROOT, compact, [], {"LOKY_MAX_CPU_COUNT": "1"}),
        "stock scikit-learn": (ROOT, stock, [], {}),
        "stock scikit-learn, n_jobs=-1": (ROOT, stock, ["--forest-jobs", "-1"], {}),
    }


def rounds(workdir: Path, baseline: Path, n_rounds: int, name: str) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {}
    holdout = workdir / "holdout.pkl"
    for round_index in range(n_rounds):
        for label, (code, pipeline, options, env) in contenders(workdir, baseline).items():
            extra = list(options)
            if round_index == 0 and "," not in label:
                slug = label.split()[0]
                extra += ["--proba", str(workdir / f"proba-{slug}.npy")]
                if slug != "stock":
                    extra += ["--profile", str(RESULTS / f"profile-{name}-{slug}.txt")]
            runs.setdefault(label, []).append(run_worker(code, pipeline, holdout, extra, env))
            print(f"round {round_index + 1} {label}: {runs[label][-1]}", flush=True)
    return runs


def summarize(runs: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, float]]:
    keys = (*FIGURES, "start_to_first_prediction_s", "cpu_to_first_prediction_s")
    return {
        label: {key: statistics.median(run[key] for run in results) for key in keys}
        for label, results in runs.items()
    }


def ratios(summary: dict[str, dict[str, float]]) -> dict[str, float]:
    now, before, stock = summary["current"], summary["baseline"], summary["stock scikit-learn"]
    one_core, stock_all = summary["current, one core"], summary["stock scikit-learn, n_jobs=-1"]
    return {
        "rows_per_s_vs_baseline_wall_one_core": one_core["rows_per_s_wall"]
        / before["rows_per_s_wall"],
        "rows_per_s_vs_stock_all_cores_wall": now["rows_per_s_wall"] / stock_all["rows_per_s_wall"],
        "rows_per_s_vs_baseline_wall": now["rows_per_s_wall"] / before["rows_per_s_wall"],
        "rows_per_s_vs_baseline_cpu": now["rows_per_s_cpu"] / before["rows_per_s_cpu"],
        "rows_per_s_vs_stock_wall": now["rows_per_s_wall"] / stock["rows_per_s_wall"],
        "rows_per_s_vs_stock_cpu": now["rows_per_s_cpu"] / stock["rows_per_s_cpu"],
        "single_latency_lower_wall": before["single_wall_ms"] / now["single_wall_ms"],
        "single_latency_lower_cpu": before["single_cpu_ms"] / now["single_cpu_ms"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--catalog", type=Path, default=ROOT / "training/data/sample_catalog.jsonl.gz"
    )
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--name", default="sample")
    parser.add_argument("--baseline", default=BASELINE)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    args.workdir.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(exist_ok=True)
    fit = fit_once(args.catalog, args.workdir)
    baseline = export_baseline(args.baseline, args.workdir)
    summary = summarize(rounds(args.workdir, baseline, args.rounds, args.name))
    stock = np.load(args.workdir / "proba-stock.npy")
    differences = {
        label: float(np.abs(np.load(args.workdir / f"proba-{label}.npy") - stock).max())
        for label in ("current", "baseline")
    }
    report = {
        "command": " ".join(sys.argv),
        "machine": {"cpus": os.cpu_count(), "load_average_at_end": os.getloadavg()},
        "baseline": args.baseline,
        "fit": fit,
        "holdout_rows": len(stock),
        "max_proba_diff_vs_stock": differences,
        "figures": summary,
        "ratios": ratios(summary),
    }
    out = RESULTS / f"speed-{args.name}.json"
    out.write_text(json.dumps(report, indent=1))
    print(json.dumps({k: report[k] for k in ("max_proba_diff_vs_stock", "ratios")}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
