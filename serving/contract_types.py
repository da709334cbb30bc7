"""The value types of a model's input contract: what each type accepts as a field's value
(`CHECKERS`, `INVALID` when it does not), how an error message names it (`TYPE_NAMES`), and its
JSON Schema for the OpenAPI document (`value_schema`). `serving.validation` applies them.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Mapping
from typing import Any

INVALID = object()
"""What a checker gives for a value its type does not take."""


def _string(value: Any) -> Any:
    return value if isinstance(value, str) else INVALID


def _text(value: Any) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        items = without_nulls(value)
        if all(isinstance(item, str) for item in items):
            return items
    return INVALID


def _tokens(value: Any) -> Any:
    if isinstance(value, str) or is_finite_number(value):
        return value
    if isinstance(value, list):
        items = without_nulls(value)
        if all(_is_token(item) for item in items):
            return items
    if isinstance(value, Mapping) and all(_is_pair_value(v) for v in value.values()):
        return dict(value)
    return INVALID


def without_nulls(items: list[Any]) -> list[Any]:
    """A list's items but its nulls: the model skips null items of a list
    (`product_model.features.as_list`; `as_text` reads them as ""), as training and batch
    scoring do, so `[null, "x"]` is `["x"]`."""
    return [item for item in items if item is not None] if None in items else items


def _is_token(item: Any) -> bool:
    return isinstance(item, str) or is_finite_number(item)


def _is_pair_value(value: Any) -> bool:
    return _is_token(value) or value is None or isinstance(value, bool)


ITEM_NAMES = {"text": "a string", "tokens": "a string or a finite number"}
"""What an item of a list takes, for the types whose lists are checked item by item."""
PAIR_VALUE_NAME = "a string, a finite number, a boolean or null"
"""What a value of a `tokens` field's object takes."""


def refused_item(value: Any, value_type: str) -> tuple[str, str] | None:
    """Where in a refused list (or a `tokens` field's object) the first item the type does not
    take is (`[1]`, `.colour`), and what the item must be; None when the value as a whole is the
    wrong type."""
    if isinstance(value, list) and value_type in ITEM_NAMES:
        wanted, is_item = ITEM_NAMES[value_type], _is_token if value_type == "tokens" else _is_str
        for index, item in enumerate(value):
            if item is not None and not is_item(item):
                message = f"must be {wanted}, not {json_kind(item)} (null items are skipped)"
                return f"[{index}]", message
    if isinstance(value, Mapping) and value_type == "tokens":
        for key, item in value.items():
            if not _is_pair_value(item):
                return f".{key}", f"must be {PAIR_VALUE_NAME}, not {json_kind(item)}"
    return None


def _is_str(item: Any) -> bool:
    return isinstance(item, str)


def json_kind(value: Any) -> str:
    """What kind of JSON value `value` is, as a message names it."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number" if is_finite_number(value) else "a number too large or not finite"
    if isinstance(value, Mapping):
        return "an object"
    return "a list" if isinstance(value, list) else "a string"


MAX_JSON_DEPTH = 20
"""How deeply lists and objects may nest in a `json` field (catalog records nest a few levels;
the model reads values recursively, so the bound keeps a hostile body from exhausting the stack)."""


def _json(value: Any) -> Any:
    """Any JSON value, nested: a text field whose catalog held objects or numbers (the model
    reads it as its text, `product_model.features.as_text`)."""
    return value if _is_json(value, MAX_JSON_DEPTH) else INVALID


def _is_json(value: Any, depth: int) -> bool:
    if value is None or isinstance(value, str | bool) or is_finite_number(value):
        return True
    if depth == 0:
        return False
    if isinstance(value, list):
        return all(_is_json(item, depth - 1) for item in value)
    if isinstance(value, Mapping):
        return all(
            isinstance(key, str) and _is_json(item, depth - 1) for key, item in value.items()
        )
    return False


NUMERIC_STRING = r"^\s*([+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)?\s*$"
"""A number written as a string, as the OpenAPI document describes it: blank (a missing value),
or a decimal number with an optional sign, decimals and exponent ("12.5", ".5", "+3", "1e3").
The server takes what Python's float() reads as a finite number, as training does."""


def _number(value: Any) -> Any:
    """A float; None (a missing value) for a blank string, as training reads a blank cell."""
    if is_finite_number(value):
        return float(value)
    if not isinstance(value, str):
        return INVALID
    if not value.strip():
        return None
    try:
        number = float(value)
    except ValueError:
        return INVALID
    return number if math.isfinite(number) else INVALID


_DECIMAL_COMMA = re.compile(r"\s*[+-]?[\d.]*\d,[\d.,]*\s*")
"""A number written with a decimal comma or thousands separators ("9,99", "1.234,5", "1,000")."""
MISSING_HINT = "for a missing value send null or an empty string, or leave the field out"
"""How a JSON object (`/v1/predict`, `/invocations` JSON) sends a missing number."""
CSV_MISSING_HINT = "for a missing value leave the cell empty"
"""How a CSV body sends one: a cell cannot hold null."""


def number_problem(value: Any, missing_hint: str = MISSING_HINT) -> str:
    """Why a number field refuses `value`, and how to send it instead; `missing_hint` says how
    the request's format sends a missing value."""
    if isinstance(value, str) and _DECIMAL_COMMA.fullmatch(value):
        return (
            "must be a number written with '.' as the decimal point and without thousands "
            "separators (9.99, not 9,99)"
        )
    if isinstance(value, str) and value.strip():
        reads_as = "too large, infinite or NaN" if _reads_as_float(value) else "not a number"
        return (
            f'must be a finite number or a numeric string such as "12.5" or "1e3"; this '
            f"text is {reads_as} ({missing_hint})"
        )
    if isinstance(value, int) and not isinstance(value, bool):
        return "must be a finite number: this integer is too large for a float (about 1.8e308)"
    return f"must be {TYPE_NAMES['number']} ({missing_hint})"


def in_csv_terms(message: str) -> str:
    """A complaint about a product's value (`number_problem`'s words for JSON) in a CSV body's
    terms: how a cell says a value is missing."""
    return message.replace(MISSING_HINT, CSV_MISSING_HINT)


def _reads_as_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _price(value: Any) -> Any:
    if isinstance(value, str):
        return value
    return float(value) if is_finite_number(value) and value >= 0 else INVALID


def is_finite_number(value: Any) -> bool:
    """A finite JSON number; an integer too large for a float (JSON allows any) is not one."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -sys.float_info.max <= value <= sys.float_info.max
    return isinstance(value, float) and math.isfinite(value)


EXACT_FLOAT_INTEGERS = 2.0**53
"""Floats count as whole numbers below this, as training reads a catalog's ids
(`training.catalog_keys`): beyond, a float no longer holds every integer."""


def id_text(number: int | float) -> str:
    """A number id as training and batch scoring read it: the text of an integer, and a whole
    float is the integer (`7.0`, as pandas writes a column of ids with gaps, is `7`), so `7`,
    `7.0` and `"7"` are one product; other floats as Python writes them (`112.5`)."""
    if isinstance(number, float) and abs(number) < EXACT_FLOAT_INTEGERS and number.is_integer():
        return str(int(number))
    return str(number)


CHECKERS = {"string": _string, "text": _text, "tokens": _tokens, "json": _json}
CHECKERS |= {"number": _number, "price": _price}
TYPE_NAMES = {
    "string": "a string",  # or a number, for an id
    "text": "a string or a list of strings",
    "tokens": "a string, a number, a list of them, or an object of key: value pairs",
    "json": (
        "a string, a finite number, a boolean, a list or an object of key: value pairs, "
        f"nested at most {MAX_JSON_DEPTH} levels deep"
    ),
    "number": "a finite number or a numeric string",
    "price": "a price: a non-negative number or a text such as '$12.99'",
}


def value_schema(value_type: str, max_chars: int, role: str = "") -> dict[str, Any]:
    """The JSON Schema of one field's values, for a contract type and role; null is a missing
    value. An id field also takes a number, as `check_value` does."""
    string = {"type": "string", "maxLength": max_chars}
    number = {"type": "number"}
    # No bound on the number of strings: the server bounds a field's characters (`field_chars`),
    # and real descriptions run to over a thousand paragraphs. Null items are skipped.
    missing = {"type": "null"}
    strings = {"type": "array", "items": {"anyOf": [string, missing]}}
    if value_type == "string":
        return {"anyOf": [string, number, missing] if role == "id" else [string, missing]}
    if value_type == "text":
        return {"anyOf": [string, strings, missing]}
    if value_type == "number":
        return {"anyOf": [number, {"type": "string", "pattern": NUMERIC_STRING}, missing]}
    if value_type == "price":
        return {"anyOf": [{"type": "number", "minimum": 0}, string, missing]}
    if value_type == "json":
        nested = [{"type": "boolean"}, {"type": "array"}, {"type": "object"}]
        return {"anyOf": [string, number, *nested, missing]}
    scalars = {"anyOf": [string, number, missing]}
    pair_value = {"anyOf": [string, number, {"type": "boolean"}, missing]}
    pairs = {"type": "object", "additionalProperties": pair_value}
    return {"anyOf": [string, number, {"type": "array", "items": scalars}, pairs, missing]}
