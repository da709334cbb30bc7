"""Label and id columns of numbers: a label is spelled the same whatever other rows hold (pandas
reads an integer column with a missing value as floats), and ids are text, as serving reads them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from training.catalog import load_catalog
from training.catalog_keys import integers_as_written
from training.config import TrainConfig
from training.tag_catalog import load_tag_catalog

WORDS = {100: "kernel driver module", 101: "arcade puzzle game", 102: "text editor vim"}


def rows(missing_label: bool) -> list[dict]:
    """12 products per class, integer ids and integer category ids; one label missing."""
    records = [
        {"pid": label * 100 + i, "name": f"{words} {i}", "cat_id": label}
        for label, words in WORDS.items()
        for i in range(12)
    ]
    if missing_label:
        records[0]["cat_id"] = None
    return records


def config(path: Path, **overrides: object) -> TrainConfig:
    values = {
        "data": str(path),
        "label_column": "cat_id",
        "id_column": "pid",
        "text_columns": ["name"],
        "token_columns": [],
        "amazon_counts": False,
    }
    return TrainConfig(**(values | overrides))


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return path


def write_parquet(path: Path, records: list[dict]) -> Path:
    pq.write_table(pa.Table.from_pylist(records), path)  # cat_id and pid: int64, nulls kept
    return path


@pytest.mark.parametrize("write", [write_jsonl, write_parquet], ids=["jsonl", "parquet"])
@pytest.mark.parametrize("missing_label", [False, True])
def test_integer_labels_and_ids_are_spelled_as_written(
    tmp_path: Path, write, missing_label: bool
) -> None:
    path = write(
        tmp_path / f"c.{'jsonl' if write is write_jsonl else 'parquet'}", rows(missing_label)
    )
    frame = load_catalog(config(path)).frame
    assert set(frame["label"]) == {"100", "101", "102"}  # never "100.0"
    assert frame["pid"].map(type).eq(str).all() and "10001" in set(frame["pid"])


def test_one_fractional_label_renames_no_other_class(tmp_path: Path) -> None:
    records = rows(missing_label=True)
    for record in records[-12:]:
        record["cat_id"] = 102.5
    frame = load_catalog(config(write_jsonl(tmp_path / "c.jsonl", records))).frame
    assert set(frame["label"]) == {"100", "101", "102.5"}


def test_a_missing_id_stays_missing_and_present_ids_are_integers(tmp_path: Path) -> None:
    records = rows(missing_label=False)
    records[1]["pid"] = None  # pandas then reads every id as a float
    frame = load_catalog(config(write_parquet(tmp_path / "c.parquet", records))).frame
    assert frame["pid"].iloc[1] is None and frame["pid"].iloc[2] == "10002"


def test_a_label_map_keyed_by_the_integer_text_applies(tmp_path: Path) -> None:
    (tmp_path / "map.yaml").write_text("'100': kernel\n")
    path = write_jsonl(tmp_path / "c.jsonl", rows(missing_label=True))
    frame = load_catalog(config(path, label_map=str(tmp_path / "map.yaml"))).frame
    assert set(frame["label"]) == {"kernel", "101", "102"}


def test_whole_numbers_are_integers_beside_fractions_which_stay_as_they_are() -> None:
    """One label written 112.5 must not turn every other class into `100.0`."""
    values = pd.Series([100.0, np.nan, 112.5, 2.0**53])
    assert integers_as_written(values).tolist() == [100, None, 112.5, 2.0**53]
    text = pd.Series(["a", 1])
    assert integers_as_written(text) is text


def test_nullable_integers_and_lists_of_whole_floats_become_integers() -> None:
    nullable = pd.Series(pd.array([100, None], dtype="Int64"))
    assert integers_as_written(nullable).tolist() == [100, None]  # not "<NA>"
    lists = pd.Series([np.array([100.0, np.nan]), np.array([101.0]), None], dtype=object)
    assert integers_as_written(lists).tolist() == [[100, None], [101], None]


def test_integer_tags_of_a_parquet_list_column_with_a_null(tmp_path: Path) -> None:
    records = [
        {"name": f"{words} {i}", "tags": [label, None] if i == 0 else [label, 7]}
        for label, words in WORDS.items()
        for i in range(6)
    ]
    table = pa.Table.from_pylist(
        records, pa.schema([("name", pa.string()), ("tags", pa.list_(pa.int64()))])
    )
    pq.write_table(table, tmp_path / "t.parquet")
    catalog = load_tag_catalog(
        config(
            tmp_path / "t.parquet",
            task="multilabel",
            label_column="tags",
            id_column="",
            min_tag_count=2,
        )
    )
    assert {tag for tags in catalog.frame["label"] for tag in tags} == {"100", "101", "102", "7"}
