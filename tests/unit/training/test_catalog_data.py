"""Data tests of the readers: whatever the file format, the rows that reach training have the
schema training expects, no missing labels or texts, no duplicated ids, and clean labels."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from training.catalog import load_catalog
from training.config import TrainConfig

CATEGORIES = {"python": "Python 3 module", "fonts": "font family", "games": "board game"}
ROWS_PER_CATEGORY = 6


def catalog_rows() -> list[dict[str, str]]:
    """Clean rows of three categories, then the kinds of mess real catalogs hold."""
    rows = [
        {
            "asin": f"{label}-{n}",
            "title": f"{text} number {n}",
            "description": f"A {text} for tests.",
            "brand": f"Debian {label} team",
            "main_cat": label,
        }
        for label, text in CATEGORIES.items()
        for n in range(ROWS_PER_CATEGORY)
    ]
    rows[0]["main_cat"] = "  Python "  # stray spaces
    rows[1]["main_cat"] = "PYTHON"  # a case variant of the most frequent spelling
    rows[2]["main_cat"] = "\tpython\n"  # tabs and newlines
    messy = [
        {"asin": "no-label", "title": "a font family", "description": "", "main_cat": ""},
        {"asin": "no-text", "title": "", "description": "", "main_cat": "games"},
        {"asin": "games-1", "title": "board game again", "description": "", "main_cat": "games"},
    ]
    return rows + [{"brand": "", **row} for row in messy]


def write(path: Path, rows: list[dict[str, str]]) -> Path:
    frame = pd.DataFrame(rows)
    if path.suffix in (".csv", ".tsv"):
        frame.to_csv(path, index=False, sep="," if path.suffix == ".csv" else "\t")
    elif path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif path.suffix == ".json":  # one array of objects, pretty-printed
        path.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    else:
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture(params=[".jsonl", ".json", ".csv", ".tsv", ".parquet"])
def catalog(request: pytest.FixtureRequest, tmp_path: Path):
    path = write(tmp_path / f"catalog{request.param}", catalog_rows())
    return load_catalog(TrainConfig(data=str(path), min_class_size=2))


def test_schema(catalog) -> None:
    frame = catalog.frame
    assert {"label", "asin", "title", "description", "brand"} <= set(frame.columns)
    assert frame["label"].map(type).eq(str).all()
    assert frame["title"].map(type).eq(str).all()


def test_no_missing_labels_or_texts(catalog) -> None:
    frame = catalog.frame
    assert frame["label"].str.strip().ne("").all()
    text = frame["title"].fillna("") + frame["description"].fillna("")
    assert text.str.strip().ne("").all()
    assert catalog.counts["dropped_no_label"] == 1 and catalog.counts["dropped_no_text"] == 1
    assert not {"no-label", "no-text"} & set(frame["asin"])


def test_no_duplicated_ids(catalog) -> None:
    assert not catalog.frame["asin"].duplicated().any()
    assert catalog.counts["dropped_duplicates"] == 1


def test_labels_are_clean_and_complete(catalog) -> None:
    assert catalog.labels.value_counts().to_dict() == dict.fromkeys(CATEGORIES, ROWS_PER_CATEGORY)
    assert catalog.counts["rows_kept"] == ROWS_PER_CATEGORY * len(CATEGORIES)
