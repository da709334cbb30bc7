"""The distances and the reference profile, on distributions whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from product_model.features import ProductFeaturizer
from product_model.profile import (
    CONFIDENCE_EDGES,
    binned_shares,
    build_profile,
    jensen_shannon_distance,
    population_stability_index,
)


def test_js_distance_is_zero_for_equal_and_one_for_disjoint_distributions() -> None:
    assert jensen_shannon_distance({"a": 0.5, "b": 0.5}, {"b": 0.5, "a": 0.5}) == 0.0
    assert jensen_shannon_distance({"a": 1.0}, {"b": 1.0}) == pytest.approx(1.0)


def test_js_distance_of_a_known_pair() -> None:
    # P = (1, 0), Q = (1/2, 1/2): M = (3/4, 1/4);
    # JSD = 1/2 [log2(4/3)] + 1/2 [1/2 log2(2/3) + 1/2 log2(2)] = 0.311278 bits.
    expected = math.sqrt(0.5 * math.log2(4 / 3) + 0.25 * math.log2(2 / 3) + 0.25)
    assert jensen_shannon_distance({"a": 1.0}, {"a": 0.5, "b": 0.5}) == pytest.approx(expected)
    assert expected == pytest.approx(math.sqrt(0.311278), abs=1e-6)


def test_js_distance_is_symmetric_and_takes_counts() -> None:
    p, q = {"a": 3, "b": 1}, {"a": 1, "c": 1}
    assert jensen_shannon_distance(p, q) == pytest.approx(jensen_shannon_distance(q, p))
    assert jensen_shannon_distance(p, q) == pytest.approx(
        jensen_shannon_distance({"a": 0.75, "b": 0.25}, {"a": 0.5, "c": 0.5})
    )


def test_psi_of_a_known_shift() -> None:
    live, reference = [0.5, 0.5], [0.25, 0.75]
    expected = 0.25 * math.log(2) + (-0.25) * math.log(0.5 / 0.75)
    assert population_stability_index(live, reference) == pytest.approx(expected)
    assert population_stability_index(reference, reference) == 0.0


def test_psi_with_an_empty_bin_is_large_but_finite() -> None:
    score = population_stability_index([0.0, 1.0], [0.5, 0.5])
    assert 1.0 < score < 10.0


def test_binned_shares_clip_into_the_end_bins() -> None:
    shares = binned_shares([0.05, 0.95, 1.0, 1.5, -1], CONFIDENCE_EDGES)
    assert shares[0] == pytest.approx(0.4) and shares[-1] == pytest.approx(0.6)
    assert sum(shares) == pytest.approx(1.0)


def test_profile_of_known_products() -> None:
    products = [
        {"title": "red shoe", "brand": "Acme"},
        {"title": "blue shoe", "description": "", "brand": []},
    ]
    profile = build_profile(
        products,
        ["Shoes", "Shoes"],
        [0.9, 0.3],
        [0.0, 0.5],
        ["title", "description", "brand"],
        ["title", "description"],
    )
    assert profile["labels"] == {"Shoes": 1.0}
    assert profile["fill_rate"] == {"title": 1.0, "description": 0.0, "brand": 0.5}
    assert profile["confidence"]["mean"] == pytest.approx(0.6)
    assert profile["text_length"]["title"]["mean"] == pytest.approx(8.5)


def test_oov_share_counts_tokens_the_vocabulary_lacks() -> None:
    train = [{"title": "steel hammer"}, {"title": "steel hammer claw"}, {"title": "claw"}]
    featurizer = ProductFeaturizer(min_df=1, stemmer=None).fit(train)
    shares = featurizer.oov_shares(
        [{"title": "steel hammer"}, {"title": "steel spoon"}, {"title": "the"}]
    )
    assert np.allclose(shares, [0.0, 0.5, 1.0])
