"""Readers and cleaning: real-world mess in, counted clean rows or one clear error out."""

from __future__ import annotations

import gzip
import json
import unicodedata
import warnings
from pathlib import Path

import pandas as pd
import pytest
from pydantic import ValidationError

from training.catalog import clean_catalog, load_catalog, normalize_labels, read_catalog_file
from training.config import TrainConfig
from training.errors import ConfigError, DataError


def amazon_record(asin: str, label: str, title: str = "a useful product", **extra) -> dict:
    return {"asin": asin, "title": title, "main_cat": label, **extra}


def write_lines(path: Path, lines: list[str], gz: bool = False) -> Path:
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def catalog_lines(n_per_class: int = 12) -> list[str]:
    return [
        json.dumps(amazon_record(f"{label}-{i}", label, title=f"{label} tool number {i}"))
        for label in ("games", "science")
        for i in range(n_per_class)
    ]


@pytest.mark.parametrize("gz", [False, True])
def test_reads_amazon_json_lines_plain_and_gzip(tmp_path: Path, gz: bool) -> None:
    path = write_lines(tmp_path / ("c.jsonl.gz" if gz else "c.jsonl"), catalog_lines(), gz)
    catalog = load_catalog(TrainConfig(data=str(path)))
    assert len(catalog.frame) == 24
    assert set(catalog.labels) == {"games", "science"}
    assert len(catalog.sha256) == 64


def test_gzip_detected_by_content_not_name(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "catalog.jsonl", catalog_lines(), gz=True)
    assert len(read_catalog_file(path, TrainConfig())) == 24


def test_missing_amazon_fields_are_normal(tmp_path: Path) -> None:
    lines = catalog_lines()
    lines.append(json.dumps({"asin": "x1", "title": "only a title", "main_cat": "games"}))
    path = write_lines(tmp_path / "c.jsonl", lines)
    catalog = load_catalog(TrainConfig(data=str(path)))
    assert "x1" in set(catalog.frame["asin"])


def test_malformed_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    lines = catalog_lines(20)
    lines.insert(3, "{not json")
    path = write_lines(tmp_path / "c.jsonl", lines)
    catalog = load_catalog(TrainConfig(data=str(path)))
    assert catalog.counts["malformed_lines"] == 1
    assert len(catalog.frame) == 40


def test_mostly_malformed_file_names_the_first_bad_line(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "c.jsonl", ["garbage", "more garbage", catalog_lines()[0]])
    with pytest.raises(DataError, match=r"c\.jsonl, line 1"):
        load_catalog(TrainConfig(data=str(path)))


def test_unreadable_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        load_catalog(TrainConfig(data=str(tmp_path / "nope.jsonl")))
    broken = tmp_path / "broken.jsonl.gz"
    broken.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(DataError, match=r"broken\.jsonl\.gz"):
        load_catalog(TrainConfig(data=str(broken)))
    odd = tmp_path / "catalog.xlsx"
    odd.write_text("x")
    with pytest.raises(DataError, match="--format"):
        load_catalog(TrainConfig(data=str(odd)))


def test_missing_label_column_is_named(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "c.jsonl", catalog_lines())
    with pytest.raises(DataError, match="label column 'section' not found"):
        load_catalog(TrainConfig(data=str(path), label_column="section"))


def test_unknown_mapped_column_is_named(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "c.jsonl", catalog_lines())
    with pytest.raises(DataError, match="colour"):
        load_catalog(TrainConfig(data=str(path), token_columns=["colour"]))


def messy_csv(path: Path) -> Path:
    rows = [" sku , name ,Category , price"]
    for i in range(12):
        rows.append(f"s{i},Red mug number {i}, Kitchen ,{i}.5")
        rows.append(f"t{i},Blue pen number {i},office,{i}")
    rows += [
        "s0,duplicate id,Kitchen,1",  # duplicated id
        "u1,no label here,,2",  # blank label
        "u2,,Office,3",  # empty title
        "u3,Green cup,  KITCHEN  ,4",  # label differing in case and spaces
    ]
    data = "\n".join(rows).encode() + b"\nu4,Caf\xe9 spoon,kitchen,5\n"  # latin-1 byte
    path.write_bytes(data)
    return path


def test_messy_csv_with_mapping(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = TrainConfig(
        data=str(messy_csv(tmp_path / "shop.csv")),
        label_column="Category",
        id_column="sku",
        text_columns=["name"],
        token_columns=[],
        numeric_columns=["price"],
        amazon_counts=False,
    )
    catalog = load_catalog(config)
    counts = catalog.counts
    assert counts["dropped_duplicates"] == 1
    assert counts["dropped_no_label"] == 1
    assert counts["dropped_no_text"] == 1
    assert set(catalog.labels) == {"Kitchen", "office"}
    assert (catalog.labels == "Kitchen").sum() == 14
    assert any("\ufffd" in name for name in catalog.frame["name"])
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "shop.csv: removed rows: dropped_no_label=1, dropped_no_text=1" in warned
    assert "dropped 1 duplicate row(s), keyed by the id column 'sku'" in warned


@pytest.mark.parametrize("option", ["text_columns", "token_columns"])
def test_the_label_column_is_never_an_input(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, option: str
) -> None:
    mapping = {"text_columns": ["name"], "token_columns": []}
    mapping[option] = [*mapping[option], "Category"]
    config = TrainConfig(
        data=str(messy_csv(tmp_path / "shop.csv")),
        label_column="Category",
        id_column="sku",
        amazon_counts=False,
        **mapping,
    )
    catalog = load_catalog(config)
    assert "Category" not in catalog.frame.columns and "label" in catalog.frame.columns
    flag = "--" + option.replace("_", "-")
    assert any(
        r.levelname == "WARNING" and f"also named as an input ({flag})" in r.getMessage()
        for r in caplog.records
    )


def test_parquet_reader(tmp_path: Path) -> None:
    frame = pd.DataFrame({"text": [f"item {i}" for i in range(20)], "y": ["a", "b"] * 10})
    frame.to_parquet(tmp_path / "c.parquet")
    config = TrainConfig(
        data=str(tmp_path / "c.parquet"),
        label_column="y",
        id_column=None,
        text_columns=["text"],
        token_columns=[],
        amazon_counts=False,
    )
    assert len(load_catalog(config).frame) == 20


def test_small_classes_dropped_or_folded() -> None:
    frame = pd.DataFrame(
        {
            "title": [f"t{i}" for i in range(26)],
            "asin": range(26),
            "main_cat": ["big"] * 20 + ["tiny"] * 3 + ["small"] * 3,
        }
    )
    dropped, counts = clean_catalog(frame, TrainConfig(min_class_size=5))
    assert set(dropped["label"]) == {"big"} and counts["small_class_rows"] == 6
    folded, _ = clean_catalog(frame, TrainConfig(min_class_size=5, small_classes="other"))
    assert set(folded["label"]) == {"big", "other"}
    assert (folded["label"] == "other").sum() == 6
    with pytest.raises(ConfigError, match="already has the class 'big'"):
        clean_catalog(
            frame, TrainConfig(min_class_size=5, small_classes="other", other_label="Big")
        )


def test_folded_small_classes_are_told_apart_from_removed_rows(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lines = [
        *catalog_lines(),
        json.dumps(amazon_record("x", "")),
        json.dumps(amazon_record("k", "tiny")),
    ]
    path = write_lines(tmp_path / "c.jsonl", lines)
    config = TrainConfig(data=str(path), min_class_size=2, small_classes="other")
    with caplog.at_level("WARNING", logger="training.catalog"):
        catalog = load_catalog(config)
    # One folded row is too few to keep as a class: removed after all, and said so.
    assert "removed rows: dropped_no_label=1, small_class_rows=1" in caplog.text
    caplog.clear()
    lines.append(json.dumps(amazon_record("k2", "tinier")))
    write_lines(path, lines)
    with caplog.at_level("WARNING", logger="training.catalog"):
        catalog = load_catalog(config)
    assert (
        catalog.counts["folded_small_class_rows"] == 2 and "small_class_rows" not in catalog.counts
    )
    assert "removed rows: dropped_no_label=1; rows kept under --other-label" in caplog.text
    assert "folded_small_class_rows=2" in caplog.text


def test_an_other_label_the_label_map_maps_away_is_refused(tmp_path: Path) -> None:
    lines = [*catalog_lines(), json.dumps(amazon_record("k", "tiny"))]
    path = write_lines(tmp_path / "c.jsonl", lines)
    (tmp_path / "map.yaml").write_text("libs: games\n")
    config = TrainConfig(
        data=str(path),
        label_map=str(tmp_path / "map.yaml"),
        small_classes="other",
        min_class_size=2,
        other_label="libs",
    )
    with pytest.raises(ConfigError, match="maps 'libs' to 'games'"):
        load_catalog(config)


def test_label_normalization_prefers_most_frequent_spelling() -> None:
    labels = pd.Series(["Games", " games", "GAMES ", "Games", "Office  Tools", None])
    assert list(normalize_labels(labels)) == ["Games"] * 4 + ["Office Tools", ""]


def test_bundled_sample_is_small_and_stratified() -> None:
    config = TrainConfig()
    catalog = load_catalog(config)
    assert Path(catalog.source).stat().st_size <= 2 * 1024 * 1024
    assert catalog.counts["classes"] >= 50
    assert catalog.frame["asin"].is_unique


def write_csv(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join(rows) + "\n")
    return path


def csv_config(path: Path, **overrides) -> TrainConfig:
    values = {
        "data": str(path),
        "label_column": "cat",
        "text_columns": ["name"],
        "token_columns": [],
        "id_column": "",
        "amazon_counts": False,
        "numeric_columns": ["weight"],
        "min_class_size": 2,
    }
    return TrainConfig(**(values | overrides))


@pytest.mark.parametrize("extra", [",games", ",games,2"])
def test_a_first_row_longer_than_the_header_is_refused(tmp_path: Path, extra: str) -> None:
    """pandas read it with a row index of the first column(s) and every name shifted: the name
    column held the weights, the label column the names."""
    rows = ["name,cat,weight", f"chess set,toys,1{extra}", "lamp,home,2", "kettle,home,3"]
    path = write_csv(tmp_path / "c.csv", rows)
    cells = 3 + extra.count(",")
    with pytest.raises(DataError) as refused:
        load_catalog(csv_config(path))
    assert str(refused.value) == (
        f"{path}: not a valid CSV file: row 1 (the first after the header) has {cells} cells "
        "where the header has 3; quote a cell that holds ',', or name every column in the header"
    )


def test_numeric_csv_columns_are_numbers_blanks_missing(tmp_path: Path) -> None:
    rows = ["name,cat,weight"] + [
        f"thing {i},{'ab'[i % 2]},{i if i % 3 else ''}" for i in range(20)
    ]
    catalog = load_catalog(csv_config(write_csv(tmp_path / "c.csv", rows)))
    weights = catalog.frame["weight"]
    assert weights.dtype == "float64"
    assert weights.isna().sum() == 7 and weights.max() == 19.0


def test_too_many_bad_numbers_stop_with_file_line_and_column(tmp_path: Path) -> None:
    rows = ["name,cat,weight"] + [
        f"thing {i},{'ab'[i % 2]},{'heavy' if i == 4 else i}" for i in range(10)
    ]
    path = write_csv(tmp_path / "c.csv", rows)
    with pytest.raises(DataError, match=r"line 6, column 'weight': 'heavy' is not a number"):
        load_catalog(csv_config(path))
    catalog = load_catalog(csv_config(path, max_bad_numeric_share=0.2))
    assert catalog.counts["bad_numeric_weight"] == 1


def test_the_bad_number_is_named_by_its_line_in_the_file(tmp_path: Path) -> None:
    rows = ["name,cat,weight", '"a name\non two lines",a,1', '"and\nthree\nlines",b,2']
    rows += [f"thing {i},{'ab'[i % 2]},{'heavy' if i == 4 else i}" for i in range(8)]
    csv = write_csv(tmp_path / "c.csv", rows)  # 'heavy': the 6th row after 5 lines
    with pytest.raises(DataError, match=r"line 11, column 'weight': 'heavy'"):
        load_catalog(csv_config(csv))
    lines = ["{broken", ""] + [
        json.dumps({"name": f"thing {i}", "cat": "ab"[i % 2], "weight": "x" if i == 4 else i})
        for i in range(30)
    ]
    jsonl = tmp_path / "c.jsonl"
    jsonl.write_text("\n".join(lines) + "\n")  # the 5th record is on line 7
    with pytest.raises(DataError, match=r"line 7, column 'weight': 'x'"):
        load_catalog(csv_config(jsonl, max_bad_numeric_share=0.01))


def test_label_map_merges_variants_before_classes_are_counted(tmp_path: Path) -> None:
    rows = ["name,cat,weight"] + [
        f"phone {i},{'Mobile Phone' if i % 4 == 0 else 'Mobile Phones'},1" for i in range(12)
    ]
    rows += [f"cpu {i},CPUs,2" for i in range(12)]
    path = write_csv(tmp_path / "c.csv", rows)
    unmapped = load_catalog(csv_config(path))
    assert [g.canonical for g in unmapped.variants] == ["Mobile Phones"]
    (tmp_path / "map.yaml").write_text("Mobile Phone: Mobile Phones\n")
    mapped = load_catalog(csv_config(path, label_map=str(tmp_path / "map.yaml")))
    assert sorted(mapped.labels.unique()) == ["CPUs", "Mobile Phones"] and not mapped.variants


def weight_rows(n: int = 30, bad_at: int = 4) -> list[dict]:
    return [
        {"name": f"thing {i}", "cat": "ab"[i % 2], "weight": "x" if i == bad_at else i}
        for i in range(n)
    ]


@pytest.mark.parametrize("gz", [False, True])
def test_a_json_array_of_objects_is_a_catalog_too(tmp_path: Path, gz: bool) -> None:
    elements: list = weight_rows(bad_at=-1)
    elements.insert(2, 7)  # not an object: skipped and counted, as a malformed line is
    data = json.dumps(elements, indent=1).encode()
    path = tmp_path / ("c.json.gz" if gz else "c.json")
    path.write_bytes(gzip.compress(data) if gz else b"\n \n" + data)
    catalog = load_catalog(csv_config(path))
    assert len(catalog.frame) == 30 and catalog.counts["malformed_lines"] == 1
    assert load_catalog(csv_config(path, max_rows=20)).counts["rows_read"] == 20


def test_a_bad_number_in_a_json_array_is_named_by_its_record(tmp_path: Path) -> None:
    elements: list = weight_rows()
    elements.insert(2, None)  # 'x' is then the array's 6th element
    path = tmp_path / "c.json"
    path.write_text(json.dumps(elements))  # one line: a line number would not tell which
    with pytest.raises(DataError, match=r"c\.json, record 6 of the array, column 'weight': 'x'"):
        load_catalog(csv_config(path, max_bad_numeric_share=0.01))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{\n  "name": "thing",\n  "cat": "a"\n}\n', r"one JSON object \(keys: name, cat\)"),
        ("42\n", "one JSON number, 42, not a list of products"),
        ('"products"', 'one JSON string, "products"'),
        (json.dumps({"items": weight_rows()}), "'items' is a list of 30 objects"),
        ("[1, 2, 3]", "record 1 of the array: not a JSON object"),
        ('[{"name": "a"},\n {"name": }]', r"line 2, column 11: not valid JSON"),
    ],
)
def test_a_json_file_of_neither_shape_is_refused_clearly(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "c.json"
    path.write_text(content)
    with pytest.raises(DataError, match=message) as raised:
        load_catalog(csv_config(path))
    assert "array of objects" in str(raised.value) and raised.value.exit_code == 3


def tab_rows(separator: str) -> list[str]:
    rows = [separator.join(["name", "cat", "weight"])]
    return rows + [separator.join([f"thing, {i}", "ab"[i % 2], str(i)]) for i in range(10)]


@pytest.mark.parametrize(
    ("name", "given", "separator"),
    [
        ("c.tsv", None, "\t"),  # a .tsv file is tab separated unless told otherwise
        ("c.tsv.gz", None, "\t"),
        ("c.csv", "\\t", "\t"),  # as typed in a shell: --csv-separator '\t'
        ("c.csv", "\t", "\t"),
        ("c.csv", "\\x1f", "\x1f"),
        ("c.csv", "§", "§"),  # two bytes in UTF-8: not for pandas' C engine, read all the same
        ("c.tsv", ";", ";"),
    ],
)
def test_csv_separators_escapes_and_the_tsv_default(
    tmp_path: Path, name: str, given: str | None, separator: str
) -> None:
    data = ("\n".join(tab_rows(separator)) + "\n").encode()
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ParserWarning: no fallback to pandas' Python engine
        frame = read_catalog_file(path, csv_config(path, csv_separator=given))
    assert list(frame.columns) == ["name", "cat", "weight"]
    assert frame["name"].iloc[3] == "thing, 3"


@pytest.mark.parametrize("given", ["", "ab", "\\t\\t", "\n", '"'])
def test_a_separator_that_is_not_one_usable_character_is_refused(given: str) -> None:
    with pytest.raises(ValidationError, match="csv_separator"):
        TrainConfig(csv_separator=given)


def test_a_bad_number_is_named_by_its_line_whatever_the_extension(tmp_path: Path) -> None:
    rows = ["name,cat,weight"] + [
        f"thing {i},{'ab'[i % 2]},{'heavy' if i == 4 else i}" for i in range(10)
    ]
    path = write_csv(tmp_path / "c.txt", rows)
    with pytest.raises(DataError, match=r"c\.txt, line 6, column 'weight': 'heavy'"):
        load_catalog(csv_config(path, format="csv"))


@pytest.mark.parametrize("extra_cells", [False, True])
def test_a_tab_separated_csv_read_with_commas_says_which_separator_to_pass(
    tmp_path: Path, extra_cells: bool
) -> None:
    rows = ["name\tcat\tweight", "chess game\tgames\t1", "kettle\tkitchen\t2"]
    path = write_csv(tmp_path / "c.csv", rows + (["a, b, c\tx\t3"] if extra_cells else []))
    with pytest.raises(DataError, match=r"tab separated: pass --csv-separator '\\t'") as raised:
        load_catalog(csv_config(path))
    assert raised.value.exit_code == 3


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


def test_column_options_match_a_decomposed_header_and_keep_its_spelling(tmp_path: Path) -> None:
    """A header may write "ö" decomposed, an option typed on a keyboard composes it: they name
    one column (as serving and batch scoring compare names), and the model keeps the catalog's
    spelling as its field name."""
    names = ["Bezeichnung Größe", "Kategorie ä", "Artikel-Nr ü", "Gewicht (ö)", "Marke é"]
    rows = [",".join(nfd(name) for name in names)]
    rows += [f"thing {i},{'ab'[i % 2]},s{i},{i},brand {i % 3}" for i in range(12)]
    config = csv_config(
        write_csv(tmp_path / "c.csv", rows),
        text_columns=[names[0]],
        label_column=names[1],
        id_column=names[2],
        numeric_columns=[names[3]],
        token_columns=[names[4]],
        char_ngram_columns=[names[0]],
    )
    catalog = load_catalog(config)
    assert catalog.frame[nfd(names[3])].dtype == "float64"
    assert len(catalog.frame) == 12 and set(catalog.labels) == {"a", "b"}
    assert config.text_columns == config.char_ngram_columns == [nfd(names[0])]
    assert (config.label_column, config.id_column) == (nfd(names[1]), nfd(names[2]))
    assert config.numeric_columns == [nfd(names[3])] and config.token_columns == [nfd(names[4])]


def test_two_columns_equal_after_nfc_are_refused_naming_both(tmp_path: Path) -> None:
    rows = [f"Größe,{nfd('Größe')},cat", "a,b,x", "c,d,y"]
    with pytest.raises(DataError, match="two Unicode normal forms") as raised:
        load_catalog(csv_config(write_csv(tmp_path / "c.csv", rows), text_columns=["Größe"]))
    assert raised.value.exit_code == 3
    assert ascii("Größe") in str(raised.value) and ascii(nfd("Größe")) in str(raised.value)
