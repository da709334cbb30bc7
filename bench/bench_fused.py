"""The fused prediction against the pipeline's, side by side in one process, per call size.

    python -m bench.bench_fused --tracking-uri sqlite:////tmp/wb8/mlflow.db [--sizes 1,15,100,1000]
    python -m bench.bench_fused --model-dir build/bench/full-catalog-model --output ...

Loads the saved pipeline of the registered champion (or of a saved MLflow model folder) with this
repository's `product_model`, then times
`Pipeline.predict_proba` and `FusedPredictor.predict_proba` on the same batches of the bundled
sample, alternating, and the forest walk alone (its input prepared beforehand): milliseconds per
call, medians of `--repeats`. Checks the probabilities are equal first. Writes
`bench/results/fused.json`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.bench_serving import load_products

RESULTS = Path(__file__).resolve().parent / "results"


def champion_pipeline(tracking_uri: str, model_name: str, workdir: Path) -> Any:
    import mlflow

    from product_model.pyfunc import PIPELINE_FILE, load_pipeline

    mlflow.set_tracking_uri(tracking_uri)
    folder = mlflow.artifacts.download_artifacts(
        f"models:/{model_name}@champion", dst_path=str(workdir)
    )
    return load_pipeline(next(Path(folder).rglob(PIPELINE_FILE)))


def per_call_ms(predict: Any, batches: list[Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        for batch in batches:
            predict(batch)
        times.append((time.perf_counter() - started) / len(batches) * 1000)
    return statistics.median(times)


def measure(pipeline: Any, products: list[dict[str, Any]], size: int, repeats: int) -> dict:
    from product_model.fused import fused_predictor

    fused = fused_predictor(pipeline)
    if fused is None:
        raise SystemExit("this model's pipeline has no fused form")
    batches = [products[i : i + size] for i in range(0, len(products), size)]
    batches = batches[: max(3, 3000 // size)]
    for batch in batches:
        if not np.array_equal(fused.predict_proba(batch), pipeline.predict_proba(batch)):
            raise SystemExit(f"fused and pipeline probabilities differ (batches of {size})")
    inputs = [fused.forest_input(batch) for batch in batches]
    pipeline_ms = per_call_ms(pipeline.predict_proba, batches, repeats)
    fused_ms = per_call_ms(fused.predict_proba, batches, repeats)
    walk_ms = per_call_ms(lambda rows: fused.forest.proba_of_rows(*rows), inputs, repeats)
    return {
        "size": size,
        "calls": len(batches),
        "pipeline_ms": round(pipeline_ms, 3),
        "fused_ms": round(fused_ms, 3),
        "walk_ms": round(walk_ms, 3),
        "pipeline_without_walk_ms": round(pipeline_ms - walk_ms, 3),
        "fused_without_walk_ms": round(fused_ms - walk_ms, 3),
        "speedup": round(pipeline_ms / fused_ms, 3),
    }


def model_arguments(description: str, name: str, repeats: int) -> argparse.ArgumentParser:
    """The options both per-call-size benchmarks take: which model, sizes, repeats, output."""
    parser = argparse.ArgumentParser(description=description)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--tracking-uri", help="the champion of this MLflow store")
    source.add_argument("--model-dir", type=Path, help="a saved MLflow model folder")
    parser.add_argument("--model-name", default="product-classifier")
    parser.add_argument("--sizes", default="1,15,100,1000")
    parser.add_argument("--repeats", type=int, default=repeats)
    parser.add_argument("--workdir", default=f"/tmp/bench-{name}")
    parser.add_argument("--output", default=str(RESULTS / f"{name}.json"))
    return parser


def saved_pipeline(args: argparse.Namespace) -> Any:
    """The pipeline of `--model-dir`, or of the champion in `--tracking-uri`."""
    if args.model_dir is None:
        return champion_pipeline(args.tracking_uri, args.model_name, Path(args.workdir))
    from product_model.pyfunc import PIPELINE_FILE, load_pipeline

    return load_pipeline(next(args.model_dir.rglob(PIPELINE_FILE)))


def write_report(module: str, args: argparse.Namespace, report: dict[str, Any]) -> None:
    """`report` with the command that made it, as JSON into `--output`."""
    options = (
        f"--{k.replace('_', '-')} {v}"
        for k, v in vars(args).items()
        if k != "output" and v is not None
    )
    command = {"command": f"python -m {module} " + " ".join(options)}
    Path(args.output).write_text(json.dumps(command | report, indent=2) + "\n")
    print(f"wrote {args.output}")


def main() -> None:
    args = model_arguments(__doc__.splitlines()[0], "fused", repeats=7).parse_args()
    pipeline = saved_pipeline(args)
    pipeline.steps[-1][1].compile_walk()
    products = load_products()
    rows = [measure(pipeline, products, int(size), args.repeats) for size in args.sizes.split(",")]
    print(f"{'size':>6} {'pipeline':>10} {'fused':>10} {'walk':>8} {'speedup':>8}  (ms per call)")
    for row in rows:
        print(
            f"{row['size']:>6} {row['pipeline_ms']:>10.3f} {row['fused_ms']:>10.3f} "
            f"{row['walk_ms']:>8.3f} {row['speedup']:>8.2f}"
        )
    report = {"steps": [name for name, _ in pipeline.steps], "rows": rows}
    write_report("bench.bench_fused", args, report)


if __name__ == "__main__":
    main()
