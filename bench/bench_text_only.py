"""Text-only catalogs: the default pipeline against a linear model on the same text and split.

    .venv/bin/python -m bench.bench_text_only --catalog ../shared/data/apt-catalog.jsonl.gz

The shared catalog is reduced to title + description (no id, no token columns, duplicates by
normalised text removed), split by the platform's hash holdout (20%), and scored by
- the default pipeline as a user runs it on such a catalog (`--id-column '' --token-columns ''`),
- the same without the linear class scores (`--no-linear-scores`, the earlier default),
- the same with linear scores on words only (`--linear-char-features 0`),
- the same with character n-grams of the title (`--char-ngram-columns title`),
- a linear SVM on TF-IDF word 1-2-grams plus character 2-5-grams of the same text.
Prints macro-F1 and accuracy side by side; writes bench/results/text_only.json.
"""

from __future__ import annotations

import argparse
import gzip
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import accuracy_score
from sklearn.svm import LinearSVC

from training.catalog import load_catalog
from training.catalog_split import split_catalog, split_definition
from training.config import TrainConfig
from training.evaluate import macro_f1
from training.fit_evaluate import fit_and_evaluate

RESULTS = Path(__file__).parent / "results"
TEXT_ONLY = {"id_column": "", "token_columns": [], "text_columns": ["title", "description"]}
VARIANTS: dict[str, dict[str, Any]] = {
    "default pipeline": {},
    "default without linear scores": {"linear_scores": False},
    "linear scores on words only": {"linear_char_features": 0},
    "default + title char n-grams": {"char_ngram_columns": ["title"]},
}


def reduce_catalog(source: Path, target: Path) -> Path:
    """Title, description and label only."""
    with gzip.open(source, "rt", encoding="utf-8") as read, target.open("w") as write:
        for line in read:
            record = json.loads(line)
            kept = {k: record.get(k) for k in ("title", "description", "main_cat")}
            write.write(json.dumps(kept) + "\n")
    return target


def linear_baseline(train: Any, test: Any) -> dict[str, float]:
    def text(frame: Any) -> list[str]:
        title = frame["title"].fillna("").astype(str)
        description = frame["description"].map(
            lambda v: " ".join(v) if isinstance(v, list) else (v or "")
        )
        return (title + " " + description).tolist()

    words = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True)
    started = time.perf_counter()
    x_train = sparse.hstack([words.fit_transform(text(train)), chars.fit_transform(text(train))])
    model = LinearSVC(class_weight="balanced").fit(x_train, train["label"])
    x_test = sparse.hstack([words.transform(text(test)), chars.transform(text(test))])
    predicted = model.predict(x_test)
    truth = test["label"].to_numpy()
    return {
        "f1_macro": macro_f1(truth, predicted),
        "accuracy": float(accuracy_score(truth, predicted)),
        "fit_seconds": time.perf_counter() - started,
    }


def pipeline_scores(config: TrainConfig, train: Any, test: Any) -> dict[str, float]:
    started = time.perf_counter()
    _, evaluation, _ = fit_and_evaluate(config, train, test, config.smote, {})
    return {
        "f1_macro": evaluation.metrics["f1_macro"],
        "accuracy": evaluation.metrics["accuracy"],
        "fit_seconds": time.perf_counter() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=Path, default=Path("../shared/data/apt-catalog.jsonl.gz"))
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        reduced = reduce_catalog(args.catalog, Path(scratch) / "text-only.jsonl")
        base = TrainConfig(data=str(reduced), **TEXT_ONLY)
        catalog = load_catalog(base)
    train, test = split_catalog(catalog, split_definition(base))
    print(f"{len(train)} training rows, {len(test)} holdout rows", flush=True)
    figures: dict[str, Any] = {"rows": {"train": len(train), "holdout": len(test)}}
    figures["linear SVM (word 1-2 + char 2-5 TF-IDF)"] = linear_baseline(train, test)
    for name in args.variants:
        config = base.model_copy(update=VARIANTS[name])
        figures[name] = pipeline_scores(config, train, test)
        print(name, figures[name], flush=True)
    for name, values in figures.items():
        if "f1_macro" in values:
            print(f"{name:45} macro-F1 {values['f1_macro']:.3f}  accuracy {values['accuracy']:.3f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "text_only.json").write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
