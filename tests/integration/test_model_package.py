"""A registered model carries its own code: it loads and predicts in a fresh virtual environment
that holds only the model's own requirements (the serving dependencies), with neither `training`
nor this project installed; and a model saved in the 0.1.0 layout (code under `training/`) still
loads there and in the server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO, Registry, tracking_uri_restored

pytestmark = pytest.mark.integration

LEGACY_MODEL = REPO / "tests" / "fixtures" / "legacy-model-0.1"
PROBE = """
import importlib.util, json, sys
import mlflow.pyfunc, pandas as pd
assert importlib.util.find_spec("training") is None, "training is importable"
assert importlib.util.find_spec("product_model") is None, "product_model is installed"
model = mlflow.pyfunc.load_model(sys.argv[1])
products = pd.DataFrame([{"title": "Python bindings for the YAML parser"}, {"title": "Chess game"}])
frame = model.predict(products)
modules = sorted(m for m in sys.modules if m.split(".")[0] in ("product_model", "training"))
origin = sys.modules[modules[0]].__file__ if modules else None
print(json.dumps({"labels": frame["label"].tolist(), "modules": modules, "origin": origin}))
"""


@pytest.fixture(scope="module")
def serving_venv(tmp_path_factory: pytest.TempPathFactory, registry: Registry) -> Path:
    """A new virtual environment with only the registered model's pinned requirements."""
    import mlflow.artifacts

    folder = tmp_path_factory.mktemp("serving-venv")
    # A models:/ URI is resolved through the global registry URI, whatever the arguments say.
    with tracking_uri_restored():
        mlflow.set_tracking_uri(registry.tracking_uri)
        requirements = mlflow.artifacts.download_artifacts(
            f"models:/{registry.model_name}/{registry.version}/requirements.txt",
            dst_path=str(folder),
        )
    subprocess.run([sys.executable, "-m", "venv", str(folder / "venv")], check=True)
    pip = [str(folder / "venv" / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    done = subprocess.run(
        [*pip, "-c", str(REPO / "constraints.txt"), "-r", requirements],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return folder / "venv" / "bin" / "python"


def probe(python: Path, model_uri: str, tracking_uri: str, cwd: Path) -> dict:
    done = subprocess.run(
        [str(python), "-c", PROBE, model_uri],
        cwd=cwd,  # not the repository: nothing of the project on sys.path
        env={"MLFLOW_TRACKING_URI": tracking_uri, "PATH": "/usr/bin:/bin", "HOME": str(cwd)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_registered_model_predicts_with_only_serving_dependencies(
    serving_venv: Path, registry: Registry, tmp_path: Path
) -> None:
    answer = probe(
        serving_venv, f"models:/{registry.model_name}@champion", registry.tracking_uri, tmp_path
    )
    assert len(answer["labels"]) == 2 and all(answer["labels"])
    assert "product_model.pyfunc" in answer["modules"]
    assert not any(m.startswith("training") for m in answer["modules"])
    assert "/code/product_model/" in answer["origin"]  # the model's own copy


def test_legacy_model_still_loads_with_its_own_training_copy(
    serving_venv: Path, tmp_path: Path
) -> None:
    answer = probe(serving_venv, str(LEGACY_MODEL), "sqlite:///unused.db", tmp_path)
    assert len(answer["labels"]) == 2
    assert "training.model" in answer["modules"]
    assert "/code/training/" in answer["origin"]
