"""The champion gate's rule and its use of the rows held out by both models, without MLflow."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.gate import (
    ChampionScores,
    TrainingOrigin,
    challenge,
    class_change,
    decide,
    explain_shortfall,
    unfit_champion,
)
from training.split import SplitDefinition


def test_no_champion_promotes() -> None:
    assert decide(0.5, None, 0, 100, False, None).promote


def test_better_or_equal_promotes_worse_keeps() -> None:
    assert decide(0.80, 0.80, 500, 100, False, "3").promote
    kept = decide(0.79, 0.80, 500, 100, False, "3")
    assert not kept.promote and "champion v3 kept" in kept.reason


def test_too_few_shared_rows_refuses_to_decide_unless_forced() -> None:
    refused = decide(0.99, 0.10, 99, 100, False, "3")
    assert not refused.promote and "cannot compare fairly" in refused.reason
    assert "99 row(s)" in refused.reason
    assert decide(0.10, 0.99, 99, 100, True, "3").promote


def holdout(n: int = 400) -> pd.DataFrame:
    return pd.DataFrame(
        {"asin": [f"p{i}" for i in range(n)], "title": ["t"] * n, "label": ["a", "b"] * (n // 2)}
    )


def test_challenge_scores_only_rows_both_models_held_out() -> None:
    rows = holdout()
    truth = rows["label"].to_numpy()
    champion_split = SplitDefinition(0.5, "asin", ("title",))
    shared = champion_split.held_out(rows)
    # The champion is right on the shared rows and wrong elsewhere; the challenger is wrong on
    # the shared rows and right elsewhere: only the shared rows may count.
    flipped = np.where(truth == "a", "b", "a")
    champion = ChampionScores("1", champion_split, np.where(shared, truth, flipped))
    decision = challenge(champion, rows, np.where(shared, flipped, truth), 10, False)
    assert decision.compared_rows == int(shared.sum())
    assert decision.champion_f1 == 1.0 and decision.challenger_f1 == 0.0
    assert not decision.promote


def test_champion_without_split_is_kept_unless_forced() -> None:
    rows = holdout()
    champion = ChampionScores("2", None, rows["label"].to_numpy())
    assert not challenge(champion, rows, rows["label"].to_numpy(), 10, False).promote
    assert challenge(champion, rows, rows["label"].to_numpy(), 10, True).promote


LISTINGS = TrainingOrigin("single_label", "Category Label", "/data/listings.csv", "aaa")


def test_a_champion_of_another_task_or_label_column_is_not_scored() -> None:
    tags = TrainingOrigin("multilabel", "tags", "/data/ml.csv", "bbb")
    kept = unfit_champion(LISTINGS, tags, "4", force=False)
    assert kept is not None and not kept.promote
    assert "single_label on label column 'Category Label' of listings.csv" in kept.reason
    assert "multilabel on label column 'tags' of ml.csv" in kept.reason
    assert "--model-name" in kept.reason and "--force-promote" in kept.reason
    forced = unfit_champion(LISTINGS, tags, "4", force=True)
    assert forced is not None and forced.promote
    # its classes cannot be compared: the forced decision says clients get other labels
    assert "over champion v4, trained for single_label on label column 'Category" in forced.reason
    assert "this model's classes, for multilabel on label column 'tags'" in forced.reason
    other_column = TrainingOrigin("single_label", "Category", "/data/listings.csv", "aaa")
    assert unfit_champion(LISTINGS, other_column, "4", force=False) is not None
    grown = TrainingOrigin("single_label", "Category Label", "/data/listings.csv", "ccc")
    assert unfit_champion(LISTINGS, grown, "4", force=False) is None  # a retrain: compare


def test_origin_from_a_run_defaults_to_single_label_and_needs_a_label_column() -> None:
    params = {"label_column": "main_cat"}
    tags = {"data.source": "/x/c.jsonl", "data.sha256": "s"}
    assert TrainingOrigin.from_run(params, tags) == TrainingOrigin(
        "single_label", "main_cat", "/x/c.jsonl", "s"
    )
    assert TrainingOrigin.from_run({}, {}) is None  # registered without a training run


def test_too_small_a_holdout_names_gate_min_rows_and_what_to_do() -> None:
    split = SplitDefinition(0.2, None, ("Product Title",))
    shortfall = decide(0.9, 0.8, 94, 100, False, "1")
    explained = explain_shortfall(shortfall, LISTINGS, LISTINGS, (split, split), 94, 100)
    assert "fewer than --gate-min-rows (100)" in explained.reason
    assert "whole holdout is 94 rows" in explained.reason
    assert "a lower --gate-min-rows (at most 94" in explained.reason
    assert "--model-name" not in explained.reason  # same catalog, same split


def test_no_shared_rows_with_a_champion_of_another_catalog_says_what_differs() -> None:
    theirs = SplitDefinition(0.2, None, ("Product Title",))
    mine = SplitDefinition(0.2, "sku", ("Title",))
    other = TrainingOrigin("single_label", "Category Label", "/data/shop.csv", "ddd")
    nothing = decide(None, None, 0, 100, False, "1")
    explained = explain_shortfall(nothing, LISTINGS, other, (theirs, mine), 500, 100)
    assert "only 0 row(s)" in explained.reason
    assert "trained on listings.csv, this model on shop.csv" in explained.reason
    assert "champion: 0.2 of rows by text 'Product Title'" in explained.reason
    assert "this run: 0.2 of rows by id column 'sku', else text 'Title'" in explained.reason
    assert "its own --model-name" in explained.reason
    fair = decide(0.9, 0.8, 200, 100, False, "1")
    assert explain_shortfall(fair, LISTINGS, other, (theirs, mine), 500, 100) == fair


def test_a_champion_of_the_same_products_held_out_otherwise_names_its_split_values() -> None:
    theirs = SplitDefinition(0.2, None, ("Product Title",))
    mine = SplitDefinition(0.3, "sku", ("Product Title",))
    nothing = decide(None, None, 0, 100, False, "1")
    explained = explain_shortfall(nothing, LISTINGS, LISTINGS, (theirs, mine), 500, 100)
    reason = explained.reason
    assert (
        "The champion held out its rows by other split settings: --test-size 0.2 (this run: 0.3), "
        "--id-column none (this run: sku)" in reason
    )
    fix = "train again with the champion's values (--test-size 0.2 --id-column '') so that both"
    assert fix in reason and "--text-columns" not in reason
    # the champion's values come first; another --model-name is the second choice
    assert reason.index("--test-size 0.2 --id-column") < reason.index("its own --model-name")
    assert "a model of other products" not in reason


def test_the_same_catalog_moved_is_the_same_products() -> None:
    theirs = SplitDefinition(0.2, None, ("Product Title", "Description"))
    mine = SplitDefinition(0.2, None, ("Product Title",))
    moved = TrainingOrigin("single_label", "Category Label", "/new/listings.csv", "aaa")
    nothing = decide(None, None, 0, 100, False, "1")
    reason = explain_shortfall(nothing, LISTINGS, moved, (theirs, mine), 500, 100).reason
    assert "--text-columns 'Product Title,Description'" in reason
    assert "also sets what the model reads" in reason and "trained on" not in reason


def test_a_change_of_classes_names_the_removed_and_added_ones() -> None:
    champion = ChampionScores("2", None, np.array([]), classes=("games", "x11", "devel"))
    assert class_change(champion, ["devel", "x11", "games"]) is None
    change = class_change(champion, ["devel", "x11", "gaming", "perl-stuff"])
    assert change is not None and (change.removed, change.added) == (
        ("games",),
        ("gaming", "perl-stuff"),
    )
    assert change.describe() == (
        "changed from champion v2's: removed 1 ('games'); added 2 ('gaming', 'perl-stuff')"
    )
    many = class_change(champion, [f"c{i}" for i in range(8)])
    assert many is not None and "added 8 ('c0', 'c1', 'c2', 'c3', 'c4', ...)" in many.describe()


def test_a_champion_whose_classes_are_unknown_reports_no_change() -> None:
    assert class_change(ChampionScores("2", None, np.array([])), ["a"]) is None
