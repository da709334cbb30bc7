"""One measuring process for bench_speed: loads one saved pipeline with whatever `product_model`
comes first on PYTHONPATH (today's code or a baseline), predicts as a served model does (through
the pipeline's fused form when that code has one) and prints its figures as JSON.

    python bench/speed_worker.py PIPELINE HOLDOUT [--repeats 3] [--single 200]
        [--proba OUT.npy] [--profile OUT.txt]

Wall times are medians; CPU times (this process only) are reported too, because the machine is
shared and wall time then counts other processes' turns.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

STARTED = time.perf_counter()

import joblib  # noqa: E402  (the import time is part of what is measured)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def timed(call: Any, argument: Any) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    call(argument)
    return time.perf_counter() - wall, time.process_time() - cpu


def medians(pairs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)


def served_form(pipeline: Any) -> Any:
    """What a served model predicts with: the pipeline's fused form when the `product_model` on
    the path has one (`product_model.fused`), else the pipeline itself."""
    import product_model

    if not (Path(product_model.__file__).parent / "fused.py").exists():  # older code
        return pipeline
    from product_model.fused import fused_predictor

    return fused_predictor(pipeline) or pipeline


def measure(pipeline: Any, holdout: pd.DataFrame, repeats: int, n_single: int) -> dict[str, Any]:
    batch = holdout.head(1000).to_dict("records")
    singles = [[row] for row in holdout.head(n_single).to_dict("records")]
    # Steady state: the first calls on a new batch size also pay for fresh memory pages (glibc
    # maps large arrays anew until its mmap threshold has grown past them).
    for _ in range(2):
        pipeline.predict_proba(batch)
    batch_wall, batch_cpu = medians([timed(pipeline.predict_proba, batch) for _ in range(repeats)])
    single_wall, single_cpu = medians([timed(pipeline.predict_proba, row) for row in singles])
    return {
        "batch_1000_wall_s": batch_wall,
        "batch_1000_cpu_s": batch_cpu,
        "rows_per_s_wall": len(batch) / batch_wall,
        "rows_per_s_cpu": len(batch) / batch_cpu,
        "single_wall_ms": single_wall * 1000,
        "single_cpu_ms": single_cpu * 1000,
    }


def profile(pipeline: Any, holdout: pd.DataFrame, out: Path) -> None:
    from pyinstrument import Profiler

    batch = holdout.head(1000).to_dict("records")
    profiler = Profiler(interval=0.001)
    profiler.start()
    for _ in range(3):
        pipeline.predict_proba(batch)
    profiler.stop()
    out.write_text(profiler.output_text(unicode=False, color=False))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("pipeline", type=Path)
    parser.add_argument("holdout", type=Path)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--single", type=int, default=200)
    parser.add_argument("--proba", type=Path)
    parser.add_argument("--profile", type=Path)
    parser.add_argument("--forest-jobs", type=int, help="set the forest's n_jobs (stock only)")
    args = parser.parse_args()

    holdout = pd.read_pickle(args.holdout)
    pipeline = joblib.load(args.pipeline)
    if args.forest_jobs is not None:
        pipeline.steps[-1][1].set_params(n_jobs=args.forest_jobs)
    pipeline = served_form(pipeline)
    pipeline.predict_proba(holdout.head(1).to_dict("records"))
    import product_model

    figures: dict[str, Any] = {
        "code": str(Path(product_model.__file__).parent),
        "fused": type(pipeline).__name__ == "FusedPredictor",
        "start_to_first_prediction_s": time.perf_counter() - STARTED,
        "cpu_to_first_prediction_s": time.process_time(),
    }
    figures.update(measure(pipeline, holdout, args.repeats, args.single))
    if args.proba:
        np.save(args.proba, pipeline.predict_proba(holdout.to_dict("records")))
    if args.profile:
        profile(pipeline, holdout, args.profile)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
