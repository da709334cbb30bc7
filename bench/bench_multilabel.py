"""Multi-label tags: the default multi-label pipeline against a linear one-vs-rest model.

    nice -n 10 .venv/bin/python -m bench.bench_multilabel \
        --catalog ../shared/data/apt-catalog.jsonl.gz

The shared catalog's `category` field holds Debian tags (`role::program`, `use::editing`, ...).
Tags on at least 50 products are kept, products are split by the platform's hash holdout (20%),
and each model is scored on the same holdout:
- the default multi-label pipeline (`--task multilabel --label-column category`), with its
  default rare-tag row weights, and without them (`--tag-weighting none`);
- a linear one-vs-rest SVM on TF-IDF word 1-2-grams of title + description.
Each fit runs in its own process, so its peak memory (max RSS) is its own. Prints micro-,
macro- and samples-F1, training wall time, peak memory and the model's saved size side by side;
writes bench/results/multilabel.json. The machine is shared: compare within one run.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.multiclass import OneVsRestClassifier
from sklearn.svm import LinearSVC

from training.catalog_split import split_definition
from training.config import TrainConfig
from training.pipeline import model_input
from training.tag_catalog import indicator_matrix, load_tag_catalog, split_tag_catalog
from training.tag_evaluate import set_scores
from training.tag_model import fit_tag_model

RESULTS = Path(__file__).parent / "results"
VARIANTS: dict[str, dict[str, Any]] = {
    "default multi-label pipeline (rare-tag weights)": {},
    "multi-label pipeline, --tag-weighting none": {"tag_weighting": "none"},
}


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def saved_mb(model: Any) -> float:
    """Size of the model as the registry stores it (joblib, zlib level 3)."""
    buffer = io.BytesIO()
    joblib.dump(model, buffer, compress=("zlib", 3))
    return len(buffer.getvalue()) / 1e6


def text_of(frame: pd.DataFrame) -> list[str]:
    title = frame["title"].fillna("").astype(str)
    description = frame["description"].map(
        lambda v: " ".join(v) if isinstance(v, list) else (v or "")
    )
    return (title + " " + description).tolist()


# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the (large) forking process.
SERVING_PROBE = """
import sys, joblib, pandas as pd
model = joblib.load(sys.argv[1])
rows = pd.read_pickle(sys.argv[2])
for start in range(0, len(rows), 64):
    model.predict_proba(rows.iloc[start : start + 64])
status = open("/proc/self/status").read().split("VmHWM:")[1]
print(int(status.split()[0]) / 1024)
"""


def serving_rss_mb(model: Any, rows: pd.DataFrame) -> float:
    """Peak memory of a fresh interpreter that loads the saved model and predicts `rows` in
    batches of 64, as a serving process does (without the HTTP server around it)."""
    with tempfile.TemporaryDirectory() as scratch:
        model_path, rows_path = Path(scratch) / "model.joblib", Path(scratch) / "rows.pkl"
        joblib.dump(model, model_path, compress=("zlib", 3))
        rows.to_pickle(rows_path)
        command = [sys.executable, "-c", SERVING_PROBE, str(model_path), str(rows_path)]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def run_pipeline(config: TrainConfig, data: tuple[Any, Any, list[str]]) -> dict[str, Any]:
    train, holdout, tags = data
    start = time.perf_counter()
    model = fit_tag_model(config, train, tags, "multilabel")
    seconds = time.perf_counter() - start
    proba = model.served.predict_proba(model_input(holdout, config))
    scores = set_scores(holdout["label"].tolist(), model.decoder.label_sets(proba), tags)
    forest = model.served.named_steps["forest"]
    return scores | {
        "train_seconds": seconds,
        "peak_rss_mb": peak_mb(),
        "saved_mb": saved_mb(model.served),
        "forest_mb_in_memory": forest.nbytes / 1e6,
        "trees": forest.n_trees,
        "serving_peak_rss_mb": serving_rss_mb(
            model.served, model_input(holdout, config).head(1000)
        ),
    }


def run_linear(data: tuple[Any, Any, list[str]]) -> dict[str, Any]:
    train, holdout, tags = data
    start = time.perf_counter()
    words = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, max_features=200_000)
    X = words.fit_transform(text_of(train))
    linear = OneVsRestClassifier(LinearSVC(C=0.5), n_jobs=1)
    linear.fit(X, indicator_matrix(train["label"], tags))
    seconds = time.perf_counter() - start
    predicted = linear.predict(words.transform(text_of(holdout)))
    sets = [[tags[j] for j in np.flatnonzero(row)] for row in predicted]
    scores = set_scores(holdout["label"].tolist(), sets, tags)
    return scores | {
        "train_seconds": seconds,
        "peak_rss_mb": peak_mb(),
        "saved_mb": saved_mb((words, linear)),
    }


def in_child(function: Any, *args: Any) -> dict[str, Any]:
    """Run `function(*args)` in a forked process (its own peak memory) and return its result."""
    context = multiprocessing.get_context("fork")
    with context.Pool(1, maxtasksperchild=1) as pool:
        return dict(pool.apply(function, args))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--catalog", type=Path, required=True)
    parser.add_argument("--min-tag-count", type=int, default=50)
    parser.add_argument("--n-estimators", type=int, default=TrainConfig().n_estimators)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--output", type=Path, default=RESULTS / "multilabel.json")
    parser.add_argument(
        "--default-only", action="store_true", help="skip the --tag-weighting none variant"
    )
    args = parser.parse_args()
    base = TrainConfig(
        data=str(args.catalog),
        task="multilabel",
        label_column="category",
        min_tag_count=args.min_tag_count,
        n_estimators=args.n_estimators,
        n_jobs=args.n_jobs,
    )
    catalog = load_tag_catalog(base)
    data = split_tag_catalog(catalog, split_definition(base))
    print(f"{len(data[0])} training and {len(data[1])} holdout products, {len(data[2])} tags")
    print(f"before fitting, this process: {peak_mb():.0f} MB peak RSS")
    results: dict[str, Any] = {}
    summary = {
        "catalog": str(args.catalog),
        "min_tag_count": args.min_tag_count,
        "train_rows": len(data[0]),
        "holdout_rows": len(data[1]),
        "tags": len(data[2]),
        "n_estimators": args.n_estimators,
        "models": results,
        "note": "2-core machine shared with other jobs; compare within this run",
    }
    linear = "linear one-vs-rest (TF-IDF title + description)"
    jobs = [(linear, run_linear, (data,))]
    for name, overrides in list(VARIANTS.items())[: 1 if args.default_only else None]:
        jobs.append((name, run_pipeline, (base.model_copy(update=overrides), data)))
    for name, function, arguments in jobs:
        results[name] = in_child(function, *arguments)
        print(name, json.dumps(results[name]), flush=True)
        args.output.parent.mkdir(exist_ok=True)  # after each model: a long run keeps its figures
        args.output.write_text(json.dumps(summary, indent=1))
    print_table(results)


def print_table(results: dict[str, dict[str, Any]]) -> None:
    header = (
        f"{'model':<52}{'micro':>7}{'macro':>7}{'samples':>8}{'fit s':>8}{'peak MB':>9}{'MB':>7}"
    )
    print(header)
    for name, r in results.items():
        print(
            f"{name:<52}{r['f1_micro']:>7.3f}{r['f1_macro']:>7.3f}{r['f1_samples']:>8.3f}"
            f"{r['train_seconds']:>8.0f}{r['peak_rss_mb']:>9.0f}{r['saved_mb']:>7.1f}"
        )


if __name__ == "__main__":
    main()
