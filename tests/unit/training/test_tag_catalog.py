"""Reading multi-label and path catalogs: tags parsed, rare tags dropped and counted, the label
column never an input."""

from __future__ import annotations

import json
import logging
import unicodedata
from pathlib import Path

import pandas as pd
import pytest

from training.catalog import normalize_labels
from training.config import TrainConfig
from training.errors import DataError
from training.tag_catalog import indicator_matrix, load_tag_catalog, parse_tags


def test_parse_tags_lists_and_separated_strings() -> None:
    assert parse_tags(["a ", "b", "", "a"], None) == ("a", "b")
    assert parse_tags("a|b | c", "|") == ("a", "b", "c")
    assert parse_tags("a|b", None) == ("a|b",)
    assert parse_tags(None, "|") == ()
    assert parse_tags(float("nan"), None) == ()


def write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    pd.DataFrame(rows, columns=["name", "tags"]).to_csv(path, index=False)
    return path


def config(path: Path, **overrides: object) -> TrainConfig:
    values = {
        "data": str(path),
        "task": "multilabel",
        "label_column": "tags",
        "text_columns": ["name", "tags"],
        "token_columns": [],
        "id_column": "",
        "amazon_counts": False,
        "label_separator": "|",
        "min_tag_count": 3,
    }
    return TrainConfig(**(values | overrides))


def test_rare_tags_are_dropped_with_a_counted_warning(tmp_path, caplog) -> None:
    rows = [(f"red shirt {i}", "red|shirt") for i in range(4)]
    rows += [(f"blue shirt {i}", "blue|shirt|rare") for i in range(2)]
    rows += [("lonely thing", "rare2")]
    with caplog.at_level(logging.WARNING):
        catalog = load_tag_catalog(config(write_csv(tmp_path / "c.csv", rows)))
    assert "dropped 3 tag(s) found on fewer than 3 products (5 uses" in caplog.text
    assert catalog.counts["dropped_no_tag_left"] == 1
    assert set(catalog.frame["label"]) == {("red", "shirt"), ("shirt",)}
    assert "tags" not in catalog.frame.columns  # never an input, even listed as a text column


def test_path_labels_become_their_nodes(tmp_path) -> None:
    path = tmp_path / "paths.jsonl"
    rows = [{"title": f"laptop {i}", "cat": ["Electronics", "Laptops"]} for i in range(3)]
    rows += [{"title": f"phone {i}", "cat": ["Electronics", "Phones"]} for i in range(2)]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    catalog = load_tag_catalog(
        config(path, task="path", label_column="cat", text_columns=["title"], label_separator=None)
    )
    assert catalog.frame["label"].iloc[0] == ("Electronics", "Electronics > Laptops")
    assert catalog.frame["label"].iloc[4] == ("Electronics",)  # Phones: 2 < 3 products


def test_a_label_column_that_is_not_a_list_says_what_to_do(tmp_path) -> None:
    rows = [(f"thing {i}", f"a|b{i}") for i in range(20)]
    with pytest.raises(DataError, match="--label-separator"):
        load_tag_catalog(config(write_csv(tmp_path / "c.csv", rows), label_separator=None))


def test_joined_paths_without_a_separator_name_the_one_to_pass(tmp_path) -> None:
    rows = [(f"game {i}", "Apps > games") for i in range(5)]
    rows += [(f"editor {i}", "Apps > editors") for i in range(5)]
    paths = config(write_csv(tmp_path / "c.csv", rows), task="path", label_separator=None)
    with pytest.raises(DataError, match=r"'Apps > games' .* perhaps --label-separator ' > '"):
        load_tag_catalog(paths)


def test_indicator_matrix_ignores_unknown_tags() -> None:
    matrix = indicator_matrix(pd.Series([("a", "c"), ("b",)]), ["a", "b"])
    assert matrix.tolist() == [[1, 0], [0, 1]]


def test_task_options_that_cannot_work_stop_at_start() -> None:
    from training.config_files import make_config
    from training.errors import ConfigError

    with pytest.raises(ConfigError, match="--gate-metric: a single_label model"):
        make_config({"gate_metric": "f1_micro"})
    with pytest.raises(ConfigError, match="needs the compact forest"):
        make_config({"task": "path", "compact": False})
    assert make_config({"task": "path"}).task_gate_metric == "f1_samples"
    assert make_config({"task": "multilabel"}).task_gate_metric == "f1_micro"


def test_tags_equal_but_for_case_and_spaces_are_one_tag_spelled_as_single_labels_are(
    tmp_path,
) -> None:
    rows = [(f"arcade game {i}", "Games|retro") for i in range(3)]
    rows += [(f"board game {i}", "games |Retro") for i in range(4)]
    rows += [(f"puzzle game {i}", " GAMES|games") for i in range(2)]
    catalog = load_tag_catalog(config(write_csv(tmp_path / "c.csv", rows)))
    uses = [tag for tags in catalog.frame["label"] for tag in tags]
    # The spelling single-label training would pick for the same uses (the most frequent).
    spellings = set(normalize_labels(pd.Series(["Games"] * 3 + ["games"] * 6 + ["GAMES"] * 2)))
    assert spellings == {"games"} and set(uses) == {"games", "Retro"}
    assert catalog.frame["label"].iloc[-1] == ("games",)  # " GAMES|games": one tag, not two


def test_path_levels_are_unified_and_label_mapped_level_by_level(tmp_path) -> None:
    (tmp_path / "map.yaml").write_text("Laptop: Laptops\n")
    rows = [(f"laptop {i}", "Electronics > Laptops") for i in range(3)]
    rows += [(f"notebook {i}", "electronics  >  Laptop") for i in range(3)]
    paths = config(
        write_csv(tmp_path / "c.csv", rows),
        task="path",
        label_separator=">",
        label_map=str(tmp_path / "map.yaml"),
    )
    labels = set(load_tag_catalog(paths).frame["label"])
    assert labels == {("Electronics", "Electronics > Laptops")}


def test_a_tag_column_in_another_unicode_normal_form_is_the_one_named(tmp_path) -> None:
    """--label-column typed composed ("Schlagwörter") names a header written decomposed."""
    tags, name = (unicodedata.normalize("NFD", n) for n in ("Schlagwörter", "Bezeichnung"))
    rows = [{name: f"red shirt {i}", tags: "red|shirt"} for i in range(4)]
    path = tmp_path / "c.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    options = config(path, label_column="Schlagwörter", text_columns=["Bezeichnung"])
    catalog = load_tag_catalog(options)
    assert set(catalog.frame["label"]) == {("red", "shirt")}
    assert options.label_column == tags and list(catalog.frame.columns) == [name, "label"]
