"""The catalog as a Spark DataFrame, refused where the local engine refuses it.

Spark reads CSV leniently (PERMISSIVE): a row with more cells than the header loses the extra
ones, and a quote never closed swallows the rest of the file, both scored without a word where
pandas stops. A local CSV file is therefore read once by the local engine's own reader before
Spark reads it (the same verdicts and messages, with the line; pandas parses a few hundred MB a
second, against the model's thousands of rows a second). A remote one is read by Spark with a
corrupt-record column, in one counting pass; the rows Spark flags (cell count not the header's)
are parsed again with Python's `csv` module, as strictly as pandas: more cells than the header,
or an unclosed quote, stop the run, fewer cells are missing values. Spark cannot tell their line,
and misses a quote left open in a row's last cell, which swallows the rest of the file into it.
A catalog without rows (an empty file, a header alone, a Parquet file of 0 rows) stops the run
with the local engine's message.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from batch import readers
from batch.config import BatchConfig
from training.catalog_files import csv_separator_for, detect_format, first_character
from training.errors import DataError

CORRUPT = "_corrupt_record"
SHOWN_CHARS = 80  # of a refused row, in the message
CHECK_ROWS = 50_000  # rows per chunk as the local reader checks a file for the Spark engine


def spark_format(data: str, requested: str) -> str:
    """The catalog format of a local path or a remote URI (a name without extension: Parquet)."""
    if "://" not in data:
        return readers.catalog_format(Path(data), requested)
    if requested != "auto" or Path(data.rstrip("/")).suffix:
        kind = detect_format(Path(data.rstrip("/")), requested)
        return "jsonl" if kind == "amazon" else kind
    return "parquet"


def read_catalog(spark: Any, config: BatchConfig) -> tuple[Any, int]:
    """The catalog as a Spark DataFrame without malformed JSON lines, and how many there were;
    a `DataError` for a CSV file the local engine refuses and for a catalog without rows."""
    from pyspark.errors import AnalysisException

    kind = spark_format(config.data, config.format)
    try:
        if kind == "jsonl":
            frame, malformed = _read_json(spark, config.data)
        elif kind == "csv":
            frame, malformed = _read_csv(spark, config), 0
        else:  # every .parquet file under a folder, as the local engine reads it
            options = {"recursiveFileLookup": True, "pathGlobFilter": "*.parquet"}
            frame, malformed = spark.read.options(**options).parquet(config.data), 0
    except AnalysisException as error:
        raise DataError(
            f"{config.data}: Spark cannot read it: {str(error).splitlines()[0]}"
        ) from None
    if kind != "csv" and (not frame.columns or frame.isEmpty()):  # CSV: counted when read
        raise DataError(no_rows(config.data, malformed))
    return frame.toDF(*[c.strip() for c in frame.columns]), malformed


def no_rows(data: str, malformed: int = 0) -> str:
    skipped = f" ({malformed} malformed lines skipped)" if malformed else ""
    return f"{data}: the catalog holds no rows{skipped}"


def _read_json(spark: Any, data: str) -> tuple[Any, int]:
    from pyspark.sql import functions as F  # noqa: N812  Spark's own spelling

    reader = spark.read.option("columnNameOfCorruptRecord", CORRUPT)
    if "://" not in data and first_character(Path(data)) == "[":
        reader = reader.option("multiLine", True)  # one array of objects, read whole
    frame = reader.json(data)
    if CORRUPT not in frame.columns:
        return frame, 0
    frame = frame.cache()
    malformed = frame.filter(F.col(CORRUPT).isNotNull()).count()
    return frame.filter(F.col(CORRUPT).isNull()).drop(CORRUPT), malformed


def _read_csv(spark: Any, config: BatchConfig) -> Any:
    """Every column as text, once the file passed the check (see the module's docstring)."""
    separator = csv_separator_for(Path(config.data.rstrip("/")), config.csv_separator)
    options = {"header": True, "sep": separator, "multiLine": True, "escape": '"'}
    if "://" not in config.data:
        counts = readers.ReadCounts()
        for _chunk in readers.read_chunks(Path(config.data), "csv", CHECK_ROWS, counts, separator):
            pass  # raises as the local engine does
        return spark.read.options(**options).csv(config.data)
    return _read_remote_csv(spark, config.data, separator, options)


def _read_remote_csv(spark: Any, data: str, separator: str, options: dict[str, Any]) -> Any:
    from pyspark.sql.types import StringType, StructField, StructType

    header = spark.read.options(**options).csv(data).schema  # reads the first record
    if not header.fields:  # an empty file
        raise DataError(no_rows(data))
    schema = StructType([*header.fields, StructField(CORRUPT, StringType())])
    reader = spark.read.options(**options, columnNameOfCorruptRecord=CORRUPT).schema(schema)
    frame = reader.csv(data)
    check_csv_rows(frame, data, separator, len(header.fields))
    return frame.drop(CORRUPT)


def check_csv_rows(frame: Any, data: str, separator: str, width: int) -> None:
    """Stop on no rows, on a row with more cells than the header, or on an unclosed quote."""
    from pyspark.sql import functions as F  # noqa: N812  Spark's own spelling

    # Spark refuses a query of the corrupt-record column alone: count a data column too.
    first = frame.columns[0]
    counts = frame.agg(
        F.count(F.lit(1)).alias("rows"),
        F.count(F.col(first)).alias("filled"),
        F.count(F.col(CORRUPT)).alias("odd"),
    ).first()
    if counts["rows"] == 0:
        raise DataError(no_rows(data))
    if counts["odd"] == 0:
        return
    odd = frame.filter(F.col(CORRUPT).isNotNull()).select(first, CORRUPT)
    for row in odd.toLocalIterator():
        problem = csv_row_problem(row[CORRUPT], separator, width)
        if problem:
            shown = row[CORRUPT][:SHOWN_CHARS] + ("..." if len(row[CORRUPT]) > SHOWN_CHARS else "")
            raise DataError(f"{data}: not a valid CSV file: {problem}: {shown!r}")


def csv_row_problem(text: str, separator: str, width: int) -> str | None:
    """Why pandas would refuse this CSV record of a file whose header has `width` cells (None:
    it reads it, a short row's missing cells as missing values)."""
    try:
        cells = _cells(text, separator, strict=True)
    except csv.Error as error:
        if "unexpected end of data" in str(error):
            return "a quoted value is never closed, in the row"
        try:  # a stray quote, which pandas reads as text
            cells = _cells(text, separator, strict=False)
        except csv.Error:  # no verdict (a cell past the csv module's size limit): Spark's read
            return None
    if cells > width:
        return f"a row has {cells} cells where the header has {width}"
    return None


def _cells(text: str, separator: str, strict: bool) -> int:
    rows = csv.reader(
        io.StringIO(text, newline=""), delimiter=separator, strict=strict, skipinitialspace=True
    )
    return max((len(row) for row in rows), default=0)
