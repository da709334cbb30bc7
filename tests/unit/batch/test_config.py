from __future__ import annotations

import pytest

from batch.cli import main, parse_config
from batch.config import make_config, output_format, parse_spark_conf
from training.errors import ConfigError

REQUIRED = ["--model", "models:/m@champion", "--data", "catalog.jsonl.gz"]


def test_defaults_are_the_local_engine_with_top_3() -> None:
    config, _ = parse_config([*REQUIRED, "--output", "out.parquet"])
    assert (config.engine, config.top_k, config.spark_master) == ("local", 3, "local[*]")
    assert config.output_format == "parquet"


def test_the_id_column_is_trimmed_like_the_catalog_headers() -> None:
    config, _ = parse_config([*REQUIRED, "--output", "o.csv", "--id-column", "SKU "])
    assert config.id_column == "SKU"


@pytest.mark.parametrize(
    ("name", "kind"), [("a.parquet", "parquet"), ("b.CSV", "csv"), ("dir/c.jsonl", "jsonl")]
)
def test_output_format_comes_from_the_extension(name: str, kind: str) -> None:
    assert output_format(name) == kind


def test_an_unknown_output_extension_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"\.parquet, \.csv, \.jsonl"):
        output_format("out.xlsx")


def test_spark_writes_only_parquet() -> None:
    values = {"model": "m", "data": "d.jsonl", "output": "o.csv", "engine": "spark"}
    with pytest.raises(ConfigError, match="folder of Parquet"):
        make_config(values)


def test_spark_conf_is_parsed_once_into_a_mapping() -> None:
    assert parse_spark_conf(["spark.executor.memory=4g", " a.b = c=d "]) == {
        "spark.executor.memory": "4g",
        "a.b": "c=d",
    }
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_spark_conf(["spark.executor.memory"])


def test_a_bad_value_names_the_option() -> None:
    with pytest.raises(ConfigError, match="--top-k"):
        make_config({"model": "m", "data": "d", "output": "o.jsonl", "top_k": 0})


@pytest.mark.parametrize(
    "argv",
    [
        [*REQUIRED, "--output", "out.txt"],
        [*REQUIRED, "--output", "o.parquet", "--top-k", "0"],
        [*REQUIRED, "--output", "o.parquet", "--spark-conf", "novalue"],
        [*REQUIRED, "--output", "o.parquet", "--engine", "dask"],
        [*REQUIRED],
    ],
)
def test_bad_options_exit_2_with_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "error" in err and "Traceback" not in err


def test_a_blank_id_column_is_kept_apart_from_no_option() -> None:
    config, _ = parse_config([*REQUIRED, "--output", "o.csv", "--id-column", ""])
    assert config.id_column == ""
    assert parse_config([*REQUIRED, "--output", "o.csv"])[0].id_column is None
