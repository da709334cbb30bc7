"""The configurable limits on a prediction request, checked before any model work."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from serving.errors import InvalidInputError

REQUIRED_ANY_OF = ("title", "description")


@dataclass(frozen=True)
class Limits:
    max_products: int
    max_text_chars: int


def field_chars(value: Any) -> int:
    """Characters in a field: a string's length, summed over lists and dict keys and values."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, Mapping):
        return sum(len(str(key)) + field_chars(item) for key, item in value.items())
    if isinstance(value, Sequence):
        return sum(field_chars(item) for item in value)
    return 0


def has_text(value: Any) -> bool:
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, Sequence):
        return any(has_text(item) for item in value)
    return False


def check_products(products: Sequence[Mapping[str, Any]], limits: Limits) -> None:
    """Raise `InvalidInputError` naming the first offending field, or return if all is well."""
    if not products:
        raise InvalidInputError("at least one product is required", field="products")
    if len(products) > limits.max_products:
        raise InvalidInputError(
            f"{len(products)} products, at most {limits.max_products} per request",
            field="products",
        )
    for index, product in enumerate(products):
        check_product(product, limits, f"products[{index}]")


def check_product(product: Mapping[str, Any], limits: Limits, where: str) -> None:
    if not any(has_text(product.get(name)) for name in REQUIRED_ANY_OF):
        raise InvalidInputError("a product needs a non-empty title or description", field=where)
    for name, value in product.items():
        chars = field_chars(value)
        if chars > limits.max_text_chars:
            raise InvalidInputError(
                f"{chars} characters, at most {limits.max_text_chars} per field",
                field=f"{where}.{name}",
            )
