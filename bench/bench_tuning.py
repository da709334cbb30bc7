"""Tuning benchmark: 20 trials with 1 and with 2 local workers, then the holdout check.

    .venv/bin/python -m bench.bench_tuning --catalog ../shared/data/apt-catalog.jsonl.gz --rows 1200

Draws a seeded random subsample of the catalog (a full-catalog trial is 3 forest fits of ~2 min on
2 cores), runs `product-tune --trials 20` on it once with `--workers 1` and once with
`--workers 2` (each in its own study, same folds, same defaults), and reports the wall time of
each search. Then it fits the defaults and each search's best config on the training split and
scores them on the untouched holdout: the macro-F1 the search promised against what it delivers.
Writes bench/results/tuning.json.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def subsample(catalog: Path, rows: int, seed: int, target: Path) -> Path:
    with gzip.open(catalog, "rt", encoding="utf-8") as handle:
        lines = handle.readlines()
    chosen = random.Random(seed).sample(lines, min(rows, len(lines)))
    with gzip.open(target, "wt", encoding="utf-8") as out:
        out.writelines(chosen)
    return target


def run_search(data: Path, workdir: Path, workers: int, trials: int) -> dict[str, Any]:
    output = workdir / f"best-{workers}.yaml"
    command = [sys.executable, "-m", "training.tune", "--quiet", "--data", str(data)]
    command += ["--trials", str(trials), "--workers", str(workers), "--output", str(output)]
    command += ["--study-name", f"bench-{workers}", "--storage", f"sqlite:///{workdir}/optuna.db"]
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{workdir}/mlflow.db"}
    start = time.perf_counter()
    done = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"product-tune failed ({done.returncode}):\n{done.stderr[-3000:]}")
    print(done.stdout, flush=True)
    return {"wall_seconds": wall, "config": output, "summary": done.stdout}


def study_figures(workdir: Path, workers: int) -> dict[str, Any]:
    import optuna
    from optuna.trial import TrialState

    study = optuna.load_study(
        study_name=f"bench-{workers}", storage=f"sqlite:///{workdir}/optuna.db"
    )
    states = [trial.state for trial in study.trials]
    baseline = next(t for t in study.trials if t.user_attrs.get("baseline"))
    return {
        "cv_f1_macro_best": study.best_value,
        "cv_f1_macro_defaults": baseline.value,
        "trials_complete": states.count(TrialState.COMPLETE),
        "trials_pruned": states.count(TrialState.PRUNED),
        "trials_failed": states.count(TrialState.FAIL),
        "best_params": study.best_params,
    }


def holdout_f1(values: dict[str, Any]) -> float:
    """Fit on the training split, score macro-F1 on the holdout, as product-train does."""
    from training.catalog import load_catalog
    from training.config import TrainConfig
    from training.fit_evaluate import fit_and_evaluate
    from training.tuning.objective import holdout_split

    config = TrainConfig(**values)
    train, test = holdout_split(load_catalog(config), config)
    _, evaluation, _ = fit_and_evaluate(config, train, test, config.smote, {})
    return float(evaluation.metrics["f1_macro"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=Path, required=True)
    parser.add_argument("--rows", type=int, default=1200, help="random subsample size")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    import yaml

    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        data = subsample(args.catalog, args.rows, args.seed, workdir / "subsample.jsonl.gz")
        searches = {}
        for workers in (1, 2):
            search = run_search(data, workdir, workers, args.trials)
            best = yaml.safe_load(search["config"].read_text())
            searches[workers] = {
                "wall_seconds": round(search["wall_seconds"], 1),
                **study_figures(workdir, workers),
                "holdout_f1_macro_best": holdout_f1(best),
            }
        defaults = holdout_f1({"data": str(data)})
    report = {
        "catalog": str(args.catalog),
        "subsample_rows": args.rows,
        "subsample_seed": args.seed,
        "trials": args.trials,
        "folds": 3,
        "holdout_f1_macro_defaults": defaults,
        "workers_1": searches[1],
        "workers_2": searches[2],
        "speedup_2_workers": round(searches[1]["wall_seconds"] / searches[2]["wall_seconds"], 2),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, shared with other jobs",
        "load_average_after": os.getloadavg(),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "tuning.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    for workers in (1, 2):
        figures = searches[workers]
        print(
            f"{workers} worker(s): {figures['wall_seconds']:.0f} s, "
            f"cv macro-F1 best {figures['cv_f1_macro_best']:.4f} "
            f"(defaults {figures['cv_f1_macro_defaults']:.4f}), holdout macro-F1 best "
            f"{figures['holdout_f1_macro_best']:.4f} vs defaults {defaults:.4f}"
        )
    print(f"speed-up with 2 workers: {report['speedup_2_workers']}x")


if __name__ == "__main__":
    main()
