"""The fast path of request validation: the plain JSON values most products carry.

`serving.validation` checks a value generically (ABC `isinstance` checks, a recursive character
count). For the shapes a JSON body almost always holds — a string, a list of strings, an object of
string keys and scalar values — one pass here both checks the value and counts its characters.
Anything else (numbers to parse, str subclasses, floats that may be NaN, values over the limit)
returns `SLOW`, and the generic check answers, with its own error message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

SLOW = object()
"""Not a plain value (or over the limit): let the generic check decide."""

PlainCheck = Callable[[Any, int], Any]


def plain_string(value: Any, max_chars: int) -> Any:
    """A string field's value, kept as is."""
    if type(value) is str and len(value) <= max_chars:
        return value
    return SLOW


def plain_strings(value: Any, max_chars: int) -> Any:
    """A string or a list of strings, kept as is (text and tokens fields)."""
    if type(value) is str:
        return value if len(value) <= max_chars else SLOW
    if type(value) is not list:
        return SLOW
    chars = 0
    for item in value:
        if type(item) is not str:
            return SLOW
        chars += len(item)
    return value if chars <= max_chars else SLOW


def plain_tokens(value: Any, max_chars: int) -> Any:
    """A tokens (or json) field: strings as `plain_strings`, or an object of string, boolean or
    null values, copied (as the generic tokens check does; the json check keeps it, an equal
    dict)."""
    if type(value) is not dict:
        return plain_strings(value, max_chars)
    chars = 0
    for key, item in value.items():
        if type(key) is not str:
            return SLOW
        if type(item) is str:
            chars += len(item)
        elif item is not None and type(item) is not bool:
            return SLOW
        chars += len(key)
    return dict(value) if chars <= max_chars else SLOW


PLAIN_CHECKS: dict[str, PlainCheck] = {
    "string": plain_string,
    "text": plain_strings,
    "tokens": plain_tokens,
    "json": plain_tokens,  # the flat shapes; nested values take the generic check
    "price": plain_string,
}
"""By contract type; types without an entry (numbers are parsed) always take the generic check."""
