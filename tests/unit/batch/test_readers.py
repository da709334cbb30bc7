from __future__ import annotations

import gzip
import json
import warnings
from pathlib import Path

import pandas as pd
import pytest

from batch.readers import ReadCounts, catalog_format, count_rows, parquet_files, read_chunks
from training.errors import DataError

RECORDS = [
    {"asin": f"A{i}", "title": f"product {i}", "category": ["x", "y"], "details": {"k": i}}
    for i in range(25)
]


def write_jsonl(path: Path, lines: list[str]) -> Path:
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return path


def read_all(path: Path, chunk_size: int, **kwargs) -> tuple[list[pd.DataFrame], ReadCounts]:
    counts = ReadCounts()
    kind = catalog_format(path, "auto")
    return list(read_chunks(path, kind, chunk_size, counts, **kwargs)), counts


def test_json_lines_come_in_chunks_with_their_values(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "c.jsonl.gz", [json.dumps(r) for r in RECORDS])
    chunks, counts = read_all(path, 10)
    assert [len(c) for c in chunks] == [10, 10, 5]
    assert counts.rows == 25
    first = chunks[0].iloc[3]
    assert (
        first["asin"] == "A3" and first["category"] == ["x", "y"] and first["details"] == {"k": 3}
    )


def test_a_few_malformed_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    lines = [json.dumps(r) for r in RECORDS]
    lines.insert(4, "{not json")
    lines.insert(9, "[1, 2]")
    chunks, counts = read_all(write_jsonl(tmp_path / "c.jsonl.gz", lines), 100)
    assert sum(len(c) for c in chunks) == 25
    assert (counts.malformed_lines, counts.first_malformed) == (2, 5)


def test_a_file_that_is_not_json_lines_stops_with_its_line(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "c.jsonl.gz", ["plain text"] * 30)
    with pytest.raises(DataError, match="line 1: not a JSON object"):
        read_all(path, 10)


def test_csv_chunks_are_strings(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    pd.DataFrame({"asin": ["001", "002", "003"], "title": ["a", "", "c"]}).to_csv(path, index=False)
    chunks, _ = read_all(path, 2)
    assert [len(c) for c in chunks] == [2, 1]
    assert chunks[0]["asin"].tolist() == ["001", "002"] and chunks[0]["title"].tolist() == ["a", ""]


def test_parquet_files_and_folders_are_read_batch_by_batch(tmp_path: Path) -> None:
    folder = tmp_path / "catalog"
    folder.mkdir()
    frame = pd.DataFrame({"asin": [f"A{i}" for i in range(30)], "title": ["t"] * 30})
    frame.iloc[:20].to_parquet(folder / "part-0.parquet")
    frame.iloc[20:].to_parquet(folder / "part-1.parquet")
    (folder / "_SUCCESS").write_text("")
    assert catalog_format(folder, "auto") == "parquet"
    assert count_rows(folder, "parquet") == 30
    chunks, _counts = read_all(folder, 8)
    assert [len(c) for c in chunks] == [8, 8, 4, 8, 2]
    assert pd.concat(chunks)["asin"].tolist() == frame["asin"].tolist()


def test_an_empty_catalog_and_a_missing_one_are_data_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no rows"):
        read_all(write_jsonl(tmp_path / "empty.jsonl.gz", [""]), 10)
    with pytest.raises(DataError, match="no such file"):
        catalog_format(tmp_path / "missing.jsonl", "auto")
    with pytest.raises(DataError, match="not a readable Parquet"):
        (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
        read_all(tmp_path / "bad.parquet", 10)


def test_a_json_array_of_objects_comes_in_chunks_too(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps([*RECORDS[:3], "not an object", *RECORDS[3:]], indent=2))
    chunks, counts = read_all(path, 10)
    assert [len(c) for c in chunks] == [10, 10, 5]
    assert (counts.malformed_lines, counts.first_malformed) == (1, 4)
    assert chunks[0].iloc[3]["details"] == {"k": 3}


@pytest.mark.parametrize(
    ("content", "message"),
    [("42", "one JSON number"), ('{\n"asin": "A1"\n}', "one JSON object"), ("[1, 2]", "record 1")],
)
def test_a_json_file_of_neither_shape_is_a_data_error(
    tmp_path: Path, content: str, message: str
) -> None:
    (tmp_path / "c.json").write_text(content)
    with pytest.raises(DataError, match=message):
        read_all(tmp_path / "c.json", 10)


@pytest.mark.parametrize(("name", "separator"), [("c.tsv", None), ("c.csv", "\t"), ("c.csv", "§")])
def test_csv_separators_as_training_reads_them(
    tmp_path: Path, name: str, separator: str | None
) -> None:
    rows = [["asin", "title"], ["001", "a, b"], ["002", "c"]]
    text = "".join((separator or "\t").join(row) + "\n" for row in rows)
    (tmp_path / name).write_text(text, encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pandas' C engine where it can, no fallback warning
        chunks, _ = read_all(tmp_path / name, 10, separator=separator)
    assert chunks[0]["title"].tolist() == ["a, b", "c"]


def test_a_parquet_folder_leaves_out_hidden_and_underscore_files_and_folders(
    tmp_path: Path,
) -> None:
    """As Spark reads such a folder: a leftover `_temporary/` or `.hidden/` is not catalog."""
    names = ["b.parquet", "sub/a.parquet", "_staging/z.parquet", ".hidden/y.parquet"]
    names += ["sub/_part.parquet", "sub/.x.parquet", "part=7/p.parquet"]
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame({"title": [name]}).to_parquet(tmp_path / name)
    assert [p.relative_to(tmp_path).as_posix() for p in parquet_files(tmp_path)] == [
        "b.parquet",
        "part=7/p.parquet",
        "sub/a.parquet",
    ]


def test_a_first_row_longer_than_the_header_is_refused_as_training_refuses_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.csv"
    path.write_text("asin,title\nA1,chess set,games\nA2,lamp\nA3,kettle\n")
    with pytest.raises(DataError, match=r"row 1 \(the first after the header\) has 3 cells where"):
        read_all(path, chunk_size=2)


@pytest.mark.parametrize("extra_cells", [False, True])
def test_a_tab_separated_csv_read_with_commas_says_which_separator_to_pass(
    tmp_path: Path, extra_cells: bool
) -> None:
    rows = ["id\ttitle", "1\tchess game", "2\tkettle"] + (["3\ta, b, c\tx"] if extra_cells else [])
    path = tmp_path / "c.csv"
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"tab separated: pass --csv-separator '\\t'"):
        read_all(path, chunk_size=10)


@pytest.mark.parametrize(("requested", "read_as"), [("csv", "CSV"), ("jsonl", "JSON")])
def test_a_parquet_file_read_as_text_says_to_pass_format_parquet(
    tmp_path: Path, requested: str, read_as: str
) -> None:
    """`--format csv` on a Parquet file said "its header is tab separated: pass
    --csv-separator '\\t'"."""
    path = tmp_path / "catalog.parquet"
    pd.DataFrame(RECORDS)[["asin", "title"]].to_parquet(path)
    with pytest.raises(DataError) as refused:
        catalog_format(path, requested)
    assert str(refused.value) == (
        f"{path}: read as {read_as}, but it starts as a Parquet file does (PAR1): "
        "pass --format parquet"
    )


@pytest.mark.parametrize("content", ["", "\n\n"])
def test_an_empty_csv_file_holds_no_rows(tmp_path: Path, content: str) -> None:
    """As a header alone does (it said "cannot read the file (No columns to parse from file)",
    and the Spark engine now says the same as the local one)."""
    path = tmp_path / "catalog.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=r"catalog.csv: the catalog holds no rows$"):
        read_all(path, 10)


def test_a_header_alone_yields_no_chunk_to_score(tmp_path: Path) -> None:
    """Its empty chunk was scored and written: a Parquet output failed on its list columns
    (ArrowNotImplementedError, exit 1) instead of "the catalog holds no rows" (exit 3)."""
    path = tmp_path / "catalog.csv"
    path.write_text("asin,title\n")
    counts = ReadCounts()
    chunks = read_chunks(path, "csv", 10, counts)
    with pytest.raises(DataError, match=r"catalog.csv: the catalog holds no rows$"):
        next(chunks)
