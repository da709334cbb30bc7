"""`product-classify --engine spark` on a real PySpark in local[2] mode (Java from Debian's
default-jre-headless): the same predictions as the local engine on every row, the same output
schema, nothing left behind on failure, and clear errors for bad input; for a multilabel (tag)
model and a category-path model too, whose outputs carry the same tag or path columns from both
engines. One Spark session serves the whole module (the CLI reuses an active session), to keep the
module's time low."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

from batch.scoring import OUTPUT_COLUMNS, output_schema
from tests.integration.batch_catalog import NO_TEXT_IDS, classify, leftovers, write_catalog
from tests.integration.test_multilabel import write_path_catalog
from tests.support import Registry, train_tiny
from tests.unit.batch import conftest as listings

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("mlflow_uri_restored")]
ROWS = 300
# The unit tests' small model without an id column, and its catalog (fixtures shared by name).
listings_csv, listings_registry = listings.listings_csv, listings.listings_registry


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    if shutil.which("java") is None:
        pytest.fail("java not found: install Debian's default-jre-headless", pytrace=False)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_catalog(tmp_path_factory.mktemp("spark-batch") / "catalog.jsonl.gz", ROWS)


def model_args(registry: Registry) -> list[str]:
    return [
        "--model",
        f"models:/{registry.model_name}@champion",
        "--tracking-uri",
        registry.tracking_uri,
    ]


def score_with_both(registry: Registry, catalog: Path, folder: Path) -> tuple[Path, Path]:
    """The catalog scored by the local engine and by Spark: (local file, Spark folder)."""
    local, distributed = folder / "local.parquet", folder / "spark.parquet"
    args = [*model_args(registry), "--data", str(catalog)]
    assert classify(*args, "--output", str(local)) == 0
    assert classify(*args, "--output", str(distributed), "--engine", "spark") == 0
    return local, distributed


@pytest.fixture(scope="module")
def both_engines(
    spark: Any, registry: Registry, catalog: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    return score_with_both(registry, catalog, tmp_path_factory.mktemp("engines"))


def test_both_engines_give_the_same_predictions_on_every_row_in_the_catalog_s_order(
    both_engines: tuple[Path, Path],
) -> None:
    """Spark's rows were shuffled over the cores (0 % in place): they come in the local
    engine's order, its part files read in the order of their names."""
    local, distributed = (pd.read_parquet(p).set_index("product_id") for p in both_engines)
    assert distributed.index.tolist() == local.index.tolist()
    assert distributed.index.is_unique and len(distributed) == len(local) == ROWS + 3
    distributed = distributed.loc[local.index]
    assert distributed["label"].tolist() == local["label"].tolist()
    assert distributed["probability"].fillna(-1).tolist() == pytest.approx(
        local["probability"].fillna(-1).tolist()
    )
    assert distributed["top_labels"].map(list).tolist() == local["top_labels"].map(list).tolist()
    assert distributed["reason"].fillna("").tolist() == local["reason"].fillna("").tolist()
    assert (distributed.loc[list(NO_TEXT_IDS), "label"] == "").all()


def test_both_engines_write_the_same_schema(both_engines: tuple[Path, Path]) -> None:
    local, distributed = both_engines
    assert distributed.is_dir() and list(distributed.glob("part-*.parquet"))
    assert_same_schema(local, distributed)
    assert pq.ParquetDataset(distributed).schema.names == list(OUTPUT_COLUMNS)  # no tag columns


def assert_same_schema(local: Path, distributed: Path) -> None:
    assert distributed.is_dir() and list(distributed.glob("part-*.parquet"))
    local_schema = pq.read_schema(local)
    spark_schema = pq.ParquetDataset(distributed).schema
    assert spark_schema.names == local_schema.names
    assert [f.type for f in spark_schema] == [f.type for f in local_schema]


def test_a_failed_write_leaves_nothing_under_the_output(
    spark: Any,
    registry: Registry,
    catalog: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """And says why in the Java cause's words (it said "Py4JJavaError: An error occurred while
    calling o242.parquet")."""
    output = tmp_path / "labels.parquet"
    # A codec Spark accepts by name but does not ship: the tasks fail as they write their files.
    spark.conf.set("spark.sql.parquet.compression.codec", "lzo")
    try:
        code = classify(
            *model_args(registry),
            "--data",
            str(catalog),
            "--output",
            str(output),
            "--engine",
            "spark",
        )
    finally:
        spark.conf.unset("spark.sql.parquet.compression.codec")
    assert code == 1
    assert leftovers(tmp_path, "labels") == []
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith(f"product-classify: error: the Spark job writing --output {output} ")
    assert "ClassNotFoundException: com.hadoop.compression.lzo.LzoCodec" in error
    assert "Py4J" not in error and "An error occurred while calling" not in error


def test_bad_input_exits_3_with_a_clear_message(
    spark: Any,
    registry: Registry,
    catalog: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    output = str(tmp_path / "labels.parquet")
    spark_args = [*model_args(registry), "--output", output, "--engine", "spark"]
    assert classify(*spark_args, "--data", str(catalog), "--id-column", "sku") == 3
    assert "id column 'sku' not found" in capsys.readouterr().err
    assert classify(*spark_args, "--data", str(tmp_path / "missing.jsonl.gz")) == 3
    assert "no such file" in capsys.readouterr().err
    assert leftovers(tmp_path, "labels") == []


def assert_same_rows(local_path: Path, spark_path: Path, key: str = "product_id") -> pd.DataFrame:
    """Every column equal row by row, in the same order (probabilities to float precision); the
    local output."""
    local, distributed = (pd.read_parquet(p).set_index(key) for p in (local_path, spark_path))
    assert distributed.index.tolist() == local.index.tolist()
    for column in local.columns:
        expected, actual = local[column].tolist(), distributed[column].tolist()
        if column.endswith("probabilities"):
            assert [list(v) for v in actual] == [pytest.approx(list(v)) for v in expected], column
        elif column == "probability":
            assert pd.Series(actual).fillna(-1).tolist() == pytest.approx(
                pd.Series(expected).fillna(-1).tolist()
            )
        elif column.startswith(("top_", "tag", "path")):
            assert [list(v) for v in actual] == [list(v) for v in expected], column
        else:
            assert pd.Series(actual).fillna("").tolist() == pd.Series(expected).fillna("").tolist()
    return local


TAG_TRAINING: dict[str, Any] = {"task": "multilabel", "label_column": "category"}
TAG_TRAINING |= {"min_tag_count": 10, "select_k_best": 0}


@pytest.fixture(scope="module")
def tag_engines(
    spark: Any, registry: Registry, catalog: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    """A tag model (the sample's Debian tags) scored on the module's catalog by both engines."""
    root = tmp_path_factory.mktemp("tag-model")
    tags = train_tiny(registry.tracking_uri, "batch-spark-tags", root, **TAG_TRAINING)
    return score_with_both(tags, catalog, root)


def test_a_tag_model_gives_the_same_output_from_both_engines(
    tag_engines: tuple[Path, Path],
) -> None:
    assert_same_schema(*tag_engines)
    local = assert_same_rows(*tag_engines)
    assert ["product_id", *local.columns] == output_schema("multilabel").names
    scored = local[local["reason"].isna()]
    assert scored["tags"].map(len).min() >= 1 and scored["tags"].map(len).max() >= 2
    falling = scored["tag_probabilities"].map(lambda p: list(p) == sorted(p, reverse=True))
    assert falling.all()
    assert (local.loc[list(NO_TEXT_IDS), "tags"].map(len) == 0).all()


PATH_TRAINING: dict[str, Any] = {"task": "path", "label_column": "category", "min_tag_count": 5}
PATH_TRAINING |= {"text_columns": ["title"], "token_columns": [], "id_column": "sku"}
PATH_TRAINING |= {"amazon_counts": False, "min_df": 1, "select_k_best": 0}
PATH_TRAINING |= {"label_separator": "/"}  # the catalog writes its paths `A/B/C`
BLANK_PATH_ROWS = [{"sku": "no-title-1", "title": ""}, {"sku": "no-title-2", "title": "  "}]


@pytest.fixture(scope="module")
def path_engines(
    spark: Any, registry: Registry, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    """A category-path model trained on a small synthetic catalog, which both engines score
    again with two rows without a title."""
    root = tmp_path_factory.mktemp("path-model")
    training = write_path_catalog(root / "paths.jsonl", count=240)
    model = train_tiny(
        registry.tracking_uri, "batch-spark-paths", root, data=str(training), **PATH_TRAINING
    )
    scoring = root / "paths-to-score.jsonl"
    lines = [json.dumps(row) for row in BLANK_PATH_ROWS]
    scoring.write_text(training.read_text() + "\n".join(lines) + "\n")
    return score_with_both(model, scoring, root)


def test_a_path_model_gives_the_same_output_from_both_engines(
    path_engines: tuple[Path, Path],
) -> None:
    assert_same_schema(*path_engines)
    local = assert_same_rows(*path_engines)
    assert ["product_id", *local.columns] == output_schema("path").names
    scored = local[local["reason"].isna()]
    assert (scored["label"] == scored["path"].map("/".join)).all()  # the catalog's spelling
    assert scored["path"].map(len).max() == 3
    assert (local.loc[[r["sku"] for r in BLANK_PATH_ROWS], "path"].map(len) == 0).all()


@pytest.fixture(scope="module")
def listings_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The listings catalog as a folder of Parquet files whose sorted names are not in the order
    of their sizes (Spark reads the largest first), one of them in a subfolder."""
    frame = pd.DataFrame(listings.listings_rows())
    folder = tmp_path_factory.mktemp("listings-folder")
    parts = {"a.parquet": frame[:10], "b/c.parquet": frame[10:70], "d.parquet": frame[70:]}
    parts["_temporary/0/left-over.parquet"] = frame[:5]  # not catalog: both engines skip it
    for name, part in parts.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        part.to_parquet(folder / name, index=False)
    return folder


@pytest.fixture(scope="module")
def listings_array(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The listings catalog as one JSON array of objects, over many lines."""
    path = tmp_path_factory.mktemp("listings-array") / "listings.json"
    path.write_text(json.dumps(listings.listings_rows(), indent=2), encoding="utf-8")
    return path


@pytest.mark.parametrize("shape", ["listings_folder", "listings_array"])
def test_without_an_id_column_both_engines_number_the_rows_alike(
    spark: Any,
    listings_registry: Registry,
    shape: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The same row numbers and labels from both engines, and the same count of values that are
    not numbers (the catalog's `n/a` weights, read as missing)."""
    catalog = request.getfixturevalue(shape)
    args = [*model_args(listings_registry), "--data", str(catalog), "--json"]
    local_path, spark_path = tmp_path / "local.parquet", tmp_path / "spark.parquet"
    assert classify(*args, "--output", str(local_path)) == 0
    local_summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert classify(*args, "--output", str(spark_path), "--engine", "spark") == 0
    spark_summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    not_numbers = sum(row["Weight (g)"] == "n/a" for row in listings.listings_rows())
    assert local_summary["not_numbers"] == {"Weight (g)": not_numbers} and not_numbers > 0
    assert spark_summary["not_numbers"] == local_summary["not_numbers"]
    local = pd.read_parquet(local_path)
    distributed = pd.read_parquet(spark_path).sort_values("row").reset_index(drop=True)
    assert local["row"].tolist() == list(range(len(listings.listings_rows())))
    assert distributed["row"].tolist() == local["row"].tolist()
    assert distributed["label"].tolist() == local["label"].tolist()


def test_numbers_and_booleans_as_titles_are_read_alike_by_both_engines(
    spark: Any,
    listings_registry: Registry,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """As their text, by both engines and in every chunk size. A file whose titles are all
    numbers (Spark reads the column as numbers) failed the Spark job (exit 1, "An exception was
    thrown from the Python worker") and a local chunk of numbers alone (exit 3); a title column
    of dates is refused before scoring, in the local engine's words."""
    args = model_args(listings_registry)
    for numbers_only in (False, True):
        catalog = listings.write_odd_titles(tmp_path / f"titles-{numbers_only}.jsonl", numbers_only)
        outputs = [tmp_path / f"{name}-{numbers_only}.parquet" for name in ("one", "all", "spark")]
        runs = [["--chunk-size", "1"], [], ["--engine", "spark"]]
        for output, options in zip(outputs, runs, strict=True):
            code = classify(*args, "--data", str(catalog), "--output", str(output), *options)
            assert code == 0, capsys.readouterr().err
        one, default = (pd.read_parquet(output) for output in outputs[:2])
        assert one.equals(default)
        assert default["reason"].notna().tolist() == [at == 3 for at in range(len(one))]
        assert_same_rows(outputs[1], outputs[2], "row")
    dates = tmp_path / "dates.parquet"
    pd.DataFrame({"Product Title": pd.to_datetime(["2024-03-01"])}).to_parquet(dates)
    refused = ["--data", str(dates), "--output", str(tmp_path / "d.parquet")]
    assert classify(*args, *refused, "--engine", "spark") == 3
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"product-classify: error: {dates}: column 'Product Title' holds dates or times (Spark "
        "type timestamp_ntz); the model reads text there: write the column as text"
    )


REFUSED_CATALOGS = {
    "too-many-cells.csv": "asin,title,brand\nA1,a strategy game,acme\nA2,a puzzle,acme,MORE\n",
    "first-row-too-many-cells.csv": "asin,title,brand\nA1,a strategy game,acme,MORE\nA2,a,b\n",
    "open-quote.csv": 'asin,title,brand\nA1,a strategy game,acme\nA2,"never closed,acme\n',
    "open-quote-last-cell.csv": 'asin,title\nA1,a strategy game\nA2,"never closed\n',
    "header-only.csv": "asin,title\n",
    "empty.csv": "",
    "empty.jsonl": "",
    "no-rows.parquet": None,  # a Parquet file of the right columns and 0 rows
}
# What Spark reading a remote URI (here file://) tells without the local reader: not the line,
# nor a quote left open in a row's last cell (the rest of the file fits in that cell).
REMOTE_ERRORS = {
    "too-many-cells.csv": "not a valid CSV file: a row has 4 cells where the header has 3: "
    "'A2,a puzzle,acme,MORE'",
    "open-quote.csv": "not a valid CSV file: a quoted value is never closed, in the row: "
    "'A2,\"never closed,acme'",
    "header-only.csv": "the catalog holds no rows",
    "empty.csv": "the catalog holds no rows",
}


def write_refused_catalog(folder: Path, name: str) -> Path:
    catalog, content = folder / name, REFUSED_CATALOGS[name]
    if content is None:
        empty = pd.Series([], dtype=str)
        pd.DataFrame({"asin": empty, "title": empty}).to_parquet(catalog)
    else:
        catalog.write_text(content, encoding="utf-8")
    return catalog


@pytest.mark.parametrize("name", list(REFUSED_CATALOGS))
def test_both_engines_refuse_the_same_catalogs(
    spark: Any, registry: Registry, name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Spark scored a row of too many cells (dropping them) and a never-closed quote, and wrote
    an empty output for an empty catalog (exit 0), where the local engine stops with exit 3."""
    catalog = write_refused_catalog(tmp_path, name)
    runs = [("local", str(catalog)), ("spark", str(catalog))]
    if name in REMOTE_ERRORS:
        runs.append(("spark", f"file://{catalog}"))
    errors = []
    for engine, data in runs:
        output = str(tmp_path / f"labels-{len(errors)}.parquet")
        args = [*model_args(registry), "--data", data, "--output", output, "--engine", engine]
        code = classify(*args)
        errors.append(capsys.readouterr().err.strip().splitlines()[-1])
        assert code == 3, errors[-1]
    assert leftovers(tmp_path, "labels") == []
    assert errors[0] == errors[1]  # the local engine's words, with the line
    if "quote" in name or "cells" in name:
        assert errors[0].startswith(f"product-classify: error: {catalog}: not a valid CSV file: ")
        assert any(where in errors[0] for where in ("line 3", "row 2", "row 1 (the first"))
    else:
        assert errors[0] == f"product-classify: error: {catalog}: the catalog holds no rows"
    if name in REMOTE_ERRORS:
        assert errors[2] == f"product-classify: error: file://{catalog}: {REMOTE_ERRORS[name]}"


def test_a_short_row_and_a_lower_case_column_are_read_alike(
    spark: Any,
    listings_registry: Registry,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A row with fewer cells than the header is read with the rest missing by both engines; a
    catalog naming the model's `Merchant` input `merchant` is scored without it by both, each
    saying so in one warning (it was silent)."""
    rows = listings.listings_rows()
    frame = pd.DataFrame(rows).rename(columns={"Merchant": "merchant"})
    catalog = tmp_path / "listings.csv"
    frame.to_csv(catalog, index=False)
    with catalog.open("a", encoding="utf-8") as handle:
        handle.write("Nokia 12 smartphone 5G\n")  # one cell of four
    args = [*model_args(listings_registry), "--data", str(catalog)]
    local_path, spark_path = tmp_path / "local.parquet", tmp_path / "spark.parquet"
    with caplog.at_level("WARNING", logger="batch.scoring"):
        assert classify(*args, "--output", str(local_path)) == 0
        assert classify(*args, "--output", str(spark_path), "--engine", "spark") == 0
    warning = (
        f"{catalog}: the catalog has no column for the model's input 'Merchant' (is it "
        "'merchant'?); its products are scored without it"
    )
    assert [r.getMessage() for r in caplog.records if r.name == "batch.scoring"] == [warning] * 2
    local = pd.read_parquet(local_path)
    distributed = pd.read_parquet(spark_path).sort_values("row").reset_index(drop=True)
    assert len(local) == len(rows) + 1 and local["label"].iloc[-1] == "Mobile Phones"
    assert distributed["label"].tolist() == local["label"].tolist()
