"""A small real model with a numeric column and no id column, trained once per session into a
temporary SQLite MLflow store, as a user's own catalog trains (`--id-column ''`); and the test
process's signal handlers restored after each test (`product-classify` sets its own)."""

from __future__ import annotations

import csv
import json
import os
import random
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import Registry, sqlite_store, tracking_uri_restored


@pytest.fixture(autouse=True)
def _signal_handlers_restored() -> Iterator[None]:
    """A finished run ignores further signals, so that a late one cannot make it exit 130: not
    the test process's way."""
    saved = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    yield
    for number, handler in saved.items():
        signal.signal(number, handler)


# label: (title words, weight range in grams)
KINDS = {
    "Mobile Phones": (["Samsung Galaxy", "Nokia", "Apple iPhone"], ["smartphone 5G"], (120, 230)),
    "CPUs": (["AMD Ryzen", "Intel Core"], ["desktop processor", "CPU 8 core"], (30, 90)),
    "Fridges": (["Bosch", "Beko"], ["fridge freezer", "larder fridge"], (40_000, 90_000)),
}
ROWS_PER_KIND = 30


def listings_rows() -> list[dict[str, str]]:
    """A price-comparison catalog: title, merchant, label and a weight written as text (blank
    for some rows, not a number for one)."""
    rng = random.Random(3)
    rows = []
    for label, (brands, nouns, weight) in KINDS.items():
        for i in range(ROWS_PER_KIND):
            grams = "" if i % 11 == 0 else str(rng.randint(*weight))
            rows.append(
                {
                    "Product Title": f"{rng.choice(brands)} {rng.randint(2, 99)} "
                    f"{rng.choice(nouns)}",
                    "Merchant": f"shop-{rng.randint(1, 9)}",
                    "Category Label": label,
                    "Weight (g)": "n/a" if i == 7 else grams,
                }
            )
    return rows


def write_listings_csv(path: Path) -> Path:
    rows = listings_rows()
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


# Titles that are no text, put among the listings' own: JSON numbers, booleans, a null.
ODD_TITLES: dict[int, object] = {0: 12345, 1: True, 2: 2.5, 3: None, 40: 7.0, 41: False}


def write_odd_titles(path: Path, numbers_only: bool = False) -> Path:
    """The listings as JSON lines with `ODD_TITLES` in place of some titles; `numbers_only`:
    every title a number (its length) or missing, none a boolean, so that Spark reads the
    column as numbers."""
    records: list[dict[str, object]] = []
    for at, row in enumerate(listings_rows()):
        title: object = ODD_TITLES.get(at, row["Product Title"])
        if numbers_only and isinstance(title, bool | str):
            title = len(row["Product Title"])
        records.append(row | {"Product Title": title})
    path.write_text("".join(json.dumps(row) + "\n" for row in records), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def listings_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_listings_csv(tmp_path_factory.mktemp("listings") / "listings.csv")


@pytest.fixture(scope="session")
def listings_registry(tmp_path_factory: pytest.TempPathFactory, listings_csv: Path) -> Registry:
    """The model trained on `listings_csv`: a numeric column (`double` in its signature) and no
    id column."""
    from training.config import TrainConfig
    from training.run import train

    root = tmp_path_factory.mktemp("listings-mlflow")
    uri = sqlite_store(root)
    config = TrainConfig(
        data=str(listings_csv),
        label_column="Category Label",
        text_columns=["Product Title"],
        token_columns=["Merchant"],
        numeric_columns=["Weight (g)"],
        id_column="",
        amazon_counts=False,
        model_name="listings",
        n_estimators=10,
        min_df=1,
        smote=False,
        force_promote=True,
        tracking_uri=uri,
        n_jobs=1,
    )
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    with tracking_uri_restored():
        result = train(config)
    return Registry(uri, root, "listings", result.model_version, result.model_uri)
