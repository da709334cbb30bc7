"""`--data` names one readable catalog file; a folder is called a folder, not a missing file."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.catalog import load_catalog
from training.catalog_files import check_catalog_file
from training.config import TrainConfig
from training.errors import DataError


def test_a_folder_is_named_as_one_with_what_to_give_instead(tmp_path: Path) -> None:
    folder = tmp_path / "catalog"
    folder.mkdir()
    with pytest.raises(DataError) as caught:
        load_catalog(TrainConfig(data=str(folder)))
    message = str(caught.value)
    assert message.startswith(f"{folder} is a folder, not a catalog file: pass --data with one")
    assert "no such file" not in message and caught.value.exit_code == 3


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("missing.jsonl", "missing.jsonl: no such file; pass --data with a catalog file"),
        ("/dev/null", "/dev/null is not a regular file"),
    ],
)
def test_a_missing_file_or_a_device_is_named_as_such(tmp_path: Path, name: str, message: str):
    with pytest.raises(DataError, match=message):
        check_catalog_file(tmp_path / name)
