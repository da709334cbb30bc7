"""Input tensors against the model's fields (serving.v2_inputs): the shapes and datatypes each
field takes, as the model metadata declares them; null as a missing value; messages in JSON's
words, not Python's."""

from __future__ import annotations

import json
import math

import pytest

from serving.errors import BadRequestError
from serving.v2 import model_metadata, parse_infer_request
from serving.validation import InputField, RequestContract

CONTRACT = RequestContract(
    (
        InputField("Item Name", "text", "string"),
        InputField("Long Text", "text", "text"),
        InputField("info", "text", "json"),
        InputField("Vendor", "tokens", "tokens"),
        InputField("Size KB", "numeric", "number"),
        InputField("price", "numeric", "price"),
        InputField("SKU", "id", "string"),
    )
)
TITLE = {"name": "Item Name", "datatype": "BYTES", "shape": [1], "data": ["Perl module"]}


def tensor(name: str, datatype: str, shape: list[int], data: list) -> dict:
    return {"name": name, "datatype": datatype, "shape": shape, "data": data}


def parse(*inputs: dict, **header) -> list[dict]:
    body = json.dumps({"inputs": list(inputs), **header}).encode()
    return parse_infer_request(body, None, CONTRACT, 3).products


def with_title(given: dict) -> tuple[dict, ...]:
    """The inputs of a request with `given` and a title (the text a product needs)."""
    return (given,) if given["name"] == "Item Name" else (TITLE, given)


def refusal(*inputs: dict) -> str:
    with pytest.raises(BadRequestError) as caught:
        parse(*inputs)
    assert caught.value.status_code == 400
    return caught.value.message


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (
            tensor("Long Text", "BYTES", [1, 2], [["Perl module for XML", "parses files"]]),
            None,  # a `text` field takes a list per product
        ),
        (
            tensor("Item Name", "BYTES", [1, 2], [["Perl module for XML", "parses files"]]),
            "input 'Item Name' takes one string per row: shape [rows] or [rows, 1] (got [1, 2]), "
            "datatype BYTES",
        ),
        (
            tensor("Item Name", "FP32", [1], [1.5]),
            "input 'Item Name' takes one string per row: shape [rows] or [rows, 1], "
            "datatype BYTES (got FP32)",
        ),
        (
            tensor("Item Name", "FP64", [1, 2], [1, 2]),
            "input 'Item Name' takes one string per row: shape [rows] or [rows, 1] (got [1, 2]), "
            "datatype BYTES (got FP64)",
        ),
        (
            tensor("Long Text", "INT32", [1], [7]),
            "input 'Long Text' takes one string or a list of strings per row: shape [rows] or "
            "[rows, items], datatype BYTES (got INT32)",
        ),
        (
            tensor("Size KB", "FP64", [1, 2], [1, 2]),
            "input 'Size KB' takes one number per row: shape [rows] or [rows, 1] (got [1, 2]), "
            "datatype FP64 (or another number datatype, or BYTES)",
        ),
        (
            tensor("price", "BYTES", [1, 2], [["$12.99", "$1"]]),
            "input 'price' takes one price per row: shape [rows] or [rows, 1] (got [1, 2]), "
            'datatype FP64 (or BYTES for a text such as "$12.99")',
        ),
        (
            tensor("SKU", "INT64", [1, 2], [[1, 2]]),
            "input 'SKU' takes one id per row: shape [rows] or [rows, 1] (got [1, 2]), "
            "datatype BYTES (or a number datatype)",
        ),
    ],
)
def test_a_shape_or_datatype_the_input_does_not_take_is_named_in_tensor_terms(
    given: dict, message: str | None
) -> None:
    """Not "row 0: must be a string", nor "must be a finite number" for values that are finite
    numbers: the message names the shape and datatype the input takes, and what was sent."""
    inputs = (given,) if given["name"] == "Long Text" else with_title(given)
    if message is None:
        assert parse(*inputs) == [{"Long Text": ["Perl module for XML", "parses files"]}]
    else:
        assert refusal(*inputs) == message


def test_a_column_shaped_rows_by_1_is_one_value_per_row() -> None:
    """Triton and MLServer clients send a column as [rows, 1]: a field of one value per row
    reads it so; a field taking a list reads a one-item list."""
    products = parse(
        tensor("Item Name", "BYTES", [2, 1], [["Perl module"], ["chess game"]]),
        tensor("price", "FP64", [2, 1], [12.5, 3]),
        tensor("SKU", "BYTES", [2, 1], ["a-1", "b-2"]),
        tensor("Long Text", "BYTES", [2, 1], ["parses XML", "plays chess"]),
    )
    assert products == [
        {"Item Name": "Perl module", "price": 12.5, "SKU": "a-1", "Long Text": ["parses XML"]},
        {"Item Name": "chess game", "price": 3, "SKU": "b-2", "Long Text": ["plays chess"]},
    ]


def test_every_input_takes_the_shape_and_datatype_its_metadata_declares() -> None:
    """What the metadata says is always taken: [-1, -1] a list per product (and [rows] too),
    [-1] one value per product, and only that."""
    sample = {"BYTES": "12", "FP64": 12.0}
    for declared in model_metadata("m", "1", CONTRACT)["inputs"]:
        name, datatype = declared["name"], declared["datatype"]
        value = sample[datatype]
        assert parse(*with_title(tensor(name, datatype, [1], [value])))
        two = with_title(tensor(name, datatype, [1, 2], [[value, value]]))
        if declared["shape"] == [-1, -1]:
            assert parse(*two)
        else:
            assert declared["shape"] == [-1], declared
            assert "per row: shape [rows] or [rows, 1] (got [1, 2])" in refusal(*two)


@pytest.mark.parametrize("datatype", ["FP16", "FP32", "FP64"])
def test_null_in_a_float_tensor_is_a_missing_value(datatype: str) -> None:
    """As MLServer reads it (null becomes NaN): JSON has no NaN to send instead."""
    titles = tensor("Item Name", "BYTES", [2], ["Perl module", "Haskell library"])
    size = tensor("Size KB", datatype, [2], [None, 12])
    vendors = tensor("Vendor", datatype, [2, 2], [[None, 3], [None, None]])
    assert parse(titles, size, vendors) == [
        {"Item Name": "Perl module", "Vendor": [3]},
        {"Item Name": "Haskell library", "Size KB": 12},
    ]


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (
            tensor("Size KB", "INT64", [1], [None]),
            "input 'Size KB' (INT64): element 0 must be a number, not null; INT64 has no "
            "missing value: declare the input FP64 to send null for one",
        ),
        (
            tensor("SKU", "BYTES", [1], [None]),
            "input 'SKU' (BYTES): element 0 must be a string, not null; a missing value in a "
            'BYTES input is an empty string ("")',
        ),
        (tensor("Size KB", "FP64", [1], ["12"]), 'element 0 must be a number, not "12"'),
        (tensor("SKU", "BYTES", [1], [{"a": True}]), 'must be a string, not {"a": true}'),
        (tensor("Size KB", "INT8", [1], [2.0]), "from -128 to 127, not 2.0 (declare"),
        ({"name": "SKU", "datatype": None, "shape": [1], "data": [1]}, "field `datatype` is"),
        (tensor("SKU", "bytes", [1], ["a"]), "input 'SKU': datatype \"bytes\" is not supported"),
        (
            tensor("SKU", "BYTES", "1", ["a"]),
            'items] (a list of at least one item per product), not "1"',
        ),
        (tensor("SKU", "BYTES", [True], ["a"]), "not [true]"),
    ],
)
def test_messages_write_values_as_json_does(given: dict, message: str) -> None:
    got = refusal(TITLE, given)
    assert message in got, got
    for python in ("None", "'12'", "True", "{'a'"):
        assert python not in got, got


def test_no_message_offers_nan_without_null() -> None:
    """NaN is no JSON a client's encoder writes; a message that names it names null too."""
    messages = [
        refusal(TITLE, tensor("Size KB", "BYTES", [1], ["n/a"])),
        refusal(TITLE, tensor("Size KB", "FP16", [1], [math.inf])),
        refusal(tensor("Item Name", "BYTES", [1], [""])),
        refusal(TITLE, tensor("Size KB", "INT32", [1], [None])),
    ]
    for message in messages:
        assert "NaN" not in message or "null" in message, message
        assert "null" in message or 'empty string ("")' in message, message


def test_nested_data_is_read_flat_when_its_length_fits_the_shape() -> None:
    """As Triton reads it: nested `data` is flattened in row-major order, whatever its nesting."""
    nested = tensor("Item Name", "BYTES", [2], [["perl a", "haskell b"]])
    assert parse(nested) == [{"Item Name": "perl a"}, {"Item Name": "haskell b"}]


def test_null_in_a_bytes_input_of_a_list_field_is_a_skipped_item() -> None:
    """As `/v1/predict`, training and batch scoring skip a null item of a list (`[null, "x"]` is
    `["x"]`); the protocol refused the request (400, "element 0 must be a string, not null")."""
    titles = tensor("Item Name", "BYTES", [2], ["Go library", "Perl module"])
    vendors = [[None, "devel::lang:go"], ["devel::lang:perl", None]]
    with_nulls = parse(titles, tensor("Vendor", "BYTES", [2, 2], vendors))
    padded = [["", "devel::lang:go"], ["devel::lang:perl", ""]]
    assert with_nulls == parse(titles, tensor("Vendor", "BYTES", [2, 2], padded))
    assert with_nulls == [
        {"Item Name": "Go library", "Vendor": ["devel::lang:go"]},
        {"Item Name": "Perl module", "Vendor": ["devel::lang:perl"]},
    ]
    one_per_row = parse(
        tensor("Long Text", "BYTES", [2], [None, "Perl module"]),
        tensor("info", "BYTES", [2, 1], [["Go"], [None]]),
    )
    assert one_per_row == [{"info": ["Go"]}, {"Long Text": "Perl module"}]


def test_a_null_bytes_element_that_is_no_list_item_is_still_refused_by_name() -> None:
    assert refusal(TITLE, tensor("SKU", "BYTES", [1], [None])).startswith(
        "input 'SKU' (BYTES): element 0 must be a string, not null"
    )
    only_nulls = tensor("Long Text", "BYTES", [1, 2], [[None, None]])
    assert refusal(only_nulls) == (
        "row 0 has no text: input 'Long Text' has 2 items, none with text (empty strings and "
        "nulls are padding). Each product needs a non-empty value in one of the model's text "
        "inputs ('Item Name', 'Long Text', 'info'); an empty string, null or NaN is a missing "
        "value"
    )
