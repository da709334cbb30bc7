"""Request validation built from the served model's input contract.

A product is a JSON object keyed by the model's own field names (its catalog's column names).
Fields the model does not read are ignored; each field it reads must have the type its contract
gives; a product needs a non-empty value in one of the model's text fields. The contract comes
from the model's metadata (`contract`); models registered before contracts existed (0.1.x) list
Amazon 2018 field names only, and get the roles those fields always had.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from serving.contract_types import (
    CHECKERS,
    INVALID,
    TYPE_NAMES,
    id_text,
    is_finite_number,
    number_problem,
    refused_item,
    value_schema,
)
from serving.errors import InvalidInputError
from serving.plain_values import PLAIN_CHECKS, SLOW, PlainCheck

# The roles and types of the Amazon 2018 fields, for models registered before contracts.
LEGACY_FIELDS = {
    "asin": ("id", "string"),
    "title": ("text", "text"),
    "description": ("text", "text"),
    "feature": ("text", "text"),
    "brand": ("tokens", "tokens"),
    "category": ("tokens", "tokens"),
    "also_buy": ("tokens", "tokens"),
    "also_view": ("tokens", "tokens"),
    "image": ("tokens", "tokens"),
    "details": ("tokens", "tokens"),
    "price": ("numeric", "price"),
}
SCALARS = (str, int, float)


@dataclass(frozen=True)
class Limits:
    max_products: int
    max_text_chars: int


@dataclass(frozen=True)
class InputField:
    name: str
    role: str
    type: str


@dataclass(frozen=True)
class RequestContract:
    """What a request to this model must look like."""

    fields: tuple[InputField, ...]
    task: str = "single_label"

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> RequestContract:
        contract = metadata.get("contract")
        if contract:
            fields = tuple(
                InputField(str(f["name"]), str(f["role"]), str(f["type"]))
                for f in contract["fields"]
            )
            return cls(fields, str(contract.get("task", "single_label")))
        names = metadata.get("input_fields") or list(LEGACY_FIELDS)
        legacy = [n for n in names if n in LEGACY_FIELDS]
        return cls(tuple(InputField(n, *LEGACY_FIELDS[n]) for n in legacy))

    @cached_property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @cached_property
    def text_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.role == "text")

    @cached_property
    def checks(self) -> dict[str, tuple[InputField, PlainCheck | None]]:
        """Each field by name, with its fast check for plain values (`serving.plain_values`)."""
        return {f.name: (f, PLAIN_CHECKS.get(f.type)) for f in self.fields}

    @cached_property
    def nfc_names(self) -> dict[str, str]:
        """Each field's name in Unicode NFC, to the name as the contract spells it."""
        return {unicodedata.normalize("NFC", name): name for name in reversed(self.names)}

    def field_name(self, key: str) -> str | None:
        """The name of the field `key` names, compared after Unicode NFC normalisation (a
        client may send "Größe" with a decomposed "ö", which looks the same); None if none."""
        if key in self.checks:
            return key
        return self.nfc_names.get(unicodedata.normalize("NFC", key))

    def describe(self) -> list[dict[str, str]]:
        return [{"name": f.name, "role": f.role, "type": f.type} for f in self.fields]

    def json_schema(self, max_chars: int) -> dict[str, Any]:
        """A product as JSON Schema (for the OpenAPI document): the model's fields with their
        types, other fields allowed and ignored, a non-empty text field required."""
        properties = {f.name: value_schema(f.type, max_chars, f.role) for f in self.fields}
        needs_text = [
            {
                "required": [name],
                "properties": {name: NON_EMPTY},
            }
            for name in self.text_fields
        ]
        return {"type": "object", "properties": properties, "anyOf": needs_text}

    def warm_up_products(self) -> list[dict[str, Any]]:
        """Two products that pass every field's code path once."""
        full = {f.name: SAMPLE_VALUES[f.type] for f in self.fields}
        first_text = dict.fromkeys(self.text_fields[:1], "Warm-up product")
        return [first_text, full]


NON_EMPTY = {"not": {"type": "null"}, "minLength": 1, "minItems": 1, "minProperties": 1}
"""A text field's value with something in it, whichever JSON type it has."""

SAMPLE_VALUES: dict[str, Any] = {
    "string": "Produit d'échauffement ✓ 🚀",
    "text": ["first paragraph", "second paragraph"],
    "tokens": ["Tools", "Hand Tools"],
    "json": {"name": "Warm-up product", "tags": ["first", "second"], "size": 2, "new": True},
    "number": 12.5,
    "price": "$12.99",
}


def check_products(
    products: Sequence[Any], contract: RequestContract, limits: Limits
) -> list[dict[str, Any]]:
    """The products as the model reads them (its own fields, numbers parsed); raises
    `InvalidInputError` naming the first offending field."""
    if not products:
        raise InvalidInputError("at least one product is required", field="products")
    if len(products) > limits.max_products:
        raise InvalidInputError(
            f"{len(products)} products, at most {limits.max_products} per request",
            field="products",
        )
    return [
        check_product(product, contract, limits, f"products[{index}]")
        for index, product in enumerate(products)
    ]


_PRODUCT_PATH = re.compile(r"products\[(\d+)\](?:\.(.+))?", re.DOTALL)
"""The path `check_products` names a product (`products[3]`) or its field (`products[3].title`)
by; the routes whose requests hold no `products` rename it in their own request's shape."""


def product_position(field: str | None) -> tuple[int, str | None] | None:
    """The product's index and field name in a path of `check_products` (`products[3].title` →
    (3, "title"), `products[3]` → (3, None)); None for any other path."""
    match = _PRODUCT_PATH.fullmatch(field or "")
    return None if match is None else (int(match[1]), match[2])


def check_product(
    product: Any, contract: RequestContract, limits: Limits, where: str
) -> dict[str, Any]:
    if type(product) is not dict and not isinstance(product, Mapping):
        raise InvalidInputError("a product must be a JSON object of field: value", field=where)
    checks, max_chars = contract.checks, limits.max_text_chars
    clean: dict[str, Any] = {}
    for key, value in product.items():
        known = checks.get(key)
        if known is None:
            known = _in_another_form(key, product, contract, where)
        if known is None or value is None:
            continue
        field, plain_check = known
        parsed = SLOW if plain_check is None else plain_check(value, max_chars)
        if parsed is SLOW:
            parsed = check_value(value, field, limits, f"{where}.{key}")
        if parsed is not None:  # None: a blank number, a missing value
            clean[field.name] = parsed
    if not any(has_text(clean.get(name)) for name in contract.text_fields):
        raise InvalidInputError(missing_text_message(product, contract), field=where)
    return clean


def _in_another_form(
    key: Any, product: Mapping[str, Any], contract: RequestContract, where: str
) -> tuple[InputField, PlainCheck | None] | None:
    """The field a key names in another Unicode normal form than the contract's; None if it
    names none. `InvalidInputError` if the product also has the field under its own spelling."""
    name = contract.field_name(key) if isinstance(key, str) else None
    if name is None:
        return None
    if name in product:
        raise InvalidInputError(
            f"field {name!r} is given twice, in two Unicode normal forms: send it once",
            field=f"{where}.{key}",
        )
    return contract.checks[name]


def missing_text_message(product: Mapping[str, Any], contract: RequestContract) -> str:
    wanted = ", ".join(f"'{name}'" for name in contract.text_fields)
    if not any(isinstance(name, str) and contract.field_name(name) for name in product):
        given = ", ".join(f"'{name}'" for name in list(product)[:10]) or "no fields"
        return (
            f"the product has none of the model's input fields (it has {given}); the model "
            f"reads {', '.join(repr(n) for n in contract.names)} and needs a non-empty value in "
            f"one of {wanted} (GET /v1/model lists them)"
        )
    return f"a product needs a non-empty value in one of the model's text fields: {wanted}"


class InvalidItemError(InvalidInputError):
    """An item of a field's list (or a value of its object) the field's type does not take:
    `field` names the item (`products[0].Tags[1]`), `item` its path below the field (`[1]`),
    so that a route can name it in its own request's shape."""

    def __init__(self, message: str, *, field: str, item: str) -> None:
        super().__init__(message, field=field)
        self.item = item


def check_value(value: Any, field: InputField, limits: Limits, where: str) -> Any:
    """The value as the model reads it, or `InvalidInputError` if its type is wrong."""
    if field.role == "id" and is_finite_number(value):
        value = id_text(value)  # ids read from CSV files are often numbers
    parsed = CHECKERS[field.type](value)
    if parsed is INVALID:
        item = refused_item(value, field.type)
        if item is not None:
            raise InvalidItemError(item[1], field=f"{where}{item[0]}", item=item[0])
        wanted = f"must be {TYPE_NAMES[field.type]}"
        message = number_problem(value) if field.type == "number" else wanted
        raise InvalidInputError(message, field=where)
    chars = field_chars(parsed)
    if chars > limits.max_text_chars:
        raise InvalidInputError(
            f"{chars} characters, at most {limits.max_text_chars} per field", field=where
        )
    return parsed


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
    """Whether the model reads any text in a value: as `product_model.features.as_text` reads
    it (an object's keys and values, a list's items, a number's digits), so a product served
    here is one batch scoring scores too."""
    if type(value) is str or isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, Mapping):
        return any(has_text(str(key)) or has_text(item) for key, item in value.items())
    if isinstance(value, Sequence):
        return any(has_text(item) for item in value)
    return value is not None
