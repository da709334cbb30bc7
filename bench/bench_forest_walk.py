"""The forest walk of two checkouts side by side: one saved model, the same batches, per call size.

    .venv/bin/python -m bench.bench_forest_walk --tracking-uri sqlite:////tmp/wb10/mlflow.db \\
        --before /tmp/before [--sizes 1,8,20,32,100,1000] [--rounds 3]
    .venv/bin/python -m bench.bench_forest_walk --model-dir build/bench/full-catalog-model \\
        --before /tmp/before --output bench/results/forest-walk-full.json

`--before` is another checkout's code (`git archive <commit> product_model | tar -x -C DIR`).
Both must read the model's saved forest: code before the zero-first node order reads only a
forest saved by such code (this code reorders one at load), so compare it on a model saved
before that order; a mismatch shows as different probabilities, and the run stops.
Each round runs one measuring process per checkout, in turn: it loads the model's pipeline with
that checkout's `product_model` (so each stores the forest its own way), builds the forest's input
once for batches drawn at random from the bundled sample's products (the same batches for both:
the walk's cost depends on how alike a batch's rows are), checks nothing is compiled during the
timing, and times the compiled walk alone (`proba_of_rows`): milliseconds per call, the median of
`--repeats` passes. Both must give the same probabilities bit for bit (compared by digest). The
figures are medians over `--rounds`. Writes `bench/results/forest-walk.json`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.bench_fused import model_arguments, write_report

REPO = Path(__file__).resolve().parent.parent
SEED = 13


def batches_of(products: list[Any], size: int) -> list[list[Any]]:
    """Batches of `size` products drawn at random (seeded), about 3,000 rows in all."""
    draw = random.Random(SEED + size)
    return [draw.sample(products, size) for _ in range(max(10, 3000 // size))]


def measure_here(args: argparse.Namespace) -> dict[str, Any]:
    """In the measuring process: the walk's time per call size, and a digest of its answers."""
    import numpy as np

    from bench.bench_fused import per_call_ms, saved_pipeline
    from bench.bench_serving import load_products
    from product_model.fused import fused_predictor

    fused = fused_predictor(saved_pipeline(args))
    if fused is None:
        raise SystemExit("this model's pipeline has no fused form")
    forest = fused.forest
    forest.compile_walk()
    products = load_products()
    report: dict[str, Any] = {}
    for size in map(int, args.sizes.split(",")):
        inputs = [fused.forest_input(batch) for batch in batches_of(products, size)]
        digest = hashlib.sha1()
        for rows in inputs:
            digest.update(np.ascontiguousarray(forest.proba_of_rows(*rows)).tobytes())
        walk_ms = per_call_ms(lambda rows: forest.proba_of_rows(*rows), inputs, args.repeats)
        report[str(size)] = {"walk_ms": walk_ms, "digest": digest.hexdigest()}
    return report


def measure_in(source: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One measuring process with `source`'s `product_model` first on the path."""
    environment = os.environ | {"PYTHONPATH": f"{source}{os.pathsep}{REPO}"}
    # Run by path: `-m` would put the working directory, this checkout, first on the path.
    command = [sys.executable, __file__, "--measure-here", *sys.argv[1:]]
    done = subprocess.run(
        command, env=environment, cwd=REPO, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"measuring with {source} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.splitlines()[-1])


def main() -> None:
    parser = model_arguments(__doc__.splitlines()[0], "forest-walk", repeats=5)
    parser.set_defaults(sizes="1,8,20,32,100,1000")
    parser.add_argument("--before", type=Path, required=True, help="the other checkout's code")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--measure-here", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure_here:
        print(json.dumps(measure_here(args)))
        return
    sources = {"before": args.before.resolve(), "now": REPO}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in sources}
    for _ in range(args.rounds):  # alternate, so that a slower minute hits both
        for name, source in sources.items():
            runs[name].append(measure_in(source, args))
    rows = []
    for size in args.sizes.split(","):
        digests = {run[size]["digest"] for each in runs.values() for run in each}
        if len(digests) != 1:
            raise SystemExit(f"the two walks give other probabilities (batches of {size})")
        row: dict[str, Any] = {"size": int(size)}
        for name, each in runs.items():
            row[f"{name}_ms"] = round(statistics.median(run[size]["walk_ms"] for run in each), 4)
        row["speedup"] = round(row["before_ms"] / row["now_ms"], 3)
        rows.append(row)
    print(f"{'size':>6} {'before':>10} {'now':>10} {'speedup':>8}  (ms per call, walk alone)")
    for row in rows:
        print(
            f"{row['size']:>6} {row['before_ms']:>10.3f} {row['now_ms']:>10.3f} "
            f"{row['speedup']:>8.2f}"
        )
    delattr(args, "measure_here")  # not an option of the report's command
    write_report("bench.bench_forest_walk", args, {"rows": rows})


if __name__ == "__main__":
    main()
