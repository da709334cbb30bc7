"""Forest-walk candidates side by side on one fitted forest: speed, exactness, size, start-up.

    .venv/bin/python -m bench.bench_forest_candidates --workdir /tmp/speed-sample \\
        [--extra-site /tmp/cand/lib/python3.11/site-packages]

Uses the pipeline bench_speed saved in --workdir (stock forest and compact forest) and compares,
on the holdout's first 1,000 rows: stock scikit-learn `predict_proba`, the compact forest (numba),
ONNX Runtime on the skl2onnx conversion and treelite's GTIL on its scikit-learn import, when
those are importable (--extra-site adds a folder where they are installed, after ours). Times are
this process's CPU time (the machine is shared). Writes bench/results/forest-candidates.json.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

RESULTS = Path(__file__).parent / "results"


def cpu_seconds(call: Any, *args: Any) -> tuple[float, Any]:
    start = time.process_time()
    result = call(*args)
    return time.process_time() - start, result


def measure(name: str, setup: Any, predict: Any, X: Any, stock: np.ndarray) -> dict[str, Any]:
    setup_s, model = cpu_seconds(setup)
    first_s, _ = cpu_seconds(predict, model, X[:1])
    batch_s = min(cpu_seconds(predict, model, X)[0] for _ in range(3))
    singles = [cpu_seconds(predict, model, X[i : i + 1])[0] for i in range(100)]
    proba = np.asarray(predict(model, X))
    figures = {
        "setup_cpu_s": setup_s,
        "first_call_cpu_s": first_s,
        "batch_1000_cpu_s": batch_s,
        "single_cpu_ms": float(np.median(singles) * 1000),
        "max_proba_diff_vs_stock": float(np.abs(proba - stock).max()),
    }
    print(name, figures, flush=True)
    return figures


def onnx_candidate(forest: Any, width: int) -> tuple[Any, int]:
    import onnxruntime
    from skl2onnx import to_onnx

    model = to_onnx(forest, np.zeros((1, width), dtype=np.float32), options={"zipmap": False})
    blob = model.SerializeToString()
    session = onnxruntime.InferenceSession(blob, providers=["CPUExecutionProvider"])
    return session, len(blob)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--extra-site", type=Path)
    args = parser.parse_args()
    if args.extra_site:
        sys.path.append(str(args.extra_site))

    stock_pipe = joblib.load(args.workdir / "stock.joblib")
    compact_pipe = joblib.load(args.workdir / "compact.joblib")
    rows = pd.read_pickle(args.workdir / "holdout.pkl").head(1000).to_dict("records")
    features = compact_pipe.named_steps["features"].transform(rows)
    selected = stock_pipe.named_steps["select"].transform(features)
    forest, compact = stock_pipe.named_steps["forest"], compact_pipe.named_steps["forest"]
    stock = forest.predict_proba(selected)
    dense = np.asarray(selected.toarray(), dtype=np.float32)
    report: dict[str, Any] = {"nodes": int(compact.child_.size), "trees": compact.n_trees}
    report["stock scikit-learn"] = measure(
        "stock", lambda: forest, lambda m, X: m.predict_proba(X), selected, stock
    )
    report["stock scikit-learn"]["pickled_mb"] = len(pickle.dumps(forest)) / 1e6
    report["compact forest (numba)"] = measure(
        "compact", lambda: compact, lambda m, X: m.predict_proba(X), features, stock
    )
    report["compact forest (numba)"]["pickled_mb"] = len(pickle.dumps(compact)) / 1e6
    try:
        session, size = onnx_candidate(forest, dense.shape[1])
        name = session.get_inputs()[0].name
        report["onnxruntime (skl2onnx)"] = measure(
            "onnx", lambda: session, lambda m, X: m.run(["probabilities"], {name: X})[0], dense,
            stock,
        )  # fmt: skip
        report["onnxruntime (skl2onnx)"]["model_mb"] = size / 1e6
    except Exception as exc:  # a candidate that fails is reported, not fatal
        report["onnxruntime (skl2onnx)"] = {"error": repr(exc)[:300]}
    try:
        import treelite

        model = treelite.sklearn.import_model(forest)
        report["treelite GTIL"] = measure(
            "treelite", lambda: model,
            lambda m, X: treelite.gtil.predict(m, X).reshape(len(X), -1), dense, stock,
        )  # fmt: skip
        report["treelite GTIL"]["model_mb"] = len(model.serialize_bytes()) / 1e6
    except Exception as exc:
        report["treelite GTIL"] = {"error": repr(exc)[:300]}
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "forest-candidates.json"
    out.write_text(json.dumps(report, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
