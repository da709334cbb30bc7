"""Numeric fields in the Spark engine, read as `scoring.model_frame` reads them in the local
engine, and the values that are there but are not numbers counted as `scoring.count_not_numbers`
counts them, so that both engines report the same counts for the same catalog.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

# Leading and trailing whitespace, Unicode's included, as Python's `str.strip` removes it.
_EDGE_SPACES = r"(?U)^\s+|\s+$"
# Decimal text as Python's `float` reads it (`1_000` too). Spark's own cast also reads `1d`, `1f`
# and hexadecimal `0x1p3` (Java's syntax), which the local engine does not: those are no numbers.
_DIGITS = r"[0-9](?:_?[0-9])*"
DECIMAL_TEXT = rf"^[+-]?(?:{_DIGITS}(?:\.(?:{_DIGITS})?)?|\.{_DIGITS})(?:[eE][+-]?{_DIGITS})?$"


def number_parts(frame: Any, column: str) -> tuple[Any, Any]:
    """A numeric field as a double (null where it is no number), and whether a value is there:
    not null, not blank text, not NaN (which pandas cannot tell from a missing value)."""
    from pyspark.sql import functions as F  # noqa: N812  Spark's own spelling
    from pyspark.sql.types import BooleanType, NumericType, StringType

    kind = frame.schema[column].dataType
    if isinstance(kind, StringType):
        text = F.regexp_replace(F.col(column), _EDGE_SPACES, "")
        value = F.when(text.rlike(DECIMAL_TEXT), F.regexp_replace(text, "_", "").try_cast("double"))
        return value, F.coalesce(text != "", F.lit(False))
    if isinstance(kind, NumericType) and not isinstance(kind, BooleanType):
        value = F.col(column).cast("double")
        return value, F.col(column).isNotNull() & ~F.isnan(value)  # isnan(null) is false
    # booleans, objects and lists are there but are no numbers
    return F.lit(None).cast("double"), F.col(column).isNotNull()


def is_finite(value: Any) -> Any:
    """True for a finite number; null for null."""
    from pyspark.sql import functions as F  # noqa: N812  Spark's own spelling

    return ~F.isnan(value) & (F.abs(value) != F.lit(float("inf")))


def as_number(frame: Any, column: str) -> Any:
    """A numeric field as `scoring.model_frame` reads it: numbers and numeric text as doubles;
    blanks, text, booleans, objects and infinities missing."""
    from pyspark.sql import functions as F  # noqa: N812  Spark's own spelling

    value, _ = number_parts(frame, column)
    return F.when(is_finite(value), value).alias(column)


def is_not_number(frame: Any, column: str) -> Any:
    """True where a value is there but `as_number` reads it as missing."""
    from pyspark.sql import functions as F  # noqa: N812  Spark's own spelling

    value, present = number_parts(frame, column)
    return present & ~F.coalesce(is_finite(value), F.lit(False))


def count_not_numbers(frame: Any, columns: list[str]) -> Counter[str]:
    """Per column, the values that are there but are not numbers (one pass over `frame`)."""
    from pyspark.sql import functions as F  # noqa: N812  Spark's own spelling

    if not columns:
        return Counter()
    sums = [
        F.sum(F.when(is_not_number(frame, column), 1).otherwise(0)).alias(f"_n{at}")
        for at, column in enumerate(columns)
    ]
    row = frame.select(*sums).first()
    counts = {column: int(row[f"_n{at}"] or 0) for at, column in enumerate(columns)}
    return Counter({column: count for column, count in counts.items() if count})
