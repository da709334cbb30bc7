"""Where a fused prediction's time goes, stage by stage, per call size.

    python -m bench.bench_fused_stages --tracking-uri sqlite:////tmp/wb13/mlflow.db --sizes 1,16

Runs the stages of `FusedPredictor.predict_proba` one after the other, as it does, on calls of
products drawn at random from the bundled sample (as `bench_serving`'s clients send them), and
times each: reading the records into raw blocks, each TF-IDF block's text analysis (cleaning,
n-grams), looking the terms up and weighting them, the numeric block, merging and the column
selection, the linear class scores, and the forest walk. Everything but the walk holds the GIL:
over HTTP, that is the model's share of what one process can do. Microseconds per call and per
product, medians of the calls; checks first that the stages give the predictor's probabilities.
Writes `bench/results/fused-stages.json`.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from bench.bench_fused import model_arguments, saved_pipeline, write_report
from bench.bench_serving import load_products


def staged_proba(fused: Any, products: list[dict[str, Any]], clock: Callable[[str], None]) -> Any:
    """`fused.predict_proba(products)`, calling `clock(stage)` after each stage."""
    from product_model import fused as module
    from product_model.features import _records

    n = len(products)
    raw = fused.featurizer._blocks(_records(products))
    clock("records to blocks")
    for block in fused.blocks:
        for doc in raw[block.name]:
            block.analyze(doc)
        clock(f"analysis: {block.name}")
    terms = fused._term_weights(raw, n)  # analyses again, then looks up and weighs
    clock("lookups and weights (with the analyses again)")
    entries = module._merged(terms, fused._numeric(raw["numeric"]), fused.width)
    if fused.selected is not None:
        entries = module._kept(entries, fused.selected)
    clock("numeric block, merge, selection")
    if fused.scores is not None:
        entries = fused._with_scores(entries, n)
    clock("linear class scores")
    proba = fused.forest.proba_of_rows(
        module._indptr(entries.rows, n), entries.columns, entries.values
    )
    clock("forest walk")
    return proba


def measure(fused: Any, products: list[dict[str, Any]], size: int, calls: int) -> dict[str, Any]:
    chooser = random.Random(size)
    times: dict[str, list[float]] = {}
    for _ in range(calls):
        batch = chooser.sample(products, size)
        last = time.perf_counter()

        def clock(stage: str) -> None:
            nonlocal last
            now = time.perf_counter()
            times.setdefault(stage, []).append((now - last) * 1e6)
            last = now

        proba = staged_proba(fused, batch, clock)
        if not np.array_equal(proba, fused.predict_proba(batch)):
            raise SystemExit(f"the stages do not give the predictor's probabilities ({size})")
    stages = {stage: statistics.median(values) for stage, values in times.items()}
    lookups = "lookups and weights (with the analyses again)"
    analyses = sum(v for k, v in stages.items() if k.startswith("analysis"))
    stages["lookups and weights"] = max(stages.pop(lookups) - analyses, 0.0)
    total = sum(stages.values())
    return {
        "size": size,
        "calls": calls,
        "us_per_call": {k: round(v, 1) for k, v in stages.items()},
        "us_per_product": {k: round(v / size, 1) for k, v in stages.items()},
        "total_us_per_call": round(total, 1),
        "under_the_gil_us_per_product": round((total - stages["forest walk"]) / size, 1),
    }


def main() -> None:
    parser = model_arguments(__doc__.splitlines()[0], "fused-stages", repeats=0)
    parser.set_defaults(sizes="1,16,100")
    args = parser.parse_args()
    from product_model.fused import fused_predictor

    pipeline = saved_pipeline(args)
    pipeline.steps[-1][1].compile_walk()
    fused = fused_predictor(pipeline)
    if fused is None:
        raise SystemExit("this model's pipeline has no fused form")
    products = load_products()
    for start in range(0, 2000, 100):  # warm caches (stems, tokens) and the allocator
        fused.predict_proba(products[start : start + 100])
    rows = [
        measure(fused, products, int(size), max(40, 3000 // int(size)))
        for size in args.sizes.split(",")
    ]
    for row in rows:
        print(f"calls of {row['size']}: µs per product (median call)")
        for stage, value in row["us_per_product"].items():
            print(f"  {stage:<40} {value:>8.1f}")
        print(f"  {'under the GIL':<40} {row['under_the_gil_us_per_product']:>8.1f}")
    write_report("bench.bench_fused_stages", args, {"rows": rows})


if __name__ == "__main__":
    main()
