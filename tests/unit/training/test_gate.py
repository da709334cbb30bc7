"""The champion gate's rule and its use of the rows held out by both models, without MLflow."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.gate import ChampionScores, challenge, decide
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
