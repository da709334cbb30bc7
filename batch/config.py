"""Every option of one batch-scoring run, typed and checked once, before any work starts."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from training.config_values import ColumnName, CsvSeparator
from training.errors import ConfigError

OUTPUT_FORMATS = {".parquet": "parquet", ".csv": "csv", ".jsonl": "jsonl"}
MAX_TOP_K = 100
"""A chunk holds chunk_size x top_k ranked labels in memory: 5,000 rows x 1,000 labels took
785 MiB (serving's top_k goes to 1,000, but a request holds at most 1,000 products)."""


class BatchConfig(BaseModel):
    """Options of one `product-classify` run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(
        description="models:/NAME@ALIAS, models:/NAME/VERSION, or a local MLflow model folder"
    )
    data: str = Field(
        description="catalog file (.jsonl[.gz], .json[.gz], .csv[.gz], .tsv[.gz], .parquet) or "
        "Parquet folder"
    )
    output: str = Field(
        description="output file; .parquet, .csv or .jsonl (Spark: a .parquet folder)"
    )
    engine: Literal["local", "spark"] = Field("local", description="where to score")
    format: Literal["auto", "amazon", "jsonl", "csv", "parquet"] = Field(
        "auto", description="catalog format; auto picks by file extension"
    )
    csv_separator: CsvSeparator | None = Field(
        None,
        description="field separator of CSV catalogs: one character, or an escape such as \\t "
        "for tab; none: tab for .tsv files, else comma",
    )
    id_column: ColumnName | None = Field(
        None,
        description="catalog column holding the product id (default: the model's id field; "
        "'' or a model without one: rows are identified by their 0-based position, 'row')",
    )
    top_k: int = Field(
        3,
        ge=1,
        le=MAX_TOP_K,
        description=f"labels kept per product, most probable first; 1 to {MAX_TOP_K}",
    )
    chunk_size: int = Field(5000, ge=1, description="rows scored at a time (local engine)")
    overwrite: bool = Field(False, description="replace an existing output")
    tracking_uri: str | None = Field(
        None,
        description="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)",
    )
    tracking_timeout_seconds: float = Field(
        30.0, gt=0, description="how long to retry an unreachable tracking server"
    )
    spark_master: str = Field("local[*]", description="Spark master URL (Spark engine)")
    spark_conf: dict[str, str] = Field(
        default_factory=dict, description="extra Spark settings, KEY=VALUE (Spark engine)"
    )
    progress: bool = Field(True, description="show a progress bar (local engine)")

    @field_validator("id_column")
    @classmethod
    def _stripped(cls, value: str | None) -> str | None:
        """None: the model's id field; "" (given blank): no id column, rows by position."""
        return None if value is None else value.strip()

    @property
    def output_format(self) -> str:
        return output_format(self.output)


def output_format(output: str) -> str:
    """The format named by the output's extension; `ConfigError` for any other."""
    kind = OUTPUT_FORMATS.get(Path(output.rstrip("/")).suffix.lower())
    if kind is None:
        raise ConfigError(
            f"--output {output}: cannot tell the format from the extension; "
            f"end it with {', '.join(OUTPUT_FORMATS)}"
        )
    return kind


def parse_spark_conf(items: list[str]) -> dict[str, str]:
    """`["spark.executor.memory=4g"]` → `{"spark.executor.memory": "4g"}`."""
    settings: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(
                f"--spark-conf {item}: expected KEY=VALUE, e.g. spark.executor.memory=4g"
            )
        settings[key.strip()] = value.strip()
    return settings


def make_config(values: dict[str, object]) -> BatchConfig:
    """Validate the options; every problem becomes one readable `ConfigError`."""
    try:
        config = BatchConfig(**values)
    except ValidationError as error:
        problems = "; ".join(
            f"--{'.'.join(str(p) for p in item['loc']).replace('_', '-')}: {item['msg']}"
            for item in error.errors()
        )
        raise ConfigError(f"invalid options: {problems}") from None
    config.output_format  # noqa: B018  the extension is checked before any work starts
    check_output_is_not_input(config.data, config.output)
    if config.engine == "spark" and config.output_format != "parquet":
        raise ConfigError(
            f"--output {config.output}: the Spark engine writes a folder of Parquet files; "
            "name it *.parquet (or use --engine local for CSV or JSONL)"
        )
    return config


def check_output_is_not_input(data: str, output: str) -> None:
    """The labels never replace the catalog they come from: the output is not the input file,
    not inside an input folder and not a folder holding the input (paths and symlinks resolved)."""
    source, target = Path(data.removeprefix("file://")), Path(output.removeprefix("file://"))
    source, target = source.resolve(), target.resolve()
    where = None
    if source == target or (source.exists() and target.exists() and source.samefile(target)):
        where = "is the catalog being classified"
    elif source in target.parents:
        where = "is inside the catalog folder being classified"
    elif target in source.parents:
        where = "is a folder holding the catalog being classified"
    if where is not None:
        raise ConfigError(
            f"--output {output} {where} (--data {data}); the labels are never written over or "
            "into the catalog they come from: pass an --output outside it, such as a file "
            "beside it"
        )
