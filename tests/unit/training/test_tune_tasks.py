"""A multilabel or path study tunes the model `product-train` trains for that task: plain k-fold
over the training split of the tag catalog, each fold fitted with the tag model and scored by the
task's gate metric, which names the trial runs' metrics and the log lines."""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

import numpy as np
import optuna
import pytest
from mlflow.tracking import MlflowClient
from sklearn.model_selection import KFold

from tests.support import sqlite_store, write_tag_catalog
from training.config import TrainConfig
from training.config_files import make_config
from training.pipeline import model_input
from training.tag_evaluate import set_scores
from training.tag_model import fit_tag_model
from training.tuning.folds import make_folds, score_folds
from training.tuning.objective import Objective, ParentRun
from training.tuning.space import space_from_dict

KINDS = {"clothing": ["jacket", "shirt", "coat"], "footwear": ["boots", "sneakers", "sandals"]}
KINDS["electronics"] = ["headphones", "speaker", "charger"]
MODIFIERS = {"waterproof": ["waterproof", "rainproof"], "kids": ["kids", "junior"]}
PATHS = {
    ("Clothing", "Jackets"): ["jacket", "parka"],
    ("Clothing", "Shoes"): ["boots", "sandals"],
    ("Electronics", "Audio"): ["headphones", "speaker"],
    ("Electronics", "Chargers"): ["charger", "adapter"],
}
BRANDS = ["Acme", "Northwind", "Globex", "Initech"]
SMALL_MODEL = {"n_estimators": 30, "trees_per_chunk": 10, "n_jobs": 1, "min_df": 1}


pytestmark = pytest.mark.usefixtures("signals_since_now")


def tag_catalog(path: Path) -> Path:
    return write_tag_catalog(path, KINDS, MODIFIERS, count=160, brands=tuple(BRANDS))


def path_catalog(path: Path, count: int = 160, separator: str | None = None) -> Path:
    """JSON lines whose `cat` is a list of levels, or a text joined by `separator`."""
    rng = random.Random(5)
    rows = []
    for i in range(count):
        levels = rng.choice(sorted(PATHS))
        title = f"{rng.choice(BRANDS)} {rng.choice(PATHS[levels])}"
        cat = separator.join(levels) if separator else levels
        rows.append({"sku": i, "title": title, "cat": cat})
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def tag_config(data: Path, task: str = "multilabel", **options: object) -> TrainConfig:
    values = {"data": str(data), "task": task, "text_columns": ["title"], "token_columns": []}
    values |= {"id_column": "sku", "amazon_counts": False, "min_tag_count": 5}
    values |= {"label_column": "tags", "label_separator": "|"} if task == "multilabel" else {}
    values |= {"label_column": "cat"} if task == "path" else {}
    return make_config(values | SMALL_MODEL | options)


def test_multilabel_folds_are_plain_k_folds_of_tag_sets_scored_by_the_tag_model_s_micro_f1(
    tmp_path: Path,
) -> None:
    config = tag_config(tag_catalog(tmp_path / "tags.csv"))
    folds = make_folds(config, 2)

    assert folds.metric == "f1_micro"
    assert folds.tags == sorted(KINDS.keys() | MODIFIERS.keys())
    assert all(isinstance(tags, tuple) for tags in folds.train["label"])  # sets, not text
    expected = KFold(2, shuffle=True, random_state=config.seed).split(folds.train)
    for (fit, check), (fit_now, check_now) in zip(expected, folds.splits, strict=True):
        assert (fit == fit_now).all() and (check == check_now).all()

    reported: list[float] = []
    score = score_folds(config, folds, lambda fold, value: reported.append(value))
    assert score == pytest.approx(np.mean(reported)) and score > 0.75
    # fold 1 is what product-train's model for the task answers, scored as the gate scores it
    fit, check = (folds.train.iloc[rows] for rows in folds.splits[0])
    model = fit_tag_model(config, fit, folds.tags, "multilabel")
    answered = model.decoder.label_sets(model.served.predict_proba(model_input(check, config)))
    truth = check["label"].tolist()
    assert reported[0] == pytest.approx(set_scores(truth, answered, folds.tags)["f1_micro"])


@pytest.mark.parametrize("separator", [None, "/"])
def test_path_folds_hold_the_path_s_nodes_and_score_samples_f1(
    tmp_path: Path, separator: str | None
) -> None:
    """Levels as lists are joined with ' > '; '/' paths keep '/', and are decoded by it (a
    decoder reading ' > ' would see only top-level nodes and answer one level)."""
    catalog = path_catalog(tmp_path / "paths.jsonl", separator=separator)
    config = tag_config(catalog, task="path", label_separator=separator)
    folds = make_folds(config, 2)
    assert folds.metric == "f1_samples"
    assert f"Clothing{separator or ' > '}Shoes" in folds.tags and "Clothing" in folds.tags
    assert score_folds(config, folds, lambda fold, value: None) > 0.75


def test_a_gate_metric_given_is_the_one_tuned(tmp_path: Path) -> None:
    config = tag_config(tag_catalog(tmp_path / "tags.csv"), gate_metric="f1_samples")
    assert make_folds(config, 2).metric == "f1_samples"


def test_a_multilabel_trial_logs_its_metric_by_name(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = tag_config(tag_catalog(tmp_path / "tags.csv"))
    folds = make_folds(config, 2)
    client = MlflowClient(sqlite_store(tmp_path))
    experiment = client.get_experiment_by_name("product-categorization").experiment_id
    parent = client.create_run(experiment).info.run_id
    space = space_from_dict({"tag_weighting": {"type": "categorical", "choices": ["none"]}})
    objective = Objective(config, space, folds, ParentRun(client, experiment, parent, "s"), 0)
    study = optuna.create_study(direction="maximize")

    with caplog.at_level(logging.INFO, logger="training.tuning"):
        study.optimize(objective, n_trials=1)

    run = client.get_run(study.trials[0].user_attrs["mlflow_run_id"])
    assert set(run.data.metrics) == {"cv_f1_micro", "cv_f1_micro_fold", "trial_seconds"}
    assert run.data.metrics["cv_f1_micro"] == pytest.approx(study.trials[0].value)
    assert "trial 0: micro-F1 " in caplog.text and "macro-F1" not in caplog.text
