"""Row numbers for the Spark engine: a catalog without id column identifies each output row by
its position in the catalog (`row`), and both engines must give a row the same number.

The local engine reads a folder of Parquet files in the order of their sorted paths, each file
front to back. Spark packs files into partitions largest first, so the numbers cannot come from
the partitions alone: rows are counted per (file, partition) and numbered file by file, in the
local engine's order, then by their place in the file.

The same numbers keep the output in the catalog's order (`in_catalog_order`), as the local
engine writes it: the rows are spread over the cores by ranges of numbers, sorted within each,
so that the output's part files, read in the order of their names, hold the catalog's rows in
its order.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any
from urllib.parse import unquote, urlparse

from batch.scoring import ROW_COLUMN

_FILE, _ID = "_row_file", "_row_id"
_PARTITION_SHIFT = 33  # `monotonically_increasing_id` keeps the partition in its upper 31 bits


def file_order(name: str) -> tuple[str, ...]:
    """Sort key of a file Spark read, as the local engine sorts paths (part by part)."""
    return PurePosixPath(unquote(urlparse(name).path)).parts


def with_row_numbers(frame: Any, name: str = ROW_COLUMN) -> Any:
    """`frame` with each row's 0-based position in the catalog, in column `name`.

    A row's number is the rows of the files before its own, plus those of its file read before
    its own chunk, plus its place in the chunk (`monotonically_increasing_id` numbers a
    partition's rows one by one, and a partition reads a file's chunk front to back). A frame
    read from cache has no file names; its partitions then stand for the catalog's order.
    """
    from pyspark.sql import functions as F  # noqa: N812  Spark's own spelling

    numbered = frame.withColumn(_FILE, F.input_file_name()).withColumn(
        _ID, F.monotonically_increasing_id()
    )
    part = F.shiftright(F.col(_ID), _PARTITION_SHIFT)
    chunks = (
        numbered.groupBy(F.col(_FILE), part.alias("partition"))
        .agg(F.min(_ID).alias("first"), F.count(F.lit(1)).alias("rows"))
        .collect()
    )
    key = F.concat_ws("\0", F.col(_FILE), part.cast("string"))
    shifts, total = [], 0
    for chunk in sorted(chunks, key=lambda c: (file_order(c[_FILE]), c["first"])):
        shifts += [F.lit(f"{chunk[_FILE]}\0{chunk['partition']}"), F.lit(total - chunk["first"])]
        total += chunk["rows"]
    shift = F.create_map(*shifts)[key] if shifts else F.lit(0)
    return numbered.withColumn(name, (F.col(_ID) + shift).cast("long")).drop(_FILE, _ID)


def in_catalog_order(spark: Any, frame: Any, column: str) -> Any:
    """`frame` spread over at least one partition per core (a gzip file is one partition),
    each partition a range of consecutive row numbers (`column`) in their order."""
    partitions = max(frame.rdd.getNumPartitions(), spark.sparkContext.defaultParallelism)
    return frame.repartitionByRange(partitions, column).sortWithinPartitions(column)
