"""The fast path of validation never answers differently from the generic check: a plain value
passes as the generic check would return it, anything else is left to the generic check."""

from __future__ import annotations

import pytest

from serving.contract_types import CHECKERS, INVALID
from serving.plain_values import PLAIN_CHECKS, SLOW
from serving.validation import field_chars

MAX_CHARS = 12
VALUES = [
    "",
    "chess",
    "x" * MAX_CHARS,
    "x" * (MAX_CHARS + 1),
    ["a", "bc"],
    [],
    ["x" * 7, "y" * 6],
    ["a", 1],
    [1, 2.5],
    {"brand": "Acme"},
    {"in stock": True, "colour": None},
    {"k": "v" * 12},
    {"weight": 1},
    {"weight": float("nan")},
    {"k": ["nested"]},
    {1: "x"},
    1,
    1.5,
    True,
    float("inf"),
    "$12.99",
]


@pytest.mark.parametrize("field_type", sorted(PLAIN_CHECKS))
@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_plain_check_agrees_with_the_generic_check(field_type, value) -> None:
    plain = PLAIN_CHECKS[field_type](value, MAX_CHARS)
    if plain is SLOW:
        return
    generic = CHECKERS[field_type](value)
    assert generic is not INVALID
    assert plain == generic and type(plain) is type(generic)
    assert field_chars(generic) <= MAX_CHARS


def test_plain_values_take_the_fast_path() -> None:
    assert PLAIN_CHECKS["string"]("chess", MAX_CHARS) == "chess"
    assert PLAIN_CHECKS["text"](["a", "bc"], MAX_CHARS) == ["a", "bc"]
    details = {"new": True, "tag": None}
    copied = PLAIN_CHECKS["tokens"](details, MAX_CHARS)
    assert copied == details and copied is not details  # a copy, as the generic check makes


@pytest.mark.parametrize(
    ("field_type", "value"),
    [
        ("string", "x" * (MAX_CHARS + 1)),  # over the limit: the generic check says by how much
        ("text", ["a", 1]),  # not all strings: the generic check names the type
        ("tokens", {"weight": 1}),  # numbers are checked for being finite there
        ("tokens", 7),
    ],
)
def test_anything_else_goes_to_the_generic_check(field_type, value) -> None:
    assert PLAIN_CHECKS[field_type](value, MAX_CHARS) is SLOW
