"""The configurable request limits, checked without HTTP."""

from __future__ import annotations

import pytest

from serving.errors import InvalidInputError
from serving.validation import Limits, check_products, field_chars

LIMITS = Limits(max_products=3, max_text_chars=10)


def rejected(products: list[dict]) -> InvalidInputError:
    with pytest.raises(InvalidInputError) as caught:
        check_products(products, LIMITS)
    return caught.value


def test_valid_products_pass() -> None:
    check_products(
        [{"title": "a"}, {"description": ["b"]}, {"title": "", "description": "c"}], LIMITS
    )


def test_counts() -> None:
    assert rejected([]).field == "products"
    error = rejected([{"title": "a"}] * 4)
    assert error.field == "products" and "at most 3" in error.message


@pytest.mark.parametrize(
    "product", [{}, {"title": " \t\n"}, {"description": []}, {"brand": "x", "feature": ["y"]}]
)
def test_title_or_description_required(product) -> None:
    assert rejected([{"title": "ok"}, product]).field == "products[1]"


@pytest.mark.parametrize(
    ("product", "field"),
    [
        ({"title": "x" * 11}, "products[0].title"),
        ({"title": "x", "feature": ["12345", "123456"]}, "products[0].feature"),
        ({"title": "x", "details": {"key": "12345678"}}, "products[0].details"),
    ],
)
def test_text_length_per_field(product, field) -> None:
    error = rejected([product])
    assert error.field == field and "at most 10" in error.message


def test_field_chars_counts_characters_not_bytes() -> None:
    assert field_chars("🚀🚀") == 2
    assert field_chars(["ab", "c"]) == 3
    assert field_chars({"ab": "cd"}) == 4
    assert field_chars(12.5) == 0
