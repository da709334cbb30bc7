"""Catalog files as raw tables: JSON (lines, or one array of objects), CSV and Parquet.

Each reader turns a file into a DataFrame, or stops with one `DataError` naming the file and the
line (or array record) it could not read. The batch scorer reads the same formats in chunks
(`batch/readers.py`) with the pieces shared here: format detection, CSV separators and options,
and the JSON array reader.
"""

from __future__ import annotations

import gzip
import json
import logging
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from training.config import TrainConfig
from training.errors import DataError

log = logging.getLogger(__name__)

MAX_BAD_LINE_SHARE = 0.1
FORMATS = {
    ".jsonl": "jsonl",
    ".json": "jsonl",  # JSON lines or one array of objects: the reader looks at the first character
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
TSV_SUFFIX = ".tsv"
JSON_SHAPES = "a JSON catalog is one array of objects ([{...}, {...}]) or one object per line"
JSON_TYPES = {str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}
DESCRIBED_VALUE_LIMIT = 64 << 20  # a malformed file larger than this is not parsed whole to say why


def catalog_suffix(path: Path) -> str:
    """The extension that names the format: the last one other than .gz, lower case."""
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    return suffixes[-1] if suffixes else ""


def detect_format(path: Path, requested: str) -> str:
    if requested != "auto":
        return requested
    kind = catalog_suffix(path)
    if kind not in FORMATS:
        raise DataError(
            f"{path}: cannot tell the format from the extension {kind or '(none)'}; "
            "pass --format jsonl|csv|parquet"
        )
    return FORMATS[kind]


def open_text(path: Path) -> IO[str]:
    """The file as text, gunzipped when its content is gzip; a UTF-8 byte order mark is dropped."""
    with path.open("rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    if gzipped:
        return gzip.open(path, "rt", encoding="utf-8-sig", errors="replace")
    return path.open("r", encoding="utf-8-sig", errors="replace")


def first_character(path: Path) -> str:
    """The first character that is not white space ('' for a blank file)."""
    with open_text(path) as handle:
        while block := handle.read(4096):
            if stripped := block.lstrip():
                return stripped[0]
    return ""


def read_json(path: Path, max_rows: int | None = None) -> pd.DataFrame:
    """A JSON file of one array of objects ('[' first) or of JSON lines (anything else)."""
    try:
        if first_character(path) == "[":
            return read_json_array(path, max_rows)
        return read_json_lines(path, max_rows)
    except (OSError, EOFError) as error:
        raise DataError(f"{path}: cannot read the file ({error})") from None


def read_json_lines(path: Path, max_rows: int | None = None) -> pd.DataFrame:
    """JSON lines (Amazon 2018 metadata style), plain or gzip; bad lines are skipped and counted."""
    records: list[dict[str, Any]] = []
    numbers: list[int] = []  # the line each record came from
    bad: list[int] = []
    with open_text(path) as handle:
        for number, record in numbered_json_objects(handle):
            if record is None:
                bad.append(number)
                continue
            records.append(record)
            numbers.append(number)
            if max_rows and len(records) >= max_rows:
                break
    total = len(records) + len(bad)
    if bad and (not records or len(bad) > MAX_BAD_LINE_SHARE * total):
        raise DataError(describe_json_value(path) or mostly_malformed_lines(path, bad, total))
    if bad:
        log.warning("%s: skipped %d malformed line(s), first at line %d", path, len(bad), bad[0])
    if max_rows != 1:
        check_not_wrapped(path, records)
    frame = pd.DataFrame.from_records(records)
    frame.attrs["malformed_lines"] = len(bad)
    frame.attrs["line_numbers"] = np.array(numbers)  # an array: pandas copies attrs often
    return frame


def numbered_json_objects(lines: Iterable[str]) -> Iterator[tuple[int, dict[str, Any] | None]]:
    """(line number, the line's JSON object, or None for a malformed line) of each non-blank
    line."""
    for number, line in enumerate(lines, start=1):
        if line.strip():
            yield number, json_object(line)


def json_object(line: str) -> dict[str, Any] | None:
    """The JSON object on a line, or None when the line holds anything else."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def mostly_malformed_lines(path: Path, bad: list[int], total: int) -> str:
    return (
        f"{path}, line {bad[0]}: not a JSON object ({len(bad)} of {total} lines are "
        f"malformed); is this a JSON-lines file? ({JSON_SHAPES})"
    )


def describe_json_value(path: Path) -> str | None:
    """Why a file that is not JSON lines is refused, when it holds one JSON value (say a
    pretty-printed object, or a number); None when it is not JSON at all, or too large to parse."""
    if path.stat().st_size > DESCRIBED_VALUE_LIMIT:
        return None
    try:
        with open_text(path) as handle:
            value = json.load(handle)
    except ValueError:
        return None
    if isinstance(value, dict):
        kind = f"one JSON object (keys: {', '.join(list(value)[:10])})"
    else:
        kind = f"one JSON {JSON_TYPES.get(type(value), 'value')}, {json.dumps(value)[:40]}"
    return f"{path}: the file holds {kind}, not a list of products; {JSON_SHAPES}"


def check_not_wrapped(path: Path, records: list[dict[str, Any]]) -> None:
    """Refuse a lone object whose products are in a list under one key ({"products": [...]}):
    read as one row, it would fail later with a puzzling 'label column not found'."""
    if len(records) != 1:
        return
    for key, value in records[0].items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            raise DataError(
                f"{path}: the file holds one JSON object whose '{key}' is a list of "
                f"{len(value)} objects; {JSON_SHAPES}: extract the list, e.g. "
                f"jq '.[\"{key}\"]' {path.name} > products.json"
            )


def read_json_array(path: Path, max_rows: int | None = None) -> pd.DataFrame:
    """A file holding one JSON array of objects; elements that are not objects are skipped and
    counted. Rows are named by their record's 1-based position in the array."""
    records, positions, bad = json_array_records(path)
    if max_rows:
        records, positions = records[:max_rows], positions[:max_rows]
    frame = pd.DataFrame.from_records(records)
    frame.attrs["malformed_lines"] = len(bad)
    frame.attrs["record_numbers"] = np.array(positions)
    return frame


def json_array_records(path: Path) -> tuple[list[dict[str, Any]], list[int], list[int]]:
    """The objects of a JSON array file, their positions in it (from 1), and the positions of
    the elements that are not objects; `DataError` for invalid JSON or too many such elements."""
    try:
        with open_text(path) as handle:
            elements = json.load(handle)
    except json.JSONDecodeError as error:
        raise DataError(
            f"{path}, line {error.lineno}, column {error.colno}: not valid JSON ({error.msg}); "
            f"the file starts with '[' and is read as one JSON array ({JSON_SHAPES})"
        ) from None
    records = [(n, e) for n, e in enumerate(elements, start=1) if isinstance(e, dict)]
    bad = [n for n, e in enumerate(elements, start=1) if not isinstance(e, dict)]
    if bad and (not records or len(bad) > MAX_BAD_LINE_SHARE * len(elements)):
        raise DataError(
            f"{path}, record {bad[0]} of the array: not a JSON object ({len(bad)} of "
            f"{len(elements)} records are not); {JSON_SHAPES}"
        )
    if bad:
        log.warning("%s: skipped %d array element(s) that are not objects", path, len(bad))
    return [e for _, e in records], [n for n, _ in records], bad


# How every CSV is read: cells as text (numbers are parsed per column later), blanks kept as "",
# undecodable bytes replaced, spaces after separators dropped.
CSV_OPTIONS: dict[str, Any] = {
    "dtype": str,
    "keep_default_na": False,
    "encoding": "utf-8",
    "encoding_errors": "replace",
    "skipinitialspace": True,
}


def csv_separator_for(path: Path, separator: str | None) -> str:
    """The separator given (already one character, see
    `training.config_values.parse_csv_separator`), else tab for a .tsv file and comma for any
    other."""
    if separator is not None:
        return separator
    return "\t" if catalog_suffix(path) == TSV_SUFFIX else ","


def csv_read_options(separator: str) -> dict[str, Any]:
    """pandas.read_csv's options for one separator character. pandas' fast C engine takes a
    separator of one byte; a character that UTF-8 writes in more (`§`) needs the Python engine."""
    engine = "c" if len(separator.encode("utf-8")) == 1 else "python"
    return {"sep": separator, "engine": engine, **CSV_OPTIONS}


def read_csv(path: Path, separator: str, max_rows: int | None = None) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, nrows=max_rows, **csv_read_options(separator))
    except pd.errors.ParserError as error:
        raise not_csv(path, separator, error) from None
    except (OSError, UnicodeError, pd.errors.EmptyDataError) as error:
        raise DataError(f"{path}: cannot read the file ({error})") from None
    check_split(path, separator, frame.columns)
    check_no_row_index(path, separator, frame)
    return frame


def check_no_row_index(path: Path, separator: str, frame: pd.DataFrame) -> None:
    """pandas takes a first row with more cells than the header names for a row index and shifts
    every column by the difference; such a file is refused as the later rows' extra cells are."""
    if isinstance(frame.index, pd.RangeIndex):
        return
    extra, named = frame.index.nlevels, len(frame.columns)
    raise DataError(
        f"{path}: not a valid CSV file: row 1 (the first after the header) has {named + extra} "
        f"cells where the header has {named}; quote a cell that holds {separator!r}, or name "
        f"every column in the header{separator_hint(path, separator)}"
    )


def not_csv(path: Path, separator: str, error: Exception) -> DataError:
    """pandas' parser error, with the separator to pass when the header shows another."""
    problem = str(error).strip().removeprefix("Error tokenizing data. ")
    return DataError(f"{path}: not a valid CSV file: {problem}{separator_hint(path, separator)}")


def check_split(path: Path, separator: str, columns: Sequence[Any]) -> None:
    """A file read as one column whose header shows another usual separator is refused."""
    if len(columns) == 1 and (hint := separator_hint(path, separator)):
        raise DataError(f"{path}: one column, {str(columns[0])!r}{hint}")


USUAL_SEPARATORS = {
    "\t": ("tab", "\\t"),
    ";": ("semicolon", ";"),
    "|": ("bar", "|"),
    ",": ("comma", ","),
}


def separator_hint(path: Path, separator: str) -> str:
    """When the header holds no `separator` but another usual one: which option to pass."""
    try:
        with open_text(path) as handle:
            header = handle.readline()
    except (OSError, EOFError):
        return ""
    if separator in header:
        return ""
    for character, (name, typed) in USUAL_SEPARATORS.items():
        if character in header:
            return f"; its header is {name} separated: pass --csv-separator '{typed}'"
    return ""


def read_parquet(path: Path, max_rows: int | None = None) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(path)
    except Exception as error:  # pyarrow raises many unrelated types for a bad file
        raise DataError(f"{path}: not a readable Parquet file ({error})") from None
    return frame.head(max_rows) if max_rows else frame


def check_catalog_file(path: Path) -> None:
    """A `DataError` (exit 3) unless `path` is a file this process can read; a folder (such as
    Spark's Parquet output, which product-classify reads) is named as one."""
    if path.is_dir():
        raise DataError(
            f"{path} is a folder, not a catalog file: pass --data with one file (.jsonl, .json, "
            ".csv, .tsv, optionally .gz, or .parquet); training reads one file, not a folder of "
            "Parquet parts"
        )
    if not path.exists():
        raise DataError(f"{path}: no such file; pass --data with a catalog file")
    if not path.is_file():
        raise DataError(f"{path} is not a regular file; pass --data with a catalog file")
    try:
        path.open("rb").close()
    except OSError as error:
        raise DataError(f"{path}: cannot read the file ({error.strerror})") from None


def read_catalog_file(path: Path, config: TrainConfig) -> pd.DataFrame:
    """The raw table in `path`, with column names stripped of stray spaces and distinct after
    Unicode NFC normalisation."""
    check_catalog_file(path)
    kind = detect_format(path, config.format)
    if kind in ("amazon", "jsonl"):
        frame = read_json(path, config.max_rows)
    elif kind == "csv":
        separator = csv_separator_for(path, config.csv_separator)
        frame = read_csv(path, separator, config.max_rows)
    else:
        frame = read_parquet(path, config.max_rows)
    frame.columns = [str(column).strip() for column in frame.columns]
    check_distinct_columns(path, list(frame.columns))
    frame.attrs["format"] = kind  # how its rows are named in messages (`row_name`)
    if frame.empty:
        raise DataError(f"{path}: the file holds no rows")
    return frame


def check_distinct_columns(path: Path, columns: list[str]) -> None:
    """Refuse two columns whose names are one text in two Unicode normal forms ("Größe" with a
    composed and with a decomposed "ö"): column options, serving and batch scoring all compare
    names after NFC normalisation, so neither could be told apart from the other."""
    seen: dict[str, str] = {}
    for column in columns:
        first = seen.setdefault(unicodedata.normalize("NFC", column), column)
        if first != column:
            raise DataError(
                f"{path}: columns {first!r} ({first!a}) and {column!r} ({column!a}) "
                "are one name written in two Unicode normal forms (composed and decomposed "
                "characters); rename or drop one of them"
            )


def row_name(frame: pd.DataFrame, index: int) -> str:
    """Where row `index` of a table read here is in its file, as a person counts lines."""
    lines = frame.attrs.get("line_numbers")
    if lines is not None:  # JSON lines: blank and malformed lines were skipped
        return f"line {int(lines[index])}"
    records = frame.attrs.get("record_numbers")
    if records is not None:  # a JSON array: elements that are not objects were skipped
        return f"record {int(records[index])} of the array"
    if frame.attrs.get("format") == "csv":
        # The header is line 1; quoted cells of the rows before may span several lines.
        before = frame.iloc[:index].map(lambda v: v.count("\n") if isinstance(v, str) else 0)
        return f"line {index + 2 + int(before.to_numpy().sum())}"
    return f"row {index + 1}"
