"""Output files written atomically: rows go to a hidden temporary name beside the output, which
is renamed to the final name only after the last row is written. A failed or interrupted run
removes the temporary file and leaves nothing under the final name; an output that cannot be
written (an existing one without --overwrite, a folder one cannot write in) is found before any
work starts."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Protocol

import pandas as pd

from batch.publish import publishing
from batch.scoring import OUTPUT_SCHEMA
from training.errors import ConfigError


class ChunkWriter(Protocol):
    def write(self, frame: pd.DataFrame) -> None: ...

    def close(self) -> None: ...


def check_output(final: Path, overwrite: bool) -> None:
    """Stop before any work when the output exists (without --overwrite) or cannot be made."""
    if final.exists() and not overwrite:
        raise ConfigError(f"--output {final}: already exists; pass --overwrite to replace it")
    folder = _nearest_existing(final.parent)
    if not folder.is_dir():
        raise ConfigError(f"--output {final}: {folder} is not a folder")
    check_writable(final, folder)


def _nearest_existing(folder: Path) -> Path:
    """`folder`, or the closest of its parents that exists (the run makes the rest)."""
    for candidate in (folder, *folder.parents):
        if os.path.lexists(candidate):
            return candidate
    return folder


def check_writable(final: Path, folder: Path) -> None:
    """Create and remove a file where the output will go: permissions alone do not tell (root
    may not write in /sys, nor anyone on a read-only mount)."""
    try:
        handle, probe = tempfile.mkstemp(prefix=f".{final.name}.probe-", dir=folder)
    except OSError as error:
        reason = (error.strerror or str(error)).lower()
        raise ConfigError(f"--output {final}: cannot write in {folder} ({reason})") from None
    os.close(handle)
    Path(probe).unlink()


def temporary_name(final: Path) -> Path:
    return final.with_name(f".{final.name}.partial-{os.getpid()}")


@contextmanager
def atomic_path(final: Path, overwrite: bool) -> Iterator[Path]:
    """A temporary path to write to; renamed to `final` on success, removed on any failure."""
    check_output(final, overwrite)
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_name(final)
    remove(temporary)
    try:
        yield temporary
        with publishing(str(final)):
            replace(temporary, final)
    except BaseException:
        remove(temporary)
        raise


def replace(source: Path, final: Path) -> None:
    """Move `source` to `final`; an existing folder is moved aside first, then deleted."""
    if final.is_dir():
        aside = final.with_name(f".{final.name}.old-{os.getpid()}")
        final.rename(aside)
        source.rename(final)
        shutil.rmtree(aside, ignore_errors=True)
    else:
        source.replace(final)


def remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()


class ParquetChunks:
    def __init__(self, path: Path, schema: Any = OUTPUT_SCHEMA) -> None:
        import pyarrow.parquet as pq

        self._schema = schema
        self._writer = pq.ParquetWriter(path, schema)

    def write(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa

        table = pa.Table.from_pandas(frame, schema=self._schema, preserve_index=False)
        self._writer.write_table(table)

    def close(self) -> None:
        self._writer.close()


class CsvChunks:
    """CSV cannot hold lists: the top-k (and tag or path) columns are JSON arrays in their
    cells."""

    def __init__(self, path: Path, schema: Any = OUTPUT_SCHEMA) -> None:
        self._handle: IO[str] = path.open("w", encoding="utf-8", newline="")
        self._header = True

    def write(self, frame: pd.DataFrame) -> None:
        lists = [c for c in frame.columns if c.startswith(LIST_COLUMN_PREFIXES)]
        frame = frame.assign(**{column: frame[column].map(_json_list) for column in lists})
        frame.to_csv(self._handle, header=self._header, index=False)
        self._header = False

    def close(self) -> None:
        self._handle.close()


LIST_COLUMN_PREFIXES = ("top_", "tag", "path")


class JsonLinesChunks:
    def __init__(self, path: Path, schema: Any = OUTPUT_SCHEMA) -> None:
        self._handle: IO[str] = path.open("w", encoding="utf-8")

    def write(self, frame: pd.DataFrame) -> None:
        for record in frame.to_dict("records"):
            clean = {key: None if _is_nan(value) else value for key, value in record.items()}
            self._handle.write(json.dumps(clean, default=_plain, allow_nan=False) + "\n")

    def close(self) -> None:
        self._handle.close()


def _is_nan(value: Any) -> bool:
    """pandas gives missing values of a column (a row without text) as NaN."""
    return isinstance(value, float) and math.isnan(value)


def _json_list(values: Any) -> str:
    return json.dumps([_plain(v) for v in values])


def _plain(value: Any) -> Any:
    """numpy scalars and arrays as plain JSON values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


WRITERS: dict[str, type[ParquetChunks | CsvChunks | JsonLinesChunks]] = {
    "parquet": ParquetChunks,
    "csv": CsvChunks,
    "jsonl": JsonLinesChunks,
}


def open_writer(kind: str, path: Path, schema: Any = OUTPUT_SCHEMA) -> ChunkWriter:
    return WRITERS[kind](path, schema)
