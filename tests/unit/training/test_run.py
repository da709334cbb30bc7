"""The run's gate wiring with the registry stubbed: what the champion's run records decides
whether it is re-scored at all, a champion whose fields the catalog lacks is not compared, a
shortfall of shared rows is explained, and changes of classes and input fields are said."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST

from product_model.contract import InputField
from training import gate, gate_contract, registry
from training.catalog import Catalog
from training.cli import print_summary
from training.config import TrainConfig
from training.retries import RetryPolicy
from training.run import TrainingRun, TrainResult
from training.run_writer import RunWriter
from training.split import SplitDefinition
from training.tag_run import TagTrainingRun

SPLIT = SplitDefinition(0.2, None, ("title",))


def training_run(frame: pd.DataFrame | None = None, **overrides: Any) -> TrainingRun:
    config = TrainConfig(model_name="listings", **overrides)
    catalog = Catalog(pd.DataFrame() if frame is None else frame, "/data/listings.csv", "aaa")
    client: Any = None  # every registry call is stubbed
    return TrainingRun(config, client, "sqlite://", catalog, SPLIT, {}, RetryPolicy(1))


def stub_champion(monkeypatch, params: dict[str, str], scores: Any = None) -> None:
    champion = SimpleNamespace(version="3", run_id="r3")
    monkeypatch.setattr(registry, "current_champion", lambda client, name: champion)
    tags = {"data.source": "/data/listings.csv", "data.sha256": "aaa"}
    monkeypatch.setattr(registry, "training_record", lambda client, version: (params, tags))

    def score_champion(*args: Any) -> Any:
        assert scores is not None, "a champion of another task must not be re-scored"
        return scores

    monkeypatch.setattr(gate, "score_champion", score_champion)


def holdout(n: int) -> pd.DataFrame:
    """`n` rows that SPLIT holds out, as a run's holdout would be."""
    rows = pd.DataFrame({"title": [f"t{i}" for i in range(20 * n)]})
    rows = rows[SPLIT.held_out(rows)].head(n).reset_index(drop=True)
    return rows.assign(label=["a", "b"] * (n // 2))


def test_a_champion_of_another_task_is_kept_without_re_scoring(monkeypatch) -> None:
    stub_champion(monkeypatch, {"task": "multilabel", "label_column": "main_cat"})
    rows = holdout(40)
    decision = training_run().judge(rows, rows["label"].to_numpy())
    assert not decision.promote and "trained for multilabel" in decision.reason


def test_a_small_catalog_s_shortfall_names_gate_min_rows(monkeypatch) -> None:
    rows = holdout(40)
    scores = gate.ChampionScores("3", SPLIT, rows["label"].to_numpy())
    stub_champion(monkeypatch, {"task": "single_label", "label_column": "main_cat"}, scores)
    decision = training_run().judge(rows, rows["label"].to_numpy())
    assert decision.compared_rows == 40 and not decision.promote
    assert "whole holdout is 40 rows" in decision.reason and "--gate-min-rows" in decision.reason


@pytest.mark.parametrize("run_id", [None, "gone"])
def test_a_version_without_a_readable_run_records_nothing(run_id) -> None:
    class Client:
        def get_run(self, run_id: str) -> Any:
            raise MlflowException("no run", error_code=RESOURCE_DOES_NOT_EXIST)

    version: Any = SimpleNamespace(run_id=run_id)
    assert registry.training_record(Client(), version) == ({}, {})  # type: ignore[arg-type]
    assert gate.TrainingOrigin.from_run({}, {}) is None


def test_the_champion_s_run_params_and_tags_are_read() -> None:
    data = SimpleNamespace(params={"task": "path"}, tags={"data.sha256": "x"})
    client: Any = SimpleNamespace(get_run=lambda run_id: SimpleNamespace(data=data))
    version: Any = SimpleNamespace(run_id="r1")
    record = registry.training_record(client, version)
    assert record == ({"task": "path"}, {"data.sha256": "x"})


def test_a_change_of_classes_is_kept_on_the_decision_logged_and_tagged(monkeypatch, caplog) -> None:
    rows = holdout(40)
    scores = gate.ChampionScores("3", SPLIT, rows["label"].to_numpy(), classes=("a", "b", "old"))
    stub_champion(monkeypatch, {"task": "single_label", "label_column": "main_cat"}, scores)
    steps = training_run(gate_min_rows=10)
    decision = steps.judge(rows, rows["label"].to_numpy(), ["a", "b", "new"])
    assert decision.promote, "the decision itself does not change"
    assert decision.class_change == gate_contract.ClassChange("3", ("old",), ("new",))
    written: dict[str, Any] = {}
    monkeypatch.setattr(RunWriter, "tags", lambda self, tags: written.update(tags))
    monkeypatch.setattr(RunWriter, "metrics", lambda self, metrics: None)
    monkeypatch.setattr(RunWriter, "json", lambda self, data, path: written.update({path: data}))
    steps.log_decision(decision, "4")
    assert "the classes changed from champion v3's: removed 1 ('old'); added 1" in caplog.text
    assert written["classes_changed"].startswith("changed from champion v3's: removed 1")
    assert written["gate/classes_changed.json"]["added"] == ["new"]


def test_the_summary_names_a_change_of_classes(capsys) -> None:
    result = TrainResult("r", "m", "4", True, "no champion yet", {}, None, "changed from ...")
    print_summary(result)
    assert "  classes:         changed from ..." in capsys.readouterr().out


@pytest.mark.parametrize("task", ["single_label", "multilabel"])
def test_a_champion_whose_fields_the_catalog_lacks_is_not_compared(monkeypatch, task) -> None:
    """The champion reads 'title' and 'brand'; this catalog names its text 'name' and has no
    brand. Re-scored without them the champion answers worse, and would have lost. Tag and path
    runs share the gate's wiring."""
    rows = holdout(40)
    wrong = rows["label"].map({"a": "b", "b": "a"}).to_numpy()
    mine: Any = rows["label"].to_numpy()
    if task == "multilabel":
        rows, mine = rows.assign(label=rows["label"].map(lambda tag: [tag])), [[t] for t in mine]
    fields = (InputField("title", "text", "string"), InputField("brand", "tokens", "tokens"))
    sets = [[tag] for tag in wrong]
    scores = gate.ChampionScores("3", SPLIT, wrong, sets, classes=("a", "b"), fields=fields)
    stub_champion(monkeypatch, {"task": task, "label_column": "main_cat"}, scores)
    renamed = rows.rename(columns={"title": "name"})
    options = {"text_columns": ["name"], "token_columns": [], "id_column": None, "task": task}

    def steps(**overrides: Any) -> TrainingRun:
        run = training_run(renamed, gate_min_rows=10, **options, **overrides)
        if task == "single_label":
            return run
        return TagTrainingRun(**vars(run), tags=["a", "b"])

    decision = steps().judge(renamed, mine, ["a", "b"])
    assert not decision.promote and decision.champion_f1 is None
    assert "champion v3 reads 'title', 'brand', which this catalog lacks" in decision.reason
    assert decision.input_change == gate_contract.InputChange("3", ("title", "brand"), ("name",))
    assert steps(force_promote=True).judge(renamed, mine).promote


def test_a_change_of_input_fields_is_logged_and_tagged(monkeypatch, caplog) -> None:
    rows = holdout(40)
    fields = (InputField("title", "text", "string"), InputField("sku", "id", "string"))
    scores = gate.ChampionScores("3", SPLIT, rows["label"].to_numpy(), fields=fields)
    stub_champion(monkeypatch, {"task": "single_label", "label_column": "main_cat"}, scores)
    catalog = rows.assign(brand="acme")  # the catalog has no 'sku': the champion's id is lacking
    steps = training_run(catalog, gate_min_rows=10, token_columns=["brand"], id_column=None)
    decision = steps.judge(catalog, rows["label"].to_numpy())
    assert not decision.promote and "reads 'sku', which this catalog lacks" in decision.reason
    assert decision.input_change == gate_contract.InputChange("3", ("sku",), ("brand",))
    written: dict[str, Any] = {}
    monkeypatch.setattr(RunWriter, "tags", lambda self, tags: written.update(tags))
    monkeypatch.setattr(RunWriter, "metrics", lambda self, metrics: None)
    monkeypatch.setattr(RunWriter, "json", lambda self, data, path: written.update({path: data}))
    steps.log_decision(decision, "4")
    said = "gate: the input fields changed from champion v3's: removed 'sku'; added 'brand'."
    assert said in caplog.text and "refused (422)" in caplog.text
    assert written["inputs_changed"] == "changed from champion v3's: removed 'sku'; added 'brand'"
    assert written["gate/inputs_changed.json"] == {
        "champion_version": "3",
        "removed": ["sku"],
        "added": ["brand"],
        "changed": [],
    }


def test_the_summary_names_a_change_of_input_fields(capsys) -> None:
    changed = "changed from champion v3's: removed 'sku'; added 'brand'"
    result = TrainResult("r", "m", "4", False, "cannot compare", {}, None, None, changed)
    print_summary(result)
    assert f"  inputs:          {changed}" in capsys.readouterr().out
