"""Thresholds chosen on training rows, rare-tag weights, and the multi-label scores."""

from __future__ import annotations

import numpy as np
import pytest

from training.tag_evaluate import level_scores, set_scores
from training.tag_model import best_thresholds, rare_tag_weights


def test_each_tag_takes_the_threshold_that_separates_it() -> None:
    Y = np.array([[1, 0], [1, 1], [0, 1], [0, 0]])
    proba = np.array([[0.3, 0.1], [0.25, 0.9], [0.1, 0.8], [0.05, 0.2]])
    thresholds = best_thresholds(Y, proba)
    assert 0.1 < thresholds[0] <= 0.25
    assert 0.2 < thresholds[1] <= 0.8
    assert ((proba >= thresholds) == Y.astype(bool)).all()


def test_rows_no_tree_left_out_are_skipped_and_hopeless_tags_keep_one_half() -> None:
    Y = np.array([[1, 1], [0, 0], [1, 0]])
    proba = np.array([[0.9, 0.0], [np.nan, np.nan], [0.8, 0.0]])
    assert best_thresholds(Y, proba).tolist() == [pytest.approx(0.42), 0.5]  # mid-plateau


def test_rows_with_rare_tags_weigh_more_mean_one() -> None:
    Y = np.array([[1, 0], [1, 0], [1, 0], [1, 1]])
    weights = rare_tag_weights(Y)
    assert weights[3] > weights[0] == weights[1] == weights[2]
    assert weights.mean() == pytest.approx(1.0)


def test_set_scores() -> None:
    truth = [["a", "b"], ["b"], ["c"]]
    predicted = [["a", "b"], ["b", "c"], []]
    scores = set_scores(truth, predicted, ["a", "b", "c"])
    assert scores["subset_accuracy"] == pytest.approx(1 / 3)
    assert scores["hamming_loss"] == pytest.approx(2 / 9)
    assert scores["f1_micro"] == pytest.approx(2 * 3 / (4 + 4))
    assert scores["f1_samples"] == pytest.approx((1 + 2 / 3 + 0) / 3)


def test_path_is_scored_per_level() -> None:
    truth = [["A", "A > B"], ["A", "A > C"], ["D"]]
    predicted = [["A", "A > B"], ["A"], ["A", "A > B"]]
    scores = level_scores(truth, predicted, " > ")
    assert scores["path_level_1_accuracy"] == pytest.approx(2 / 3)
    assert scores["path_level_2_accuracy"] == pytest.approx(1 / 2)
    assert scores["path_level_2_rows"] == 2
    assert "path_level_3_accuracy" not in scores


def test_the_gate_compares_tag_sets_on_rows_both_models_held_out() -> None:
    import pandas as pd

    from training.config import TrainConfig
    from training.gate import ChampionScores
    from training.split import SplitDefinition
    from training.tag_run import challenge_tags

    holdout = pd.DataFrame(
        {"title": [f"product {i}" for i in range(40)], "label": [("a", "b")] * 40}
    )
    split = SplitDefinition(0.5, None, ("title",))
    both = int(split.held_out(holdout).sum())
    config = TrainConfig(task="multilabel", gate_min_rows=5)
    better = [["a", "b"]] * 40
    champion = ChampionScores("3", split, pd.Series(["a"] * 40).to_numpy(), [["a"]] * 40)
    decision = challenge_tags(champion, holdout, better, "f1_micro", config)
    assert decision.promote and decision.compared_rows == both
    assert decision.reason.startswith("f1_micro 1.0000 >= champion v3's 0.6667")
    kept = challenge_tags(champion, holdout, [["c"]] * 40, "f1_micro", config)
    assert not kept.promote
    single = ChampionScores("3", split, pd.Series(["a"] * 40).to_numpy())
    assert not challenge_tags(single, holdout, better, "f1_micro", config).promote
