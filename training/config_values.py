"""The option values that are more than a word, parsed once into typed values.

`--smote-strategy share:0.05`, `--max-features 0.05`, `--text-columns title,description`,
`--csv-separator '\\t'`: each annotated type below parses its option as typed on the command line
or written in a config file, so `TrainConfig` (training/config.py) and the stages below it receive
typed values and never re-split strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, PlainSerializer

NamedSmoteStrategy = Literal["auto", "not majority", "minority", "not minority", "all"]
SMOTE_STRATEGIES: tuple[str, ...] = NamedSmoteStrategy.__args__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class ShareOfLargest:
    """SMOTE target `share:R`: every class to at least R times the largest class."""

    share: float

    def __str__(self) -> str:
        return f"share:{self.share:g}"


@dataclass(frozen=True)
class MinimumRows:
    """SMOTE target `min:N`: every class to at least N rows."""

    rows: int

    def __str__(self) -> str:
        return f"min:{self.rows}"


def parse_smote_strategy(value: Any) -> Any:
    """`share:R`, `min:N` or an imbalanced-learn name, as a typed value."""
    if not isinstance(value, str):
        return value
    kind, _, number = value.partition(":")
    if kind == "min":
        if not number.isdigit() or int(number) < 2:
            raise ValueError("'min:N' needs a whole number N >= 2, e.g. min:300")
        return MinimumRows(int(number))
    if kind == "share":
        share = _float_or(number, -1.0)
        if not 0 < share <= 1:
            raise ValueError("'share:R' needs a fraction 0 < R <= 1, e.g. share:0.05")
        return ShareOfLargest(share)
    if value not in SMOTE_STRATEGIES:
        raise ValueError(f"must be share:R, min:N or one of {', '.join(SMOTE_STRATEGIES)}")
    return value


def parse_max_features(value: Any) -> Any:
    """`sqrt`, `log2`, a fraction of the features (< 1) or a whole number of them (>= 1)."""
    if value in ("sqrt", "log2") or isinstance(value, bool):
        return value
    number = _float_or(value, float("nan"))
    if not number > 0:
        raise ValueError("must be sqrt, log2 or a positive number")
    if number >= 1 and not number.is_integer():
        raise ValueError("a number of features >= 1 must be whole (fractions are below 1)")
    return int(number) if number >= 1 else number


def split_commas(value: Any) -> Any:
    """`a, b` (command line) or `[a, b]` (config file) as a list of trimmed, non-empty names."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list):
        return items
    return [item.strip() if isinstance(item, str) else item for item in items if item != ""]


SEPARATOR_ESCAPE = re.compile(r"\\(t|\\|x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4})")
r"""`\t`, `\\`, `\xHH` or `\uHHHH`, as a separator is typed in a shell (`--csv-separator '\t'`)."""


def parse_csv_separator(value: Any) -> Any:
    r"""One character, given as itself or as an escape (`\t` is tab); None: chosen by extension."""
    if not isinstance(value, str):
        return value
    if SEPARATOR_ESCAPE.fullmatch(value):
        value = value.encode("ascii").decode("unicode_escape")
    if len(value) != 1:
        shown = f"'{value}'" if value.isprintable() else repr(value)
        raise ValueError(
            f"{shown} is not one character; give one, or an escape such as \\t for tab"
        )
    if value in '\r\n"':
        raise ValueError("a line break or the quote character cannot separate fields")
    return value


def strip_text(value: Any) -> Any:
    """A column name as typed, trimmed as the catalog's headers are ("Category " is "Category")."""
    return value.strip() if isinstance(value, str) else value


def _float_or(text: Any, fallback: float) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return fallback


SmoteStrategy = Annotated[
    ShareOfLargest | MinimumRows | NamedSmoteStrategy,
    BeforeValidator(parse_smote_strategy),
    PlainSerializer(str),
]
MaxFeatures = Annotated[Literal["sqrt", "log2"] | int | float, BeforeValidator(parse_max_features)]
Names = Annotated[list[str], BeforeValidator(split_commas)]
ColumnName = Annotated[str, BeforeValidator(strip_text)]
CsvSeparator = Annotated[str, BeforeValidator(parse_csv_separator)]
