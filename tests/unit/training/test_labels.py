"""Label maps: reading, checking and applying them."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest

from training.errors import ConfigError
from training.labels import (
    apply_label_map,
    check_other_label,
    check_other_label_not_mapped,
    load_label_map,
)


def test_label_map_from_yaml_and_csv(tmp_path: Path) -> None:
    yaml_file = tmp_path / "map.yaml"
    yaml_file.write_text("fridge: Fridges\nCPU: CPUs\n")
    csv_file = tmp_path / "map.csv"
    csv_file.write_text("fridge,Fridges\nCPU,CPUs\n")
    assert (
        load_label_map(yaml_file)
        == load_label_map(csv_file)
        == {"fridge": "Fridges", "CPU": "CPUs"}
    )
    labels = pd.Series(["fridge", "FRIDGE", "Fridges", "CPU", "Laptops"])
    mapped = apply_label_map(labels, load_label_map(yaml_file))
    assert mapped.tolist() == ["Fridges", "Fridges", "Fridges", "CPUs", "Laptops"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("map.yaml", "- a\n- b\n", "mapping"),
        ("map.yaml", "a: [b\n", "not valid YAML"),
        ("map.csv", "a,b,c\n", "line 1: expected two columns"),
        ("map.csv", "\n", "no `variant,canonical` rows"),
    ],
)
def test_bad_label_maps_get_one_clear_message(tmp_path: Path, name, content, message) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_label_map(path)


def test_missing_label_map(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_label_map(tmp_path / "nope.yaml")


def test_keys_that_match_no_label_are_named_in_one_warning(tmp_path: Path, caplog) -> None:
    path = tmp_path / "map.yaml"
    path.write_text("cpu: CPUs\n" + "".join(f"Typo{i}: X\n" for i in range(12)))
    with caplog.at_level(logging.WARNING, logger="training.labels"):
        mapped = apply_label_map(pd.Series(["CPU", "Laptops"]), load_label_map(path))
    assert mapped.tolist() == ["CPUs", "Laptops"]
    [warning] = caplog.records
    message = warning.getMessage()
    assert f"--label-map {path}: 12 of 13 key(s) match no label" in message
    assert "'Typo0', " in message and "'Typo9'" in message and "'Typo10'" not in message
    assert "and 2 more" in message


def test_a_label_map_with_a_cycle_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "map.yaml"
    path.write_text("Laptop: Laptops\nCPU: CPUs\nCPUs: cpu\n")
    with pytest.raises(ConfigError, match="cycle, 'CPU' → 'CPUs' → 'CPU'") as error:
        load_label_map(path)
    assert error.value.exit_code == 2 and str(path) in str(error.value)


def test_chains_are_followed_to_their_end(caplog) -> None:
    mapping = {"a": "b", "b": "c", "x": "X"}  # x: X only changes the case, and ends there
    with caplog.at_level(logging.INFO, logger="training.labels"):
        mapped = apply_label_map(pd.Series(["a", "B", "c", "x"]), mapping)
    assert mapped.tolist() == ["c", "c", "c", "X"]
    assert "1 chain(s) followed to their end, e.g. a → b → c" in caplog.text
    assert "match no label" not in caplog.text  # `b` is used by `a`'s chain


def test_a_key_mapping_to_its_own_case_variant_is_no_cycle(tmp_path: Path) -> None:
    path = tmp_path / "map.yaml"
    path.write_text("cpu: CPU\nCPU: CPUs\n")
    mapped = apply_label_map(pd.Series(["cpu", "CPU", "Cpu"]), load_label_map(path))
    assert mapped.tolist() == ["CPUs", "CPUs", "CPUs"]


def test_other_label_naming_a_kept_class_is_refused() -> None:
    sizes = {"Laptops": 50, "Other": 30, "Kettles": 3, "Toasters": 2}
    with pytest.raises(ConfigError, match="already has the class 'Other' \\(30 rows\\)") as error:
        check_other_label(sizes, "other", min_class_size=10)
    assert "'Kettles', 'Toasters'" in str(error.value) and "--label-map" in str(error.value)
    assert error.value.exit_code == 2
    check_other_label(sizes, "rare classes", min_class_size=10)  # a new name
    check_other_label(sizes, "Other", min_class_size=2)  # nothing is folded
    check_other_label({"Laptops": 50, "Other": 3, "Kettles": 3}, "Other", 10)  # folded itself


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        ("libs: library\nlibdevel:\n", 2, "the key 'libdevel' maps to nothing \\(empty\\)"),
        ('libdevel: ""\n', 1, "the key 'libdevel' maps to a blank text"),
        ("libdevel: '  '\n", 1, "the key 'libdevel' maps to a blank text"),
        ("libdevel: ~\n", 1, "the key 'libdevel' maps to ~, which YAML reads as null"),
        ("libdevel: yes\n", 1, "the key 'libdevel' maps to yes, which YAML reads as a boolean"),
        ("libdevel: [a, b]\n", 1, "the key 'libdevel' maps to a list"),
        ("libdevel: {a: b}\n", 1, "the key 'libdevel' maps to a mapping"),
        ("libs: library\n~: x\n", 2, "a key is ~, which YAML reads as null"),
        ('"": x\n', 1, "a key is a blank text"),
        ("no: x\n", 1, "a key is no, which YAML reads as a boolean"),
    ],
)
def test_a_yaml_key_or_value_that_is_no_label_is_refused(
    tmp_path: Path, content: str, line: int, message: str
) -> None:
    path = tmp_path / "map.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message) as error:
        load_label_map(path)
    text = str(error.value)
    assert text.startswith(f"--label-map {path}, line {line}: ") and error.value.exit_code == 2
    assert "quote" in text and "delete the line" in text


def test_yaml_numbers_and_dates_keep_the_text_as_written(tmp_path: Path) -> None:
    path = tmp_path / "map.yaml"
    path.write_text("01: 010\n7: 1.50\nreleased: 2020-01-01\n'yes': 'no'\n")
    assert load_label_map(path) == {"01": "010", "7": "1.50", "released": "2020-01-01", "yes": "no"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("libs,library\nlibdevel,\n", "line 2: the key 'libdevel' has an empty second cell"),
        ("libs,library\n , x\n", "line 2: a key is empty"),
    ],
)
def test_a_csv_row_with_an_empty_cell_is_refused(tmp_path: Path, content, message) -> None:
    path = tmp_path / "map.csv"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message) as error:
        load_label_map(path)
    assert str(path) in str(error.value) and "delete the line" in str(error.value)


def test_keys_equal_but_for_case_with_different_labels_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "map.yaml"
    path.write_text("ROLE::PROGRAM: role::app\nrole::program: role::application\n")
    with pytest.raises(ConfigError, match="'ROLE::PROGRAM' and 'role::program' differ only in"):
        load_label_map(path)
    path.write_text("ROLE::PROGRAM: role::app\nrole::program: Role::App\nRole::App: role::app\n")
    assert len(load_label_map(path)) == 3  # the same label but for case: no conflict


def test_a_key_shadowed_by_its_exact_spelling_is_not_called_unmatched(caplog) -> None:
    mapping = {"libs": "library", "Libs": "Library", "Typo": "x"}
    with caplog.at_level(logging.INFO, logger="training.labels"):
        mapped = apply_label_map(pd.Series(["libs", "games"]), mapping)
    assert mapped.tolist() == ["library", "games"]
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "1 of 3 key(s) match no label" in warning and "'Libs'" not in warning
    assert "'Libs' are not needed" in caplog.text


def test_other_label_that_the_map_maps_away_is_refused() -> None:
    mapping = {"libs": "library", "other": "Other"}
    with pytest.raises(ConfigError, match="maps 'libs' to 'library'") as error:
        check_other_label_not_mapped(mapping, "Libs", ["tiny"])
    assert error.value.exit_code == 2 and "--other-label 'Libs'" in str(error.value)
    check_other_label_not_mapped(mapping, "libs", [])  # nothing is folded
    check_other_label_not_mapped(mapping, "other", ["tiny"])  # mapped to its own case variant
    check_other_label_not_mapped(mapping, "rare", ["tiny"])  # not a key


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("map.yaml", "perl: libs\ncpu: CPUs\nperl: devel\n"),
        ("map.yaml", "perl: libs\n' perl ': devel\n"),  # the same key once trimmed
        ("map.csv", "perl,libs\ncpu,CPUs\nperl,devel\n"),
    ],
)
def test_a_key_given_twice_with_two_labels_is_refused(
    tmp_path: Path, name: str, content: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ConfigError, match=r"the key 'perl' maps to 'libs' and to 'devel'") as error:
        load_label_map(path)
    assert "lines 1 and" in str(error.value) and error.value.exit_code == 2
    path.write_text(content.replace("devel", "libs"))
    assert load_label_map(path)["perl"] == "libs"  # the same pair twice changes nothing


@pytest.mark.parametrize(
    ("name", "content", "lines"),
    [
        ("map.yaml", "perl: libs\nLibs: devel\nlibs: utils\n", "lines 2 and 3"),
        ("map.csv", "Libs,devel\ncpu,CPUs\nlibs,utils\n", "lines 1 and 3"),
        ("map.yaml", "base: &base\n  Libs: devel\n<<: *base\nlibs: utils\n", "lines 2 and 4"),
    ],
)
def test_case_variant_keys_are_refused_naming_file_and_lines(
    tmp_path: Path, name: str, content: str, lines: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ConfigError, match="'Libs' and 'libs' differ only in case") as error:
        load_label_map(path)
    assert str(error.value).startswith(f"--label-map {path}, {lines}: ")


def test_yaml_merge_keys_merge_mappings_and_explicit_keys_win(tmp_path: Path) -> None:
    path = tmp_path / "map.yaml"
    path.write_text(
        "common: &common\n  fridge: Fridges\n  CPU: CPUs\n"
        "more: &more {CPU: Processors, tv: TVs}\n"
        "<<: [*common, *more]\n"  # the first merged mapping wins: CPU -> CPUs
        "fridge: Fridge Freezers\n"  # an explicit key overrides a merged one
        "laptop: Laptops\n"
    )
    mapping = load_label_map(path)
    assert mapping == {
        "fridge": "Fridge Freezers",
        "CPU": "CPUs",
        "tv": "TVs",
        "laptop": "Laptops",
    }  # `common` and `more` only define what `<<` merges: no label maps them
    assert mapping.lines == {"fridge": 6, "CPU": 3, "tv": 4, "laptop": 7}


def test_a_merged_mapping_anchored_inline_and_nested_merges(tmp_path: Path) -> None:
    path = tmp_path / "map.yaml"
    path.write_text("<<: &base {fridge: Fridges}\nsub: &sub {<<: *base, cpu: CPUs}\n<<: *sub\n")
    assert load_label_map(path) == {"fridge": "Fridges", "cpu": "CPUs"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("<<: Laptops\n", "line 1: the merge key `<<` takes a mapping"),
        ("a: x\n<<: [*x]\n", "not valid YAML"),
        ("b: &b {c: d}\n<<: [*b, e]\n", "line 2: the merge key `<<` takes a mapping"),
        ("a: &a {<<: *a, x: y}\n<<: *a\n", "a mapping merges itself"),
        ("a: {x: y}\n", "line 1: the key 'a' maps to a mapping.*merge it: `<<: \\*name`"),
    ],
)
def test_a_bad_merge_key_is_refused_naming_the_line(tmp_path: Path, content, message) -> None:
    path = tmp_path / "map.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message) as error:
        load_label_map(path)
    assert str(error.value).startswith(f"--label-map {path}") and error.value.exit_code == 2


def test_a_quoted_merge_key_is_a_label(tmp_path: Path) -> None:
    path = tmp_path / "map.yaml"
    path.write_text("'<<': arrows\n")
    assert load_label_map(path) == {"<<": "arrows"}
