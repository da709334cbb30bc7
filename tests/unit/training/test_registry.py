"""Logging a model whose catalog has integer ids and integer labels (one of them missing): it
trains, its contract's text ids are what it was fitted on and what serving passes, and a local
signature check is not reported as the tracking server's refusal."""

from __future__ import annotations

import json
import os
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from product_model.contract import InputContract, InputField
from serving.validation import InputField as ServedField
from serving.validation import Limits, check_value
from tests.support import Registry, sqlite_store, tracking_uri_restored
from training import registry, rescore
from training.errors import TrackingRefusedError, TrainingError

WORDS = {100: "kernel driver module", 101: "arcade puzzle game", 102: "text editor vim"}


@pytest.fixture(scope="module")
def int_id_model(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    """A tiny model trained on JSON lines of integer ids and integer labels, one label null."""
    from training.config import TrainConfig
    from training.run import train

    root = tmp_path_factory.mktemp("int-ids")
    records = [
        {"pid": label * 100 + i, "name": f"{words} {i}", "cat_id": label}
        for label, words in WORDS.items()
        for i in range(20)
    ]
    records[0]["cat_id"] = None
    data = root / "c.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    uri = sqlite_store(root)
    config = TrainConfig(
        data=str(data),
        label_column="cat_id",
        id_column="pid",
        text_columns=["name"],
        token_columns=[],
        amazon_counts=False,
        model_name="int-ids",
        n_estimators=5,
        min_df=1,
        smote=False,
        tracking_uri=uri,
        n_jobs=1,
    )
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    with tracking_uri_restored():
        result = train(config)
    return Registry(uri, root, "int-ids", result.model_version, result.model_uri)


def test_integer_ids_train_and_answer_as_serving_passes_them(int_id_model: Registry) -> None:
    with tracking_uri_restored():
        mlflow.set_tracking_uri(int_id_model.tracking_uri)
        model = mlflow.pyfunc.load_model(int_id_model.logged_model_uri)
    assert model.input_example["pid"].map(type).eq(str).all()
    wrapper = model.unwrap_python_model()
    assert sorted(wrapper.classes) == ["100", "101", "102"]
    served_id = check_value(10105, ServedField("pid", "id", "string"), Limits(1, 100), "pid")
    as_number = wrapper.predict_proba([{"name": "arcade game", "pid": served_id}])
    as_text = wrapper.predict_proba([{"name": "arcade game", "pid": "10105"}])
    assert served_id == "10105" and (as_number == as_text).all()


def test_the_gate_learns_the_champion_s_classes(int_id_model: Registry, tmp_path: Path) -> None:
    rows = pd.DataFrame({"name": ["vim editor"], "pid": ["1"]})
    rows.to_pickle(tmp_path / "rows.pkl")
    with tracking_uri_restored():
        mlflow.set_tracking_uri(int_id_model.tracking_uri)
        rescore.main(
            int_id_model.logged_model_uri, str(tmp_path / "rows.pkl"), str(tmp_path / "a.json")
        )
    answer = json.loads((tmp_path / "a.json").read_text())
    assert answer["classes"] == ["100", "101", "102"]


@pytest.mark.filterwarnings("ignore:Hint. Inferred schema contains integer:UserWarning")
def test_a_local_signature_mismatch_is_not_called_a_refusal() -> None:
    contract = InputContract(
        (InputField("pid", "id", "string"), InputField("name", "text", "string"))
    )
    example = pd.DataFrame({"pid": [1, 2], "name": ["a", "b"]})  # ids left as integers
    output = pd.DataFrame({"label": ["x", "y"], "probability": [0.5, 0.5]})
    with pytest.raises(TrainingError) as raised:
        registry.checked_signature(contract, example, output)
    assert not isinstance(raised.value, TrackingRefusedError) and raised.value.exit_code == 1
    message = str(raised.value)
    assert "column pid" in message and "not on the tracking server" in message
