"""Label cells of tag and path catalogs: the separators checked, paths named with the catalog's
own separator, empty levels and objects where a tag belongs said, duplicates keyed aloud."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pytest

from training.cli import parse_config
from training.config import TrainConfig
from training.errors import ConfigError, DataError
from training.tag_catalog import load_tag_catalog
from training.tag_labels import label_items, parse_levels, parse_tags


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def write_csv(path: Path, labels: list[str]) -> Path:
    titles = [f"product {i} {label}" for i, label in enumerate(labels)]
    pd.DataFrame({"title": titles, "cat": labels}).to_csv(path, index=False)
    return path


def config(path: Path, task: str = "path", **overrides: object) -> TrainConfig:
    values = {
        "data": str(path),
        "task": task,
        "label_column": "cat",
        "text_columns": ["title"],
        "token_columns": [],
        "id_column": "",
        "amazon_counts": False,
        "min_tag_count": 2,
    }
    return TrainConfig(**(values | overrides))


def nodes(catalog_labels: pd.Series) -> set[str]:
    return {node for row in catalog_labels for node in row}


def test_text_labels_split_with_empty_items_at_either_end() -> None:
    assert label_items("> video", " > ") == ["", "video"]  # a CSV cell loses its opening space
    assert label_items("Electronics > audio >", " > ") == ["Electronics", "audio", ""]
    assert label_items("Home >  > kitchen", " > ") == ["Home", "", "kitchen"]
    assert label_items("a|b", None) == ["a|b"]
    assert parse_tags(["a ", "b", "", "a", None], None) == ("a", "b")
    assert parse_tags("a|b | c|", "|") == ("a", "b", "c")


def test_a_path_is_read_without_trailing_empty_levels_and_not_at_all_with_a_gap() -> None:
    assert parse_levels("Electronics > audio >", " > ") == (("Electronics", "audio"), "end")
    assert parse_levels("Home >  > kitchen", " > ") == ((), "inside")
    assert parse_levels(["", "video"], None) == ((), "inside")
    assert parse_levels(["Home", "kitchen"], None) == (("Home", "kitchen"), "")
    assert parse_levels("", " > ") == ((), "")


def test_slash_paths_are_named_with_slashes(tmp_path) -> None:
    labels = ["Desktop/games/graphical"] * 3 + ["Desktop/x11"] * 3 + ["Science/math"] * 2
    catalog = load_tag_catalog(config(write_csv(tmp_path / "c.csv", labels), label_separator="/"))
    assert catalog.joiner == "/"
    assert nodes(catalog.frame["label"]) == {
        "Desktop",
        "Desktop/games",
        "Desktop/games/graphical",
        "Desktop/x11",
        "Science",
        "Science/math",
    }


def test_the_joiner_is_the_separator_as_the_catalog_spaces_it(tmp_path) -> None:
    labels = ["Electronics > Laptops"] * 2 + ["Electronics>Phones"]
    catalog = load_tag_catalog(config(write_csv(tmp_path / "c.csv", labels), label_separator=">"))
    assert catalog.joiner == " > "
    assert nodes(catalog.frame["label"]) == {"Electronics", "Electronics > Laptops"}
    records = [{"title": f"laptop {i}", "cat": ["Electronics", "Laptops"]} for i in range(2)]
    listed = load_tag_catalog(config(write_jsonl(tmp_path / "l.jsonl", records)))
    assert listed.joiner == " > ", "levels given as lists are joined with ' > '"


def test_a_level_holding_the_joiner_is_refused_with_its_line(tmp_path) -> None:
    records = [{"title": f"x {i}", "cat": ["X", "A", "B"]} for i in range(3)]
    records.append({"title": "y", "cat": ["X", "A > B"]})
    with pytest.raises(DataError, match=r"l.jsonl, line 4, column 'cat': the path level 'A > B' "):
        load_tag_catalog(config(write_jsonl(tmp_path / "l.jsonl", records)))
    mixed = [{"title": f"x {i}", "cat": "X/A"} for i in range(3)]
    mixed.append({"title": "y", "cat": ["X", "A/B"]})
    with pytest.raises(DataError, match=r"holds '/'.*--label-separator that no level holds"):
        load_tag_catalog(config(write_jsonl(tmp_path / "m.jsonl", mixed), label_separator="/"))


def test_usual_separators_get_a_warning_not_a_refusal(tmp_path, caplog) -> None:
    tags = write_csv(tmp_path / "t.csv", ["audio,garden", "audio,video", "audio"] * 2)
    with caplog.at_level(logging.WARNING):
        load_tag_catalog(config(tags, task="multilabel"))
    assert "most labels of 'cat' hold ',' (e.g. 'audio,garden')" in caplog.text
    assert "as one tag; if ',' separates them, pass --label-separator ','" in caplog.text
    caplog.clear()
    paths = write_csv(tmp_path / "p.csv", ["Desktop/games", "Desktop/x11"] * 2)
    with caplog.at_level(logging.WARNING):
        load_tag_catalog(config(paths))
    assert "pass --label-separator '/'" in caplog.text and "a path of one level" in caplog.text


def test_a_separator_that_splits_no_label_is_said(tmp_path, caplog) -> None:
    tags = write_csv(tmp_path / "t.csv", ["garden;video", "audio;video", "audio"] * 2)
    with caplog.at_level(logging.WARNING):
        load_tag_catalog(config(tags, task="multilabel", label_separator="  "))
    assert "--label-separator '  ' splits none of the labels of 'cat' (e.g. 'garden;video')" in (
        caplog.text
    )
    caplog.clear()
    records = [{"title": f"x {i}", "cat": ["a", "b"]} for i in range(3)]
    with caplog.at_level(logging.WARNING):
        load_tag_catalog(config(write_jsonl(tmp_path / "l.jsonl", records), label_separator="/"))
    assert "(e.g. ['a', 'b']): they are lists, which need no separator" in caplog.text


def test_empty_path_levels_are_counted_in_one_warning(tmp_path, caplog) -> None:
    labels = ["Home > kitchen"] * 3 + ["Home >  > kitchen", " > video", "Home > kitchen >"]
    with caplog.at_level(logging.WARNING):
        catalog = load_tag_catalog(
            config(write_csv(tmp_path / "g.csv", labels), label_separator=" > ")
        )
    assert "3 row(s) of 'cat' have an empty path level (e.g. line 5: 'Home >  > kitchen')" in (
        caplog.text
    )
    assert "2 with an empty level before a named one are dropped" in caplog.text
    assert "1 are read without their empty last level(s)" in caplog.text
    assert catalog.counts["dropped_empty_path_level"] == 2
    assert nodes(catalog.frame["label"]) == {"Home", "Home > kitchen"}
    assert len(catalog.frame) == 4


@pytest.mark.parametrize(
    ("value", "shown"),
    [({"a": 1}, r"\{'a': 1\} is an object"), ([["nested"]], r"\[\['nested'\]\] holds a list")],
)
def test_an_object_or_a_nested_list_as_a_tag_is_refused(tmp_path, value, shown) -> None:
    records = [{"title": f"x {i}", "cat": ["a", None, ""]} for i in range(3)]
    records.insert(2, {"title": "odd", "cat": value})
    with pytest.raises(DataError, match=rf"t.jsonl, line 3, column 'cat': {shown}"):
        load_tag_catalog(config(write_jsonl(tmp_path / "t.jsonl", records), task="multilabel"))


def test_duplicates_are_counted_with_their_key(tmp_path, caplog) -> None:
    frame = pd.DataFrame({"title": ["Same thing", "same  THING", "other"], "cat": ["a|b"] * 3})
    frame.to_csv(tmp_path / "d.csv", index=False)
    with caplog.at_level(logging.WARNING):
        load_tag_catalog(config(tmp_path / "d.csv", task="multilabel", label_separator="|"))
    assert "dropped 1 duplicate row(s), keyed by the normalised text of title (no id column)" in (
        caplog.text
    )


def test_a_label_separator_for_a_single_label_task_stops_at_start() -> None:
    with pytest.raises(ConfigError, match="--label-separator applies to --task multilabel or path"):
        parse_config(["--label-separator", ";"])
    assert parse_config(["--label-separator", ";", "--task", "path"])[0].label_separator == ";"
