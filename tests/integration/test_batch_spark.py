"""`product-classify --engine spark` on a real PySpark in local[2] mode (Java from Debian's
default-jre-headless): the same predictions as the local engine on every row, the same output
schema, nothing left behind on failure, and clear errors for bad input. One Spark session serves
the whole module (the CLI reuses an active session), to keep the module's time low."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.integration.batch_catalog import NO_TEXT_IDS, classify, leftovers, write_catalog
from tests.support import Registry

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("mlflow_uri_restored")]
ROWS = 300


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


@pytest.fixture(scope="module")
def both_engines(
    spark: Any, registry: Registry, catalog: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("engines")
    local, distributed = folder / "local.parquet", folder / "spark.parquet"
    args = [*model_args(registry), "--data", str(catalog)]
    assert classify(*args, "--output", str(local)) == 0
    assert classify(*args, "--output", str(distributed), "--engine", "spark") == 0
    return local, distributed


def test_both_engines_give_the_same_predictions_on_every_row(
    both_engines: tuple[Path, Path],
) -> None:
    local, distributed = (pd.read_parquet(p).set_index("product_id") for p in both_engines)
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
    local_schema = pq.read_schema(local)
    spark_schema = pq.ParquetDataset(distributed).schema
    assert spark_schema.names == local_schema.names
    assert [f.type for f in spark_schema] == [f.type for f in local_schema]


def test_a_failed_write_leaves_nothing_under_the_output(
    spark: Any, registry: Registry, catalog: Path, tmp_path: Path
) -> None:
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
