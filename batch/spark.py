"""The Spark engine: MLflow's `spark_udf` scores the catalog on a Spark cluster (or `local[*]`).

Known pitfalls, handled here: executors run `PYSPARK_PYTHON`, which defaults to this Python so
that `local[*]` workers have the same packages; the model's own code (its MLflow `code_paths`) is
shipped to the executors with `addPyFile`, so they import the model's `product_model` even where
it is not installed (MLflow issues #9196, #6450); the model's columns are passed as one struct, so
the pyfunc receives a DataFrame with the catalog's column names; Spark turns JSON objects into
structs holding every key seen in the file, which are turned back into what the model makes of a
dict (`key=value` tokens, or `key value` text) so that both engines give the same predictions.
Multilabel and path models return their tags (or path levels) through the same UDF, as two more
struct fields, decoded by the model itself: the output has the local engine's columns. Numeric
fields are parsed as numbers before the UDF (MLflow refuses text or integers where the signature
says `double`; values that are not numbers are counted as the local engine counts them, in one
more pass over the catalog's numeric columns after the output is written: `batch.spark_numbers`),
and text fields are read as text by the local engine's rule (`batch.spark_values`). Every row is
numbered by its position in the catalog, in the local engine's order, before the rows are spread
over the cores by ranges of those numbers (`batch.spark_rows`): the output keeps the catalog's
order, and a catalog without id column gets the numbers as `row`. The catalog is read, and
refused where the local engine refuses it, by `batch.spark_catalog`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from batch import writers
from batch.config import BatchConfig
from batch.model import ScoringModel
from batch.scoring import (
    ROW_COLUMN,
    TASK_COLUMNS,
    check_columns,
    model_names,
    no_text_reason,
    output_schema,
    warn_missing_inputs,
)
from batch.spark_catalog import read_catalog
from batch.spark_numbers import as_number, count_not_numbers
from batch.spark_output import HadoopPaths, count_output, write_atomically
from batch.spark_rows import in_catalog_order, with_row_numbers
from batch.spark_values import as_model_value, check_text_types, text_column
from batch.summary import Summary, warn_not_numbers
from training.errors import ConfigError

_SHIPPED_CODE: set[tuple[str, str]] = set()
POSITION = "_catalog_row"  # each row's position in the catalog: the output's order, or `row`
# The UDF's struct: the output's label and probability, then its list columns.
SCALAR_TYPES = "label string, probability double"
LIST_TYPES = ("array<string>", "array<double>")


def list_columns(task: str) -> list[tuple[str, str]]:
    """The output's list columns and their Spark types: top-k, then a multilabel (or path)
    model's tags (or path levels) and their probabilities, as `scoring.TASK_COLUMNS` names them."""
    names = ["top_labels", "top_probabilities", *TASK_COLUMNS.get(task, ())]
    return [(name, LIST_TYPES[at % 2]) for at, name in enumerate(names)]


def result_type(task: str) -> str:
    """What the model's UDF returns, for a model of this task."""
    return ", ".join([SCALAR_TYPES, *(f"{name} {kind}" for name, kind in list_columns(task))])


def start_session(config: BatchConfig) -> tuple[Any, bool]:
    """The active session (tests, notebooks), else a new one; and whether it was created here."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active, False
    builder = (
        SparkSession.builder.master(config.spark_master)
        .appName("product-classify")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(config.chunk_size))
    )
    for key, value in config.spark_conf.items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as error:  # no Java, a bad master URL, a refused setting
        raise ConfigError(
            f"cannot start Spark (--spark-master {config.spark_master}): {error}"
        ) from None
    session.sparkContext.setLogLevel("ERROR")
    return session, True


def has_text(frame: Any, columns: tuple[str, ...]) -> Any:
    """True where at least one text column holds more than blanks (as `scoring.has_text`)."""
    from pyspark.sql import functions as F  # noqa: N812  Spark's own spelling
    from pyspark.sql.types import ArrayType

    checks = []
    for column in (c for c in columns if c in frame.columns):
        value = F.col(column)
        if isinstance(frame.schema[column].dataType, ArrayType):
            checks.append(F.exists(value, lambda x: F.trim(x.cast("string")) != ""))
        else:
            checks.append(F.trim(value.cast("string")) != "")
    usable = F.lit(False)
    for check in checks:
        usable = usable | F.coalesce(check, F.lit(False))
    return usable


def model_value(frame: Any, column: str, model: ScoringModel) -> Any:
    """A catalog column as the local engine gives it to the model: numbers parsed, text fields
    read as text, objects as the model reads a dict."""
    if column in model.inputs.numeric_columns:
        return as_number(frame, column)
    text = column in model.inputs.text_columns
    if column in model.inputs.text_valued_columns:
        return text_column(frame, column, text)
    return as_model_value(frame, column, text)


def scored_frame(spark: Any, frame: Any, model: ScoringModel, udf: Any) -> Any:
    """One output row per catalog row, in the local engine's schema."""
    from pyspark.sql import functions as F  # noqa: N812  Spark's own spelling

    inputs = model.inputs
    if inputs.id_column is None:
        id_name, key = POSITION, F.col(POSITION)
    else:
        id_name = inputs.id_column
        key = F.coalesce(F.col(id_name).cast("string"), F.lit("")).alias(id_name)
    prepared = frame.select(
        *[
            model_value(frame, c, model)
            for c in inputs.columns
            if c in frame.columns and c != id_name
        ],
        key,
    )
    columns = [c for c in inputs.columns if c in frame.columns]
    usable = has_text(prepared, inputs.text_columns)
    predicted = prepared.withColumn("_usable", usable).withColumn(
        "_prediction", udf(F.struct(*[F.col(c) for c in columns]))
    )
    ok, p = F.col("_usable"), F.col("_prediction")
    lists = [
        F.when(ok, p[name]).otherwise(F.array().cast(kind)).alias(name)
        for name, kind in list_columns(model.task)
    ]
    label, probability = p["label"], p["probability"]
    if model.task == "multilabel":  # the first answered tag, as `scoring.answered_label`
        label, probability = p["tags"].getItem(0), p["tag_probabilities"].getItem(0)
    by_row = inputs.id_column is None
    return predicted.select(
        F.col(id_name).alias(ROW_COLUMN if by_row else "product_id"),
        F.when(ok, label).otherwise(F.lit("")).alias("label"),
        F.when(ok, probability).alias("probability"),
        *lists,
        F.when(ok, F.lit(None).cast("string"))
        .otherwise(F.lit(no_text_reason(inputs)))
        .alias("reason"),
        F.lit(model.ref.name).alias("model_name"),
        F.lit(model.ref.version).alias("model_version"),
    ).select(*output_schema(model.task, by_row).names)


def model_udf(spark: Any, model: ScoringModel, top_k: int, scratch: Path) -> Any:
    """MLflow's `spark_udf` over a local copy of the model, its code shipped to the executors."""
    import mlflow.artifacts
    import mlflow.pyfunc

    local = Path(mlflow.artifacts.download_artifacts(model.ref.uri, dst_path=str(scratch)))
    code = local / "code"
    if code.is_dir():
        ship_code(spark, code, scratch)
    return mlflow.pyfunc.spark_udf(
        spark,
        str(local),
        result_type=result_type(model.task),
        env_manager="local",
        params={"top_k": top_k},
    )


def ship_code(spark: Any, code: Path, scratch: Path) -> None:
    """Add the model's code to the executors' path, once per Spark application and code version
    (Spark refuses a second file of the same name with other bytes, as a new zip always has)."""
    digest = hashlib.sha256()
    for file in sorted(p for p in code.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(code)).encode() + b"\0" + file.read_bytes())
    name = f"model-code-{digest.hexdigest()[:16]}"
    key = (spark.sparkContext.applicationId, name)
    if key in _SHIPPED_CODE:
        return
    archive = shutil.make_archive(str(scratch / name), "zip", root_dir=code)
    spark.sparkContext.addPyFile(archive)
    _SHIPPED_CODE.add(key)


def run_spark(config: BatchConfig, model: ScoringModel) -> Summary:
    """Score `config.data` into the Parquet folder `config.output` with Spark."""
    if "://" not in config.output:
        writers.check_output(Path(config.output), config.overwrite)
    spark, created = start_session(config)
    summary = Summary("spark", model.ref.uri, model.ref.name, model.ref.version, config.output)
    started = time.perf_counter()
    try:
        remote = "://" in config.output
        if remote and not config.overwrite and HadoopPaths(spark).exists(config.output):
            raise ConfigError(f"--output {config.output}: already exists; pass --overwrite")
        frame, summary.malformed_lines = read_catalog(spark, config)
        frame = frame.toDF(*model_names(frame.columns, model.inputs))
        check_columns(frame.columns, model.inputs, config.data)
        check_text_types(frame, model.inputs.text_valued_columns, config.data)
        warn_missing_inputs(frame.columns, model.inputs, config.data)
        catalog = frame
        frame = in_catalog_order(spark, with_row_numbers(frame, POSITION), POSITION)
        with tempfile.TemporaryDirectory(prefix="product-classify-") as scratch:
            udf = model_udf(spark, model, config.top_k, Path(scratch))
            scored = scored_frame(spark, frame, model, udf)
            write_atomically(spark, scored, config.output, config.overwrite)
        count_output(spark, config.output, summary)
        numeric = [c for c in model.inputs.numeric_columns if c in catalog.columns]
        summary.not_numbers = count_not_numbers(catalog, numeric)
    finally:
        if created:
            spark.stop()
    summary.seconds = time.perf_counter() - started
    warn_not_numbers(summary, config.data)
    return summary
