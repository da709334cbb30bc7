from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from batch.scoring import OUTPUT_COLUMNS
from batch.writers import atomic_path, check_output, open_writer
from training.errors import ConfigError


def output_rows() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "product_id": ["A1", "A2"],
            "label": ["games", ""],
            "probability": [0.75, float("nan")],
            "top_labels": [["games", "misc"], []],
            "top_probabilities": [[0.75, 0.25], []],
            "reason": [None, "no text: title all empty or missing"],
            "model_name": ["m", "m"],
            "model_version": ["3", "3"],
        }
    )


def write(path: Path, kind: str) -> None:
    with atomic_path(path, overwrite=False) as temporary:
        writer = open_writer(kind, temporary)
        writer.write(output_rows())
        writer.write(output_rows())
        writer.close()


def test_parquet_keeps_lists_and_nulls(tmp_path: Path) -> None:
    write(tmp_path / "o.parquet", "parquet")
    back = pd.read_parquet(tmp_path / "o.parquet")
    assert tuple(back.columns) == OUTPUT_COLUMNS and len(back) == 4
    assert list(back["top_labels"][0]) == ["games", "misc"]
    assert back["probability"].isna().tolist() == [False, True, False, True]


def test_csv_holds_the_top_k_as_json_arrays(tmp_path: Path) -> None:
    write(tmp_path / "o.csv", "csv")
    back = pd.read_csv(tmp_path / "o.csv", keep_default_na=False)
    assert tuple(back.columns) == OUTPUT_COLUMNS and len(back) == 4
    assert json.loads(back["top_labels"][0]) == ["games", "misc"]


def test_json_lines_write_nulls_not_nan(tmp_path: Path) -> None:
    write(tmp_path / "o.jsonl", "jsonl")
    rows = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and rows[1]["probability"] is None and rows[0]["top_labels"][0] == "games"


def test_a_failure_leaves_nothing_behind(tmp_path: Path) -> None:
    final = tmp_path / "o.parquet"
    with pytest.raises(RuntimeError), atomic_path(final, overwrite=False) as temporary:
        temporary.write_text("half")
        raise RuntimeError("scoring failed")
    assert list(tmp_path.iterdir()) == []


def test_an_existing_output_needs_overwrite(tmp_path: Path) -> None:
    final = tmp_path / "o.jsonl"
    final.write_text("old")
    with pytest.raises(ConfigError, match="--overwrite"), atomic_path(final, overwrite=False):
        pass
    with atomic_path(final, overwrite=True) as temporary:
        temporary.write_text("new")
    assert final.read_text() == "new" and len(list(tmp_path.iterdir())) == 1


def unwritable_folders() -> list[Path]:
    """Folders no one may create files in, root included (as CI and the report ran)."""
    return [folder for folder in (Path("/proc"), Path("/sys/kernel")) if folder.is_dir()]


@pytest.mark.parametrize("folder", unwritable_folders(), ids=str)
@pytest.mark.parametrize("below", ["", "new/deeper"])
def test_an_output_that_cannot_be_written_is_found_before_any_work(
    folder: Path, below: str
) -> None:
    """It failed after the model loaded and the catalog was scored, exit 1, naming a hidden
    `.x.csv.partial-PID`."""
    final = folder / below / "x.csv"
    with pytest.raises(ConfigError) as refused:
        check_output(final, overwrite=False)
    message = str(refused.value)
    assert message.startswith(f"--output {final}: cannot write in {folder} (")
    assert message.endswith(("(permission denied)", "(no such file or directory)"))
    assert refused.value.exit_code == 2


def test_an_output_below_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("a file")
    final = tmp_path / "notes.txt" / "sub" / "x.csv"
    with pytest.raises(ConfigError, match=r"notes.txt is not a folder$"):
        check_output(final, overwrite=False)


def test_checking_a_writable_output_leaves_nothing(tmp_path: Path) -> None:
    check_output(tmp_path / "new" / "x.parquet", overwrite=False)
    assert list(tmp_path.iterdir()) == []
