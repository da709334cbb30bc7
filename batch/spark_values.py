"""Catalog values in the Spark engine as the model reads them from the local engine's pandas.

Spark turns JSON objects into structs (or maps) holding every key seen in the file: they become
what the model makes of a dict without its missing keys. Text fields follow the local engine's
rule (`batch.text_values`): text stays text; numbers and booleans become their text (whole
numbers without `.0`, booleans `true`/`false`); lists are left to the model. A text field's
column of any other type (bytes, dates, times) stops the run before scoring, in the local
engine's words."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from batch.text_values import TEXT_EXPECTED
from training.catalog_keys import EXACT_FLOAT_INTEGERS
from training.errors import DataError


def text_column(frame: Any, column: str, text: bool = True) -> Any:
    """A text field (or a column the signature types `string`) as the model reads it (see the
    module's docstring); objects as `as_model_value` gives them (`text`: as words)."""
    from pyspark.sql import functions as F  # noqa: N812  Spark's own spelling
    from pyspark.sql import types as T  # noqa: N812  Spark's own spelling

    kind = frame.schema[column].dataType
    value = F.col(column)
    if isinstance(kind, T.FloatType | T.DoubleType):
        whole = (F.abs(value) < F.lit(EXACT_FLOAT_INTEGERS)) & (value == F.floor(value))
        as_text = F.when(whole, value.cast("long").cast("string")).otherwise(value.cast("string"))
        return F.when(~F.isnan(value), as_text).alias(column)
    if isinstance(kind, T.BooleanType | T.IntegralType | T.DecimalType):
        return value.cast("string").alias(column)
    return as_model_value(frame, column, text)


def as_model_value(frame: Any, column: str, text: bool) -> Any:
    """A column as the model reads it from pandas: objects (structs, maps) become what the model
    makes of a dict without its missing keys."""
    from pyspark.sql import functions as F  # noqa: N812  Spark's own spelling
    from pyspark.sql.types import MapType, StructType

    kind = frame.schema[column].dataType
    if isinstance(kind, StructType):
        entries = F.array(
            *[
                F.struct(F.lit(f.name).alias("key"), F.col(column)[f.name].alias("value"))
                for f in kind.fields
            ]
        )
    elif isinstance(kind, MapType):
        entries = F.map_entries(F.col(column))
    else:
        return F.col(column)
    present = F.filter(entries, lambda e: e["value"].isNotNull())
    separator = " " if text else "="
    items = F.transform(
        present, lambda e: F.concat(e["key"], F.lit(separator), e["value"].cast("string"))
    )
    return (F.array_join(items, " ") if text else items).alias(column)


def check_text_types(frame: Any, columns: tuple[str, ...], source: Path | str) -> None:
    """Stop before scoring when a text field's column has a type no rule reads as text."""
    from pyspark.sql import types as T  # noqa: N812  Spark's own spelling

    # lists are left to the model, objects flattened (`as_model_value`)
    readable: tuple[type, ...] = (T.StringType, T.NumericType, T.BooleanType, T.NullType)
    readable += (T.ArrayType, T.StructType, T.MapType)
    for column in (c for c in columns if c in frame.columns):
        kind = frame.schema[column].dataType
        if isinstance(kind, readable):
            continue
        raise DataError(
            f"{source}: column '{column}' holds {_what(kind)} (Spark type "
            f"{kind.simpleString()}); {TEXT_EXPECTED}"
        )


def _what(kind: Any) -> str:
    """A Spark type in the local engine's words (`text_values.what_it_is`)."""
    from pyspark.sql import types as T  # noqa: N812  Spark's own spelling

    if isinstance(kind, T.BinaryType):
        return "bytes"
    if isinstance(kind, T.DateType | T.TimestampType | T.TimestampNTZType):
        return "dates or times"
    return "values of another type"
