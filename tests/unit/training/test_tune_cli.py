"""`product-tune`'s front door: options, the printed space, and user errors as one line + exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from training.tune import main
from training.tuning.space import default_space_path


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as raised:
        main(argv)
        raise SystemExit(0)
    captured = capsys.readouterr()
    return int(raised.value.code or 0), captured.out, captured.err


def test_print_space_shows_the_packaged_default(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["--print-space"], capsys)
    assert code == 0
    assert yaml.safe_load(out) == yaml.safe_load(default_space_path().read_text())
    assert out.startswith("# The default search space")


def test_a_bad_search_space_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    space = tmp_path / "space.yaml"
    space.write_text("n_estimators: {type: int, low: 500, high: 100}\n")
    code, _, err = run(["--search-space", str(space)], capsys)
    assert code == 2
    assert err.startswith(f"product-tune: error: search space {space}: n_estimators:")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_a_bad_storage_url_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["--storage", "optuna.db"], capsys)
    assert code == 2
    assert "--storage 'optuna.db' is not a database URL" in err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--trials", "0"], "--trials: must be at least 1"),
        (["--folds", "1"], "--folds: must be at least 2"),
        (["--workers", "two"], "--workers: 'two' is not a number"),
        (["--n-estimators", "0"], "Input should be greater than or equal to 1"),
        (["--no-such-option"], "unrecognized arguments: --no-such-option"),
    ],
)
def test_bad_options_exit_2(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(argv, capsys)
    assert code == 2
    assert expected in err


def test_unusable_data_stops_before_any_study_exists(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = tmp_path / "optuna.db"
    code, _, err = run(
        ["--data", str(tmp_path / "none.jsonl"), "--storage", f"sqlite:///{storage}"], capsys
    )
    assert code == 3
    assert "none.jsonl: no such file" in err
    assert not storage.exists()  # a re-run with the right path starts clean


def test_an_unsupported_storage_scheme_is_exit_2_naming_the_supported_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run(["--storage", "mysql://tuner@db/optuna"], capsys)
    assert code == 2
    assert "--storage 'mysql://tuner@db/optuna': the scheme 'mysql' is not supported" in err
    assert "use sqlite:///PATH (local file) or postgresql://USER@HOST:PORT/DB" in err


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (".", "is a folder; give a file name, such as"),
        ("notes.txt/best.yaml", "notes.txt is a file, not a folder"),
        ("notes.txt/more/best.yaml", "notes.txt is a file, not a folder"),
    ],
)
def test_an_output_that_cannot_be_written_is_exit_2_before_any_study_exists(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], output: str, expected: str
) -> None:
    (tmp_path / "notes.txt").write_text("not a folder")
    storage = tmp_path / "optuna.db"
    argv = ["--output", str(tmp_path / output), "--storage", f"sqlite:///{storage}"]
    code, _, err = run(argv, capsys)
    assert code == 2, err
    assert f"product-tune: error: --output {tmp_path / output}" in err and expected in err
    assert not storage.exists()


def test_a_tuning_option_in_the_config_file_is_named_as_one_with_where_to_give_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It was called an unknown `product-train` option, with `product-train --help` to read."""
    config = tmp_path / "t.toml"
    config.write_text('label_column = "main_cat"\ntrials = 3\nstudy_name = "shop"\n')
    code, _, err = run(["--config", str(config), "--folds", "2"], capsys)
    assert code == 2
    assert err == (
        f"product-tune: error: config file {config}: trials, study_name are product-tune "
        "options, which a config file cannot hold (it holds product-train options only); give "
        "--trials 3 --study-name shop on the command line instead\n"
    )
