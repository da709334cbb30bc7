"""The forest walk with nodes stored breadth first (models before the eighth session) and paired
depth first (`product_model.forest`, now), side by side in one process, per call size.

    python -m bench.bench_node_order --tracking-uri sqlite:////tmp/wb8/mlflow.db
    python -m bench.bench_node_order --model-dir build/bench/full-catalog-model --output ...

Loads a saved model's forest with this repository's `product_model`, stores its nodes both ways
(whatever order the model was saved in), checks both give the same probabilities bit for bit,
then times the compiled walk alone on the forest input of the bundled sample's products (built
once beforehand), alternating the two: milliseconds per call, medians of `--repeats`. Writes
`bench/results/node-order.json`.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from bench.bench_fused import model_arguments, per_call_ms, saved_pipeline, write_report
from bench.bench_serving import load_products

Order = Callable[[np.ndarray, np.ndarray], np.ndarray]


def breadth_first(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """A tree's node ids level by level, each inner node's children side by side."""
    from product_model.forest import _levels

    return np.concatenate(_levels(left, right))


def stored_in(forest: Any, order: Order) -> Any:
    """A copy of a `CompactForest` whose every tree's nodes are stored in `order`."""
    child = forest.child_.astype(np.int64)
    feature, threshold, new_child = forest.feature_.copy(), forest.threshold_.copy(), child.copy()
    ends = [*forest.roots_[1:], child.size]
    for root, end in zip(forest.roots_.astype(np.int64), ends, strict=True):
        inner = child[root:end] >= 0  # a leaf's child points into the leaf table (< 0)
        left = np.where(inner, child[root:end] - root, -1)
        old = order(left, np.where(inner, left + 1, -1))
        position = np.empty_like(old)
        position[old] = np.arange(old.size)
        moved = root + position
        feature[moved] = forest.feature_[root:end]
        threshold[moved] = forest.threshold_[root:end]
        new_child[moved] = np.where(inner, root + position[np.maximum(left, 0)], child[root:end])
    copied = copy.deepcopy(forest)
    copied.feature_, copied.threshold_ = feature, threshold
    copied.child_ = new_child.astype(np.int32)
    copied._pack_nodes()
    return copied


def walk_rows(forest: Any, rows: tuple[np.ndarray, ...]) -> np.ndarray:
    return forest.proba_of_rows(*rows)


def measure(forests: dict[str, Any], inputs: list[Any], size: int, repeats: int) -> dict:
    reference = None
    for name, forest in forests.items():
        proba = [forest.proba_of_rows(*rows) for rows in inputs]
        if reference is not None and not all(map(np.array_equal, proba, reference)):
            raise SystemExit(f"{name} gives other probabilities (batches of {size})")
        reference = proba
    times: dict[str, list[float]] = {name: [] for name in forests}
    for _ in range(3):  # alternate, so that a slower minute hits both
        for name, forest in forests.items():
            walk = functools.partial(walk_rows, forest)
            times[name].append(per_call_ms(walk, inputs, repeats))
    row: dict[str, Any] = {"size": size, "calls": len(inputs)}
    row |= {f"{name}_ms": round(float(np.median(ms)), 4) for name, ms in times.items()}
    row["speedup"] = round(row["breadth_first_ms"] / row["paired_depth_first_ms"], 3)
    return row


def main() -> None:
    from product_model.forest import _paired_depth_first
    from product_model.fused import fused_predictor

    args = model_arguments(__doc__.splitlines()[0], "node-order", repeats=5).parse_args()
    pipeline = saved_pipeline(args)
    fused = fused_predictor(pipeline)
    if fused is None:
        raise SystemExit("this model's pipeline has no fused form")
    forest = fused.forest
    forests = {
        "breadth_first": stored_in(forest, breadth_first),
        "paired_depth_first": stored_in(forest, _paired_depth_first),
    }
    for each in forests.values():
        each.compile_walk()
    products = load_products()
    rows = []
    for size in map(int, args.sizes.split(",")):
        batches = [products[i : i + size] for i in range(0, len(products), size)]
        inputs = [fused.forest_input(batch) for batch in batches[: max(3, 3000 // size)]]
        rows.append(measure(forests, inputs, size, args.repeats))
    print(f"{'size':>6} {'breadth first':>14} {'paired depth first':>19} {'speedup':>8}  (ms/call)")
    for row in rows:
        print(
            f"{row['size']:>6} {row['breadth_first_ms']:>14.3f} "
            f"{row['paired_depth_first_ms']:>19.3f} {row['speedup']:>8.2f}"
        )
    report = {"nodes": int(forest.child_.size), "trees": int(forest.n_trees), "rows": rows}
    write_report("bench.bench_node_order", args, report)


if __name__ == "__main__":
    main()
