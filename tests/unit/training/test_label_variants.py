"""Label-variant detection: labels that look like one category written several ways."""

from __future__ import annotations

import pytest

from training.label_variants import find_variants, variant_key, within_one_edit


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Fridges", "fridge"),
        ("CPU", "CPUs"),
        ("Mobile Phone", "Mobile Phones"),
        ("mobile-phone", "Mobile phones"),
        ("Batteries", "battery"),
        ("Watches", "watch"),
    ],
)
def test_variant_keys_match(a: str, b: str) -> None:
    assert variant_key(a) == variant_key(b)


@pytest.mark.parametrize(("a", "b"), [("Fridges", "Fridge Freezers"), ("libs", "oldlibs")])
def test_different_categories_keep_different_keys(a: str, b: str) -> None:
    assert variant_key(a) != variant_key(b)


def test_within_one_edit() -> None:
    assert within_one_edit("television", "televsion")
    assert within_one_edit("monitor", "monitors")
    assert within_one_edit("laptop", "laptip")
    assert not within_one_edit("laptop", "desktop")
    assert within_one_edit("abc", "abc")  # zero edits is within one


def test_find_variants_groups_with_the_most_frequent_first() -> None:
    counts = {
        "Fridges": 1204,
        "fridge": 12,
        "CPUs": 500,
        "CPU": 40,
        "Televisions": 300,
        "Televsions": 3,
        "Washing Machines": 800,
    }
    groups = {group.canonical: group for group in find_variants(counts)}
    assert set(groups) == {"Fridges", "CPUs", "Televisions"}
    assert groups["Fridges"].labels == (("Fridges", 1204), ("fridge", 12))
    assert groups["CPUs"].map_lines() == ["CPU: CPUs"]
    assert "'fridge' (12 rows)" in groups["Fridges"].describe()


def test_no_variants_in_distinct_labels() -> None:
    assert find_variants({"games": 10, "science": 5, "libs": 30, "oldlibs": 4}) == []
