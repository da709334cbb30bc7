"""The command line: every option documented, config files, clear errors, no tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from training.cli import build_parser, parse_config
from training.config import TrainConfig
from training.config_values import MinimumRows, ShareOfLargest
from training.errors import ConfigError


def test_every_config_field_is_an_option_with_help() -> None:
    text = build_parser().format_help()
    for name in TrainConfig.model_fields:
        assert f"--{name.replace('_', '-')}" in text
    assert "--force-promote" in text and "--no-smote" in text


def test_help_states_each_default_once_and_truly() -> None:
    text = " ".join(build_parser().format_help().split())
    assert "(default: None)" not in text
    assert text.count("default:") == len(TrainConfig.model_fields)
    assert "none: the bundled sample catalog (default: none)" in text
    assert "--smote-strategy share:R|min:N|NAME" in text


def test_values_are_parsed_once_into_typed_values() -> None:
    config, _ = parse_config(
        ["--smote-strategy", "min:30", "--max-features", "0.05", "--max-depth", "none"]
    )
    assert config.smote_strategy == MinimumRows(30)
    assert config.max_features == 0.05 and config.max_depth is None
    assert parse_config(["--max-features", "3"])[0].max_features == 3
    assert TrainConfig().smote_strategy == ShareOfLargest(0.05)
    assert TrainConfig(**config.model_dump()) == config, "dumped values parse back the same"
    assert config.model_dump()["smote_strategy"] == "min:30"


def test_flags_lists_and_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEED", "7")
    config, _ = parse_config(["--no-smote", "--numeric-columns", "", "--id-column", ""])
    assert config.smote is False and config.numeric_columns == [] and config.id_column is None
    assert config.seed == 42, "options come from the command line and --config only"


def test_column_names_are_trimmed_like_the_catalog_headers() -> None:
    args = ["--label-column", "Category ", "--id-column", " SKU", "--text-columns", "Title , Notes"]
    config, _ = parse_config(args)
    assert (config.label_column, config.id_column) == ("Category", "SKU")
    assert config.text_columns == ["Title", "Notes"]
    assert parse_config(["--id-column", "  "])[0].id_column is None


def test_config_file_then_command_line_override(tmp_path: Path) -> None:
    path = tmp_path / "train.yaml"
    path.write_text("n_estimators: 40\ntext_columns: [title]\nsmote: false\n")
    config, _ = parse_config(
        ["--config", str(path), "--n-estimators", "7", "--token-columns", "brand, category"]
    )
    assert config.n_estimators == 7
    assert config.text_columns == ["title"]
    assert config.token_columns == ["brand", "category"]
    assert config.smote is False


@pytest.mark.parametrize("suffix", [".json", ".toml"])
def test_json_and_toml_config(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"train{suffix}"
    path.write_text(json.dumps({"seed": 3}) if suffix == ".json" else "seed = 3\n")
    assert parse_config(["--config", str(path)])[0].seed == 3


@pytest.mark.parametrize("suffix", [".yaml", ".json", ".toml"])
def test_paths_in_a_config_file_are_relative_to_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    values = {"data": "catalog.csv", "label_map": "maps/labels.yaml"}
    path = folder / f"train{suffix}"
    if suffix == ".toml":
        path.write_text("".join(f'{key} = "{value}"\n' for key, value in values.items()))
    else:
        path.write_text(json.dumps(values))  # JSON is YAML too
    monkeypatch.chdir(tmp_path)
    config, _ = parse_config(["--config", "project/" + path.name])
    assert (config.data, config.label_map) == ("project/catalog.csv", "project/maps/labels.yaml")
    config, _ = parse_config(["--config", str(path), "--data", "other.csv"])
    assert config.data == "other.csv", "a path on the command line is the working directory's"


def test_absolute_and_home_paths_in_a_config_file(tmp_path: Path) -> None:
    path = tmp_path / "train.yaml"
    path.write_text("data: /srv/catalog.csv\nlabel_map: ~/labels.yaml\n")
    config, _ = parse_config(["--config", str(path)])
    assert config.data == "/srv/catalog.csv"
    assert config.label_map == str(Path.home() / "labels.yaml")


@pytest.mark.parametrize(("typed", "separator"), [("\\t", "\t"), ("\t", "\t"), (";", ";")])
def test_csv_separator_escapes(typed: str, separator: str) -> None:
    assert parse_config(["--csv-separator", typed])[0].csv_separator == separator
    assert parse_config([])[0].csv_separator is None, "none: by extension (.tsv: tab)"


@pytest.mark.parametrize("typed", ["", "::", "\\t\\t"])
def test_a_csv_separator_of_other_than_one_character_is_a_bad_option(typed: str) -> None:
    with pytest.raises(ConfigError, match="is not one character") as raised:
        parse_config(["--csv-separator", typed])
    assert raised.value.exit_code == 2


def test_the_other_label_is_trimmed_and_never_blank() -> None:
    assert parse_config(["--other-label", " library "])[0].other_label == "library"
    with pytest.raises(ConfigError, match="--other-label") as raised:
        parse_config(["--other-label", "  "])
    assert raised.value.exit_code == 2


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "training", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (["--n-estimators", "0"], "n_estimators", 2),
        (["--smote-strategy", "lots"], "smote_strategy", 2),
        (["--max-features", "1.5"], "max_features", 2),
        (["--n-estimators", "many"], "--n-estimators", 2),
        (["--data", "missing.jsonl"], "missing.jsonl: no such file", 3),
        (["--label-column", "nope"], "label column 'nope' not found", 3),
        (["--cv-folds", "1"], "2 folds or more", 2),
        (["--cv-folds", "500"], "training rows, fewer than the folds", 2),
        (["--n-jobs", "0"], "-1 for all cores", 2),
        (["--model-name", "shop/v2"], "must not be blank nor contain '/'", 2),
        (["--id-ngram-min", "5", "--id-ngram-max", "2"], "above --id-ngram-max 2", 2),
        (["--min-df", "100000"], "more than the 5242 training rows", 2),
    ],
)
def test_bad_input_exits_with_one_clear_line(tmp_path, args, message, code) -> None:
    result = run_cli(*args, "--tracking-uri", f"sqlite:///{tmp_path}/db.sqlite", cwd=tmp_path)
    assert result.returncode == code
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("module", ["training", "batch", "training.tune", "training.monitor"])
def test_a_log_level_that_is_not_one_is_a_bad_option(tmp_path: Path, module: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "LOG_LEVEL": "verbose"},
    )
    assert result.returncode == 2
    assert "LOG_LEVEL='verbose' is not a level" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_key_in_config_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("n_trees: 4\n")
    result = run_cli("--config", str(path), cwd=tmp_path)
    assert result.returncode == 2
    assert "unknown option(s) n_trees" in result.stderr and str(path) in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.jsonl", None, "no such file"),
        ("catalog.txt", "x\n", "cannot tell the format from the extension .txt"),
        ("parts", "folder", "parts is a folder, not a catalog file"),
    ],
)
def test_data_file_is_checked_before_connecting_to_mlflow(tmp_path, name, content, message):
    if content == "folder":
        (tmp_path / name).mkdir()
    elif content is not None:
        (tmp_path / name).write_text(content)
    # Nothing listens on port 9: reaching MLflow first would end in exit 4 after retries.
    result = run_cli("--data", name, "--tracking-uri", "http://127.0.0.1:9", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (3, "")
    assert message in result.stderr and len(result.stderr.splitlines()) == 1


@pytest.mark.integration
def test_quiet_run_prints_warnings_and_the_summary_only(tmp_path: Path, small_catalog: Path):
    result = run_cli(
        *("-q", "--data", str(small_catalog), "--n-estimators", "5", "--min-class-size", "5"),
        *("--select-k-best", "500", "--tracking-uri", f"sqlite:///{tmp_path}/db.sqlite"),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("training summary")
    chatter = [line for line in result.stderr.splitlines() if " WARNING " not in line]
    assert chatter == []
    assert "CloudPickle" not in result.stderr
