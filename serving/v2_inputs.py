"""The input tensors of an Open Inference Protocol (v2) request as product records: checked
against the model's contract (known names, each once, a shape and datatype the field takes, one
row count, numbers that read as numbers, some text in every row), then one product per row keyed
by the field names, without padding or missing values.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from serving.contract_types import CHECKERS, INVALID, number_problem
from serving.errors import BadRequestError
from serving.v2_tensors import BinarySection, Tensor, flatten, json_text, read_tensor
from serving.validation import InputField, RequestContract, has_text

STRUCTURED_TYPES = ("json", "tokens")
"""Contract types whose values may be objects or lists: sent as JSON text in a BYTES element."""
MISSING_HINT = (
    'for a missing value send null in an FP64 input, or an empty string ("") in a BYTES input'
)
"""How a tensor sends a missing number (JSON has no NaN; a BYTES element cannot be null)."""


@dataclass(frozen=True)
class TensorForm:
    """The tensors a field takes, as its contract type reads a product's value: what one row
    holds, whether a row may be a list of items ([rows, items]), whether a number datatype
    may carry it, and how a message names the datatypes."""

    holds: str
    lists: bool
    numbers: bool
    datatypes: str

    def shapes(self) -> str:
        return "[rows] or [rows, items]" if self.lists else "[rows] or [rows, 1]"


ANY_VALUES = TensorForm("a value or a list of values", True, True, "BYTES or a number datatype")
FORMS = {
    "string": TensorForm("one string", False, False, "BYTES"),
    "text": TensorForm("one string or a list of strings", True, False, "BYTES"),
    "tokens": ANY_VALUES,
    "json": ANY_VALUES,
    "number": TensorForm("one number", False, True, "FP64 (or another number datatype, or BYTES)"),
    "price": TensorForm("one price", False, True, 'FP64 (or BYTES for a text such as "$12.99")'),
}
ID_FORM = TensorForm("one id", False, True, "BYTES (or a number datatype)")
"""An id field is typed `string` but also takes a number, as ids read from CSV files often are."""


def form_of(field: InputField) -> TensorForm:
    """The tensors a field takes (a type this server does not know: any it can read)."""
    return ID_FORM if field.role == "id" else FORMS.get(field.type, ANY_VALUES)


def read_inputs(specs: Any, binary: BinarySection, contract: RequestContract) -> list[Tensor]:
    """The request's input tensors, with the model's names, each once, all of one row count."""
    if not isinstance(specs, list) or not specs:
        raise BadRequestError("`inputs` must be a non-empty list of input tensors")
    tensors = [read_tensor(nulls_as_padding(spec, contract), binary) for spec in specs]
    binary.check_consumed()
    tensors = [as_column(t, contract) for t in named_as_fields(tensors, contract)]
    for tensor in tensors:
        check_form(tensor, contract)
    rows = {t.rows for t in tensors}
    if len(rows) > 1:
        sizes = ", ".join(f"'{t.name}' has {t.rows}" for t in tensors)
        raise BadRequestError(f"all inputs must have the same number of rows (shape[0]): {sizes}")
    if rows == {0}:
        raise BadRequestError(
            f"input '{tensors[0].name}' has no rows (shape {list(tensors[0].shape)}): send one "
            'row per product, at least one, e.g. "shape": [1], "data": ["a product title"]'
        )
    return tensors


def nulls_as_padding(spec: Any, contract: RequestContract) -> Any:
    """The input with each null of its JSON `data` an empty string, for a BYTES input whose
    field takes a list per product (`text`, `tokens`, `json`): a null item is skipped, as
    training, batch scoring and `/v1/predict` skip a null item of a list. Any other input as
    sent (a BYTES element of a single-valued field cannot be null: its missing value is "")."""
    if not isinstance(spec, Mapping) or spec.get("datatype") != "BYTES":
        return spec
    data, name = spec.get("data"), spec.get("name")
    if not isinstance(data, list) or not isinstance(name, str):
        return spec
    field = contract.field_name(name)
    if field is None or not form_of(contract.checks[field][0]).lists:
        return spec
    flat = flatten(data)  # read in row-major order, as `read_tensor` reads nested data
    if None not in flat:
        return spec
    return {**spec, "data": ["" if value is None else value for value in flat]}


def named_as_fields(tensors: list[Tensor], contract: RequestContract) -> list[Tensor]:
    """The tensors named as the contract names its fields (names compared after Unicode NFC
    normalisation), each once, at least one of them a text input."""
    named: list[Tensor] = []
    for tensor in tensors:
        name = contract.field_name(tensor.name)
        if name is None:
            raise BadRequestError(
                f"unknown input '{tensor.name}': the model's inputs are "
                f"{', '.join(repr(n) for n in contract.names)} (see the model metadata)"
            )
        if any(t.name == name for t in named):
            raise BadRequestError(f"input '{tensor.name}' is given twice")
        named.append(tensor if name == tensor.name else dataclasses.replace(tensor, name=name))
    seen = {t.name for t in named}
    if not seen & set(contract.text_fields):
        wanted = ", ".join(repr(n) for n in contract.text_fields)
        raise BadRequestError(
            f"the request has none of the model's text inputs: send one of {wanted}"
        )
    return named


def as_column(tensor: Tensor, contract: RequestContract) -> Tensor:
    """A `[rows, 1]` tensor of a field that takes one value per row, as `[rows]`: the shape
    Triton and MLServer clients give a column (a field taking a list reads it as one item)."""
    if len(tensor.shape) != 2 or tensor.shape[1] != 1:
        return tensor
    if form_of(contract.checks[tensor.name][0]).lists:
        return tensor
    return dataclasses.replace(tensor, shape=tensor.shape[:1])


def check_form(tensor: Tensor, contract: RequestContract) -> None:
    """A tensor's shape and datatype must be ones its field takes: said in tensor terms, not as
    a complaint about the value of row 0 (a list where the field takes one string)."""
    form = form_of(contract.checks[tensor.name][0])
    shape_fits = len(tensor.shape) == 1 or form.lists
    datatype_fits = tensor.datatype == "BYTES" or form.numbers
    if shape_fits and datatype_fits:
        return
    got_shape = "" if shape_fits else f" (got {list(tensor.shape)})"
    got_datatype = "" if datatype_fits else f" (got {tensor.datatype})"
    raise BadRequestError(
        f"input '{tensor.name}' takes {form.holds} per row: shape {form.shapes()}{got_shape}, "
        f"datatype {form.datatypes}{got_datatype}"
    )


def products_of(tensors: list[Tensor], contract: RequestContract) -> list[dict[str, Any]]:
    """One product per row; `BadRequestError` for a row with no text in any text input."""
    rows = tensors[0].rows
    products: list[dict[str, Any]] = [{} for _ in range(rows)]
    structured = {f.name for f in contract.fields if f.type in STRUCTURED_TYPES}
    for tensor in tensors:
        decode = tensor.name in structured and tensor.datatype == "BYTES"
        for index, product in enumerate(products):
            value = present(tensor.row(index))
            if decode:
                value = [decoded(v) for v in value] if isinstance(value, list) else decoded(value)
            if value is not None:
                product[tensor.name] = value
    check_numbers(products, contract)
    check_rows_have_text(tensors, products, contract)
    return products


def check_numbers(products: list[dict[str, Any]], contract: RequestContract) -> None:
    """Every value of a number input must read as a number, as the service requires. Said
    here, in tensor terms: a missing number is null (or NaN) in a float tensor, or an empty
    BYTES element, which cannot be null."""
    numbers = [f.name for f in contract.fields if f.type == "number"]
    for index, product in enumerate(products):
        for name in numbers:
            value = product.get(name)
            if value is not None and CHECKERS["number"](value) is INVALID:
                problem = number_problem(value, MISSING_HINT)
                raise BadRequestError(f"input '{name}', row {index}: {problem}")


def check_rows_have_text(
    tensors: list[Tensor], products: list[dict[str, Any]], contract: RequestContract
) -> None:
    """Every row needs text in one of the text inputs, as the service requires of a product.
    Said here, in tensor terms: once "", null and NaN are dropped as missing values, the service
    would see a product without the inputs that were in fact sent."""
    text_tensors = [t for t in tensors if t.name in contract.text_fields]
    for index, product in enumerate(products):
        if not any(has_text(product.get(t.name)) for t in text_tensors):
            sent = "; ".join(f"input '{t.name}' {emptiness(t.row(index))}" for t in text_tensors)
            wanted = ", ".join(repr(n) for n in contract.text_fields)
            raise BadRequestError(
                f"row {index} has no text: {sent}. Each product needs a non-empty value in one "
                f"of the model's text inputs ({wanted}); an empty string, null or NaN is a "
                "missing value"
            )


def emptiness(value: Any) -> str:
    """What a text input's element (or a 2-D row's items) holds, when it holds no text."""
    if isinstance(value, list):
        return f"has {len(value)} items, none with text (empty strings and nulls are padding)"
    if isinstance(value, float) and math.isnan(value):
        return "is null or NaN"
    if value == "":
        return 'is an empty string ("")'
    if isinstance(value, str) and not value.strip():
        return "holds only whitespace"
    if isinstance(value, str):  # JSON text for a json or tokens input, such as "{}"
        return f"is {json.dumps(value, ensure_ascii=False)}, JSON with no text in it"
    return f"is {json_text(value)}, which holds no text"


def decoded(value: Any) -> Any:
    """A BYTES element holding a JSON object or array, as that object or array; else as sent."""
    if isinstance(value, str) and value.startswith(("{", "[")):
        try:
            return json.loads(value)
        except (ValueError, RecursionError):
            return value
    return value


def present(value: Any) -> Any:
    """The value without padding: None for an empty string or NaN (null in a float tensor),
    lists without them."""
    if isinstance(value, list):
        items = [item for item in value if present(item) is not None]
        return items or None
    if value == "" or (isinstance(value, float) and math.isnan(value)):
        return None
    return value
