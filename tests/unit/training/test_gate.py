"""The champion gate's rule and its use of the rows held out by both models, and its checks of
the champion's contract (input fields, classes), without MLflow."""

from __future__ import annotations

import numpy as np
import pandas as pd

from product_model.contract import InputField
from training.gate import (
    ChampionScores,
    TrainingOrigin,
    challenge,
    decide,
    explain_shortfall,
    unfit_champion,
)
from training.gate_contract import (
    InputChange,
    class_change,
    input_change,
    lacking_fields,
    unreadable_champion,
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


SHOP_FIELDS = (
    InputField("Product Name", "text", "string"),
    InputField("Details", "text", "string"),
    InputField("Vendor", "tokens", "tokens"),
    InputField("Tags", "tokens", "tokens"),
    InputField("Price", "numeric", "number"),
    InputField("SKU", "id", "string"),
)


def renamed_shop(n: int = 200) -> pd.DataFrame:
    """A holdout of the shop catalog with 'Product Name' renamed 'Title' and no 'Tags'."""
    return pd.DataFrame(
        {
            "SKU": [f"s{i}" for i in range(n)],
            "Title": ["usb cable"] * n,
            "Details": ["1 m"] * n,
            "Vendor": ["acme"] * n,
            "Price": ["9.99"] * n,
            "label": ["a", "b"] * (n // 2),
        }
    )


def shop_champion(**fill_rate: float) -> ChampionScores:
    labels = np.array(["a"] * 200)
    return ChampionScores("1", None, labels, fields=SHOP_FIELDS, fill_rate=fill_rate or None)


def test_a_champion_whose_fields_the_catalog_lacks_is_kept_unless_forced() -> None:
    kept = unreadable_champion(shop_champion(), renamed_shop(), force=False)
    assert kept is not None and not kept.promote
    assert kept.champion_f1 is None, "a score without its inputs is not the champion's"
    assert kept.reason.startswith(
        "cannot compare: champion v1 reads 'Product Name', 'Tags', which this catalog lacks: "
    )
    assert "champion v1 kept" in kept.reason and "--model-name" in kept.reason
    assert "--force-promote replaces the champion" in kept.reason
    forced = unreadable_champion(shop_champion(), renamed_shop(), force=True)
    assert forced is not None and forced.promote
    assert forced.reason == (
        "forced with --force-promote (over champion v1, not scored: it reads 'Product Name', "
        "'Tags', which this catalog lacks)"
    )


def test_a_champion_whose_fields_the_catalog_has_is_compared() -> None:
    rows = renamed_shop().rename(columns={"Title": "Product Name"}).assign(Tags=[["x"]] * 200)
    assert unreadable_champion(shop_champion(), rows, force=False) is None
    unknown = ChampionScores("1", None, np.array([]))  # a model from before input contracts
    assert unreadable_champion(unknown, renamed_shop(), force=False) is None


def test_a_field_empty_on_every_holdout_row_lacks_when_the_champion_had_it() -> None:
    rows = renamed_shop().assign(**{"Product Name": "", "Tags": [[]] * 200, "Price": "n/a"})
    fields = SHOP_FIELDS
    # Fill rates from the champion's reference profile: it had them on its own holdout.
    had = {"Product Name": 1.0, "Tags": 0.5, "Price": 0.9, "Details": 1.0}
    assert lacking_fields(fields, had, rows) == dict.fromkeys(
        ("Product Name", "Tags", "Price"), "empty on all 200 holdout rows"
    )
    # Empty on its own holdout too (same catalog), or too rare to be missed by chance: compared.
    assert lacking_fields(fields, {"Product Name": 1.0, "Tags": 0.0, "Price": 0.02}, rows) == {
        "Product Name": "empty on all 200 holdout rows"
    }
    assert "Tags" in lacking_fields(fields, None, rows)  # fill rate not known: it lacks
    kept = unreadable_champion(shop_champion(**had), rows, force=False)
    assert kept is not None and "which this catalog lacks ('Product Name' is empty on all 200" in (
        kept.reason
    )


def test_a_change_of_input_fields_names_removed_added_and_retyped_ones() -> None:
    champion = shop_champion()
    assert input_change(champion, SHOP_FIELDS) is None
    mine = (
        InputField("Title", "text", "string"),
        InputField("Details", "text", "text"),
        *SHOP_FIELDS[2:3],
        *SHOP_FIELDS[4:],
    )
    change = input_change(champion, mine)
    assert change == InputChange(
        "1", ("Product Name", "Tags"), ("Title",), ("Details (text string → text text)",)
    )
    assert change.describe() == (
        "changed from champion v1's: removed 'Product Name', 'Tags'; added 'Title'; "
        "changed Details (text string → text text)"
    )
    assert input_change(ChampionScores("1", None, np.array([])), mine) is None  # not known
