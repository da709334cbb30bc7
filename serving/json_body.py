"""Why a JSON body could not be parsed, said in the client's terms: where the problem is and how
to send the body instead, never Python's own wording (such as its advice to call
`sys.set_int_max_str_digits()`, which only the server could follow).
"""

from __future__ import annotations

import json
import re
import sys

from serving.errors import InvalidInputError

_KEY_BEFORE = re.compile(rb'"((?:[^"\\]|\\.){1,200})"\s*:\s*$')
"""The object key right before a value: `"Größe (KB)": ` at the end of the body's prefix."""


def invalid_json(error: BaseException, body: bytes | None) -> InvalidInputError:
    """The 422 for a body `json.loads` refused with `error`."""
    return InvalidInputError(f"invalid JSON: {json_problem(error, body)}", field="body")


def json_problem(error: BaseException, body: bytes | None) -> str:
    """What is wrong with a body `json.loads` refused with `error`; `body` (when known) lets
    the answer say where a too long number is."""
    if isinstance(error, RecursionError):
        return "nested too deeply"
    if isinstance(error, json.JSONDecodeError):
        return str(error)
    if isinstance(error, UnicodeDecodeError):
        return "the body is not UTF-8 (nor UTF-16 or UTF-32) text"
    if "integer string conversion" in str(error):  # int() refused a number of many digits
        return long_number_problem(body)
    return "the body cannot be decoded"


def long_number_problem(body: bytes | None) -> str:
    """A JSON number whose integer has more digits than Python converts (4,300 by default)."""
    limit = sys.get_int_max_str_digits()
    where = ""
    if body is not None and (found := _long_integer(body, limit)) is not None:
        start, end = found
        line_start = body.rfind(b"\n", 0, start) + 1
        line = body.count(b"\n", 0, start) + 1
        column = len(body[line_start:start].decode("utf-8", errors="replace")) + 1
        where = f" ({end - start} digits, at line {line}, column {column}{_key_of(body, start)})"
    return (
        f"a number in the body has more than {limit} digits{where}; no value takes a number "
        "this long: a count such as top_k is small, a number field holds at most about "
        "1.8e308, and an identifier (a code, an SKU) this long is sent as a string"
    )


def _long_integer(body: bytes, limit: int) -> tuple[int, int] | None:
    """Where the first integer of more than `limit` digits is (start and end offsets): a value
    after `:`, `[` or `,`, not inside a string, not followed by decimals (floats parse)."""
    pattern = rb"(?<=[:\[,])\s*-?(\d{%d,})(?![\d.eE])" % (limit + 1)
    match = re.search(pattern, body)
    return None if match is None else (match.start(1), match.end(1))


def _key_of(body: bytes, start: int) -> str:
    """`, the value of "name"` when the number at `start` is the value of the key `name`."""
    prefix = body[max(0, start - 400) : start].rstrip(b"-")
    match = _KEY_BEFORE.search(prefix)
    if match is None:
        return ""
    key = match[1].decode("utf-8", errors="replace")
    return f', the value of "{key}"'
