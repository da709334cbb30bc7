from __future__ import annotations

import os
from pathlib import Path

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


def catalog_and_outputs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """(--data, --output) pairs where the labels would replace the catalog."""
    catalog = tmp_path / "catalog.jsonl"
    catalog.write_text('{"title": "a game"}\n')
    (tmp_path / "link.jsonl").symlink_to(catalog)
    (tmp_path / "hard.jsonl").hardlink_to(catalog)
    folder = tmp_path / "feed.parquet"
    folder.mkdir()
    (folder / "part-0.parquet").write_bytes(b"PAR1")
    return {
        "the same file": (catalog, str(catalog)),
        "the same file, relative": (catalog, "./sub/../catalog.jsonl"),
        "a symlink to it": (catalog, str(tmp_path / "link.jsonl")),
        "a hard link to it": (catalog, str(tmp_path / "hard.jsonl")),
        "inside the Parquet folder": (folder, str(folder / "labels.parquet")),
        "the Parquet folder itself": (folder, str(folder)),
        "a folder holding the catalog": (folder / "part-0.parquet", str(folder)),
    }


@pytest.mark.parametrize(
    "case",
    ["the same file", "the same file, relative", "a symlink to it", "a hard link to it",
     "inside the Parquet folder", "the Parquet folder itself", "a folder holding the catalog"],
)  # fmt: skip
def test_the_output_never_replaces_the_catalog(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--data X --output X --overwrite` wrote the labels over the catalog (exit 0)."""
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    data, output = catalog_and_outputs(tmp_path)[case]
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with pytest.raises(SystemExit) as stop:
        main(["--model", "models:/m@champion", "--data", str(data), "--output", output,
              "--overwrite"])  # fmt: skip
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"--output {output} is " in err[0] and f"(--data {data})" in err[0]
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_an_output_inside_the_catalog_folder_says_to_write_elsewhere(
    overwrite: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --overwrite the message still offered it, which would not have helped."""
    data, output = catalog_and_outputs(tmp_path)["inside the Parquet folder"]
    with pytest.raises(SystemExit) as stop:
        main(["--model", "models:/m@champion", "--data", str(data), "--output", output,
              *overwrite])  # fmt: skip
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "--overwrite" not in err and "pass an --output outside it" in err


def test_an_output_beside_the_catalog_is_fine(tmp_path: Path) -> None:
    data = tmp_path / "feed.parquet"
    values: dict[str, object] = {"model": "m", "data": str(data)}
    values["output"] = str(tmp_path / "feed-labels.parquet")
    assert make_config(values).output.endswith("feed-labels.parquet")


@pytest.mark.parametrize(("options", "bar"), [(["--no-progress"], "false"), ([], "true")])
def test_no_progress_also_turns_off_mlflow_s_download_bar(
    options: list[str], bar: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import batch.cli

    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "true")  # restored afterwards
    seen: list[str] = []

    class Summary:
        def text(self) -> str:
            return "summary"

    def score(config: object) -> Summary:
        seen.append(os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"])  # as MLflow reads it
        return Summary()

    monkeypatch.setattr(batch.cli, "score", score)
    main([*REQUIRED, "--output", "o.parquet", *options])
    assert seen == [bar]


@pytest.mark.parametrize("engine", ["local", "spark"])
def test_an_unwritable_output_stops_before_the_model_loads(
    engine: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No MLflow store is there to load a model from: the output is checked first."""
    folder = next(f for f in (Path("/proc"), Path("/sys/kernel")) if f.is_dir())
    output = f"{folder}/x.parquet"
    store = f"sqlite:///{tmp_path / 'no-store.db'}"
    with pytest.raises(SystemExit) as stop:
        main([*REQUIRED, "--output", output, "--engine", engine, "--tracking-uri", store])
    assert stop.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"product-classify: error: --output {output}: cannot write in {folder}")
