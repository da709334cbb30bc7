"""Catalogs read in chunks, so that memory follows the chunk size and not the catalog size.

Formats and their detection are training's (`training.catalog_files`); these readers yield
DataFrames of at most `chunk_size` rows with the same values training's readers give: JSON lines
(plain or gzip) as records, CSV as strings (tab-separated for .tsv unless a separator is given),
Parquet (a file or a folder of files) batch by batch. A JSON file that is one array of objects
('[' first) cannot be read piece by piece: it is parsed whole, then yielded in chunks.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from training.catalog_files import (
    JSON_SHAPES,
    MAX_BAD_LINE_SHARE,
    check_no_row_index,
    check_split,
    csv_read_options,
    csv_separator_for,
    describe_json_value,
    detect_format,
    first_character,
    json_array_records,
    not_csv,
    numbered_json_objects,
    open_text,
)
from training.errors import DataError

log = logging.getLogger(__name__)


@dataclass
class ReadCounts:
    """What the reader saw: rows yielded and malformed lines skipped."""

    rows: int = 0
    malformed_lines: int = 0
    first_malformed: int = 0


def catalog_format(path: Path, requested: str) -> str:
    """jsonl, csv or parquet: a folder is read as Parquet files."""
    if path.is_dir():
        return "parquet"
    if not path.is_file():
        raise DataError(f"{path}: no such file or folder; pass --data with a catalog")
    kind = "jsonl" if (found := detect_format(path, requested)) == "amazon" else found
    if kind != "parquet" and _starts_with(path, PARQUET_MAGIC):
        what = "CSV" if kind == "csv" else "JSON"
        raise DataError(
            f"{path}: read as {what}, but it starts as a Parquet file does (PAR1): "
            "pass --format parquet"
        )
    return kind


PARQUET_MAGIC = b"PAR1"


def _starts_with(path: Path, magic: bytes) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(len(magic)) == magic
    except OSError:  # unreadable: the reader says so with its own message
        return False


def parquet_files(path: Path) -> list[Path]:
    """The .parquet files of a folder, subfolders included, in the order of their paths;
    files and folders whose names start with `_` or `.` (`_temporary`, `.hidden`) are left out,
    as Spark leaves them out."""
    if path.is_file():
        return [path]
    files = sorted(
        p
        for p in path.rglob("*.parquet")
        if not any(part.startswith(("_", ".")) for part in p.relative_to(path).parts)
    )
    if not files:
        raise DataError(f"{path}: the folder holds no .parquet files")
    return files


def count_rows(path: Path, kind: str) -> int | None:
    """The row count when it is cheap to know (Parquet footers), else None."""
    if kind != "parquet":
        return None
    import pyarrow.parquet as pq

    try:
        return sum(pq.ParquetFile(p).metadata.num_rows for p in parquet_files(path))
    except Exception:  # unreadable: the reader reports it with its own message
        return None


def read_chunks(
    path: Path, kind: str, chunk_size: int, counts: ReadCounts, separator: str | None = None
) -> Iterator[pd.DataFrame]:
    """The catalog as DataFrames of at most `chunk_size` rows, column names stripped (CSV:
    `separator`, or by extension: tab for .tsv, else comma)."""
    readers = {"jsonl": _json_chunks, "csv": _csv_chunks, "parquet": _parquet_chunks}
    chunks: Iterator[pd.DataFrame] = readers[kind](path, chunk_size, counts, separator)
    for chunk in chunks:
        if len(chunk) == 0:  # a CSV header alone: no rows to score (nor to write, typed)
            continue
        chunk.columns = [str(column).strip() for column in chunk.columns]
        counts.rows += len(chunk)
        yield chunk
    if counts.rows == 0:
        raise DataError(f"{path}: the catalog holds no rows")


def _json_chunks(
    path: Path, chunk_size: int, counts: ReadCounts, _separator: str | None
) -> Iterator[pd.DataFrame]:
    """JSON lines, or one array of objects ('[' first, as training decides)."""
    try:
        array = first_character(path) == "["
    except (OSError, EOFError) as error:
        raise DataError(f"{path}: cannot read the file ({error})") from None
    if array:
        yield from _json_array_chunks(path, chunk_size, counts)
    else:
        yield from _json_line_chunks(path, chunk_size, counts)


def _json_array_chunks(path: Path, chunk_size: int, counts: ReadCounts) -> Iterator[pd.DataFrame]:
    try:
        records, _positions, bad = json_array_records(path)
    except (OSError, EOFError) as error:
        raise DataError(f"{path}: cannot read the file ({error})") from None
    counts.malformed_lines, counts.first_malformed = len(bad), bad[0] if bad else 0
    for start in range(0, len(records), chunk_size):
        yield pd.DataFrame.from_records(records[start : start + chunk_size])


def _json_line_chunks(path: Path, chunk_size: int, counts: ReadCounts) -> Iterator[pd.DataFrame]:
    records: list[dict[str, Any]] = []
    try:
        with open_text(path) as handle:
            for number, record in numbered_json_objects(handle):
                if record is None:
                    _malformed(path, counts, number)
                    continue
                records.append(record)
                if len(records) >= chunk_size:
                    yield pd.DataFrame.from_records(records)
                    records = []
    except (OSError, EOFError) as error:
        raise DataError(f"{path}: cannot read the file ({error})") from None
    if records:
        yield pd.DataFrame.from_records(records)
    elif counts.rows == 0 and counts.malformed_lines:  # too few lines for `_malformed` to judge
        raise DataError(describe_json_value(path) or _mostly_malformed(path, counts, number))


def _malformed(path: Path, counts: ReadCounts, number: int) -> None:
    """Count a bad line; stop once bad lines pass training's share (after a few to judge by)."""
    counts.malformed_lines += 1
    counts.first_malformed = counts.first_malformed or number
    seen = counts.rows + counts.malformed_lines
    if counts.malformed_lines >= 10 and counts.malformed_lines > MAX_BAD_LINE_SHARE * seen:
        raise DataError(describe_json_value(path) or _mostly_malformed(path, counts, number))


def _mostly_malformed(path: Path, counts: ReadCounts, number: int) -> str:
    return (
        f"{path}, line {counts.first_malformed}: not a JSON object ({counts.malformed_lines} "
        f"of the first {number} lines are malformed); is this a JSON-lines file? ({JSON_SHAPES})"
    )


def _csv_chunks(
    path: Path, chunk_size: int, _counts: ReadCounts, separator: str | None
) -> Iterator[pd.DataFrame]:
    separator = csv_separator_for(path, separator)
    options = csv_read_options(separator)
    try:
        reader = pd.read_csv(path, chunksize=chunk_size, **options)
        with reader:
            for number, chunk in enumerate(reader):
                if number == 0:  # every chunk has the header's columns
                    check_split(path, separator, chunk.columns)
                    check_no_row_index(path, separator, chunk)
                yield chunk
    except pd.errors.ParserError as error:
        raise not_csv(path, separator, error) from None
    except pd.errors.EmptyDataError:  # not even a header
        raise DataError(f"{path}: the catalog holds no rows") from None
    except (OSError, UnicodeError) as error:
        raise DataError(f"{path}: cannot read the file ({error})") from None


def _parquet_chunks(
    path: Path, chunk_size: int, _counts: ReadCounts, _separator: str | None
) -> Iterator[pd.DataFrame]:
    import pyarrow.parquet as pq

    for file in parquet_files(path):
        try:
            batches = pq.ParquetFile(file).iter_batches(batch_size=chunk_size)
            for batch in batches:
                yield batch.to_pandas()
        except DataError:
            raise
        except Exception as error:  # pyarrow raises many unrelated types for a bad file
            raise DataError(f"{file}: not a readable Parquet file ({error})") from None
