"""The Spark engine's output: a Parquet folder written beside its final name and renamed into
place through Hadoop's FileSystem (local paths, HDFS and S3 alike), then counted from what was
written."""

from __future__ import annotations

import logging
import os
from typing import Any

from batch.publish import publishing
from batch.summary import Summary
from training.errors import TrainingError

log = logging.getLogger(__name__)
MAX_CAUSE_CHARS = 500


class HadoopPaths:
    """Existence, rename and delete through Hadoop's FileSystem: local paths, HDFS, S3 alike."""

    def __init__(self, spark: Any) -> None:
        self._jvm = spark.sparkContext._jvm
        self._conf = spark.sparkContext._jsc.hadoopConfiguration()

    def _path(self, name: str) -> tuple[Any, Any]:
        path = self._jvm.org.apache.hadoop.fs.Path(name)
        return path.getFileSystem(self._conf), path

    def exists(self, name: str) -> bool:
        fs, path = self._path(name)
        return bool(fs.exists(path))

    def delete(self, name: str) -> None:
        fs, path = self._path(name)
        fs.delete(path, True)

    def rename(self, source: str, target: str) -> None:
        fs, path = self._path(source)
        if not fs.rename(path, self._path(target)[1]):
            raise OSError(f"cannot rename {source} to {target}")


def _sibling(output: str, prefix: str) -> str:
    head, _, name = output.rstrip("/").rpartition("/")
    hidden = f"{prefix}{name}.partial-{os.getpid()}"
    return f"{head}/{hidden}" if head else hidden


def write_atomically(spark: Any, frame: Any, output: str, overwrite: bool) -> None:
    """Write Parquet to a hidden folder beside `output`, then rename it into place."""
    paths = HadoopPaths(spark)
    temporary = _sibling(output, ".")
    paths.delete(temporary)
    try:
        _write(frame, temporary, output)
        with publishing(output):
            if paths.exists(output):
                aside = _sibling(output, ".old-")
                paths.rename(output, aside)
                paths.rename(temporary, output)
                paths.delete(aside)
            else:
                paths.rename(temporary, output)
    except BaseException:
        # An interrupt stops only this Python side: stop the job before removing its files.
        spark.sparkContext.cancelAllJobs()
        paths.delete(temporary)
        raise


def _write(frame: Any, temporary: str, output: str) -> None:
    """The Parquet files; a failed job is one line with its Java cause, not py4j's
    "An error occurred while calling o242.parquet"."""
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    try:
        frame.write.mode("errorifexists").parquet(temporary)
    except (Py4JJavaError, PySparkException) as error:
        log.debug("the Spark job failed", exc_info=True)
        raise TrainingError(
            f"the Spark job writing --output {output} failed: {failure_cause(error)}; "
            f"nothing was written to {output} (set LOG_LEVEL=DEBUG for the traceback)"
        ) from None


def failure_cause(error: BaseException) -> str:
    """The first line of what made a Spark call fail: the innermost Java cause (a Python
    worker's error: its last line, the exception, rather than "Traceback ...")."""
    java = getattr(error, "java_exception", None)
    if java is not None:
        while java.getCause() is not None:
            java = java.getCause()
        text = str(java.toString())
    else:
        text = str(error)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    first = lines[-1] if lines[0].endswith("Traceback (most recent call last):") else lines[0]
    return first[:MAX_CAUSE_CHARS]


def count_output(spark: Any, output: str, summary: Summary) -> None:
    """Rows, rows without text and label counts, read back from the written output."""
    from pyspark.sql import functions as F  # noqa: N812  Spark's own spelling

    written = spark.read.parquet(output)
    for row in written.groupBy("label", F.col("reason").isNull().alias("ok")).count().collect():
        summary.rows += int(row["count"])
        if row["ok"]:
            summary.labels[row["label"]] = int(row["count"])
        else:
            summary.no_text += int(row["count"])
