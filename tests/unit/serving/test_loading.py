"""Loading leaves nothing behind: no downloaded folder, no model code on sys.path or in
sys.modules; and each model runs its own code, whatever was loaded before."""

from __future__ import annotations

import json
import logging
import sys
import tempfile
from pathlib import Path

import mlflow
import pytest

from serving.errors import ModelLoadError
from serving.loading import SavedEnvironment
from serving.model import ModelRef, ServedModel
from tests.support import REPO, marked_model_copy

LEGACY = REPO / "tests" / "fixtures" / "legacy-model-0.1"
PRODUCT = {"title": "Perl module for parsing XML", "description": "XML::Parser for Perl"}


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """TMPDIR of the loads: checked empty afterwards."""
    folder = tmp_path / "tmpdir"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture
def tiny_folder(tiny_registry, tmp_path: Path) -> Path:
    mlflow.set_tracking_uri(tiny_registry.tracking_uri)
    local = mlflow.artifacts.download_artifacts(tiny_registry.logged_model_uri, dst_path=tmp_path)
    return Path(local)


def load(folder: Path) -> ServedModel:
    return ServedModel.load(ModelRef("m", "1", str(folder)))


def model_code_state() -> tuple[list[str], dict[str, object]]:
    modules = {
        name: module
        for name, module in sys.modules.items()
        if name.split(".")[0] in ("product_model", "training")
    }
    return list(sys.path), modules


def test_the_legacy_layout_loads_and_leaves_nothing_behind(scratch: Path) -> None:
    before = model_code_state()
    model = load(LEGACY)
    assert model.predict_proba([PRODUCT]).shape == (1, len(model.classes))
    assert list(scratch.iterdir()) == []
    assert model_code_state() == before


def test_each_model_runs_its_own_code(scratch: Path, tiny_folder: Path, tmp_path: Path) -> None:
    marked = marked_model_copy(tiny_folder, tmp_path / "marked", "B:")
    plain = load(tiny_folder)
    other = load(marked)
    legacy = load(LEGACY)
    plain_again = load(tiny_folder)
    assert all(str(c).startswith("B:") for c in other.classes)
    for model in (plain, legacy, plain_again):
        assert not any(str(c).startswith("B:") for c in model.classes)
    assert type(plain.predictor) is not type(plain_again.predictor)  # fresh code each load
    assert list(scratch.iterdir()) == []


def test_a_corrupt_model_fails_as_a_load_error_and_leaves_nothing(
    scratch: Path, tiny_folder: Path, tmp_path: Path
) -> None:
    broken = marked_model_copy(tiny_folder, tmp_path / "broken", "")
    pipeline = next((broken / "artifacts").glob("pipeline*"))
    pipeline.write_bytes(pipeline.read_bytes()[: pipeline.stat().st_size // 2])
    with pytest.raises(ModelLoadError) as raised:
        load(broken)
    assert raised.value.kind == "load_error"
    assert list(scratch.iterdir()) == []


def test_a_model_with_an_input_type_this_server_does_not_know_fails_clearly(
    scratch: Path, tiny_folder: Path, tmp_path: Path
) -> None:
    newer = marked_model_copy(tiny_folder, tmp_path / "newer", "")
    metadata_file = next((newer / "artifacts").glob("metadata*"))
    metadata = json.loads(metadata_file.read_text("utf-8"))
    metadata["contract"]["fields"][0]["type"] = "embedding"
    metadata_file.write_text(json.dumps(metadata), "utf-8")
    with pytest.raises(ModelLoadError, match=r"does not know \(embedding\).*newer version"):
        load(newer)
    assert list(scratch.iterdir()) == []


def test_the_saved_environment_is_checked_once_serving(tmp_path: Path, caplog) -> None:
    """MLflow's load-time check is skipped for speed; the same warnings come after the swap."""
    (tmp_path / "requirements.txt").write_text(
        "# written by MLflow\n-c constraints.txt\nscikit-learn==0.0.1\n\nnumpy\n"
    )
    saved = SavedEnvironment.read(tmp_path, {"python_version": "2.7.18"})
    assert saved.requirements == ("scikit-learn==0.0.1", "numpy")
    caplog.set_level(logging.WARNING)
    saved.warn_of_mismatches()
    assert "scikit-learn==0.0.1" in caplog.text
    assert "Python 2.7.18" in caplog.text


@pytest.mark.parametrize("variable", ["MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"])
def test_a_missing_sqlite_store_is_refused_not_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    from serving.model import ModelLocator
    from serving.settings import Settings

    store = tmp_path / "existing.db"
    store.touch()
    missing = tmp_path / "missing.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}?timeout=5")  # a query is no path
    monkeypatch.setenv(variable, f"sqlite+pysqlite:///{missing}")
    with pytest.raises(ModelLoadError, match=f"no MLflow store at {missing} \\({variable}="):
        ModelLocator(Settings()).resolve()
    assert not missing.exists()
