"""The Open Inference Protocol's parsing and encoding (serving.v2, serving.v2_tensors), no HTTP."""

from __future__ import annotations

import json
import math
import struct
import unicodedata

import numpy as np
import pytest

from serving.errors import BadRequestError, InvalidInputError
from serving.v2 import (
    encode_infer_response,
    model_metadata,
    parse_infer_request,
    protocol_error_body,
    rejected_input,
)
from serving.v2_tensors import decode_bytes, encode_bytes
from serving.validation import InputField, Limits, RequestContract, check_products

CONTRACT = RequestContract(
    (
        InputField("Product Title", "text", "string"),
        InputField("description", "text", "text"),
        InputField("brand", "tokens", "tokens"),
        InputField("Weight (g)", "numeric", "number"),
        InputField("price", "numeric", "price"),
        InputField("sku", "id", "string"),
    )
)


def tensor(name: str, data: list, datatype: str = "BYTES", shape: list | None = None) -> dict:
    return {"name": name, "datatype": datatype, "shape": shape or [len(data)], "data": data}


def parse(header: dict, binary: bytes = b"", header_length: int | None = None):
    body = json.dumps(header).encode()
    if binary or header_length is not None:
        header_length = len(body) if header_length is None else header_length
    return parse_infer_request(body + binary, header_length, CONTRACT, 3)


def binary_input(name: str, datatype: str, shape: list, raw: bytes) -> dict:
    parameters = {"binary_data_size": len(raw)}
    return {"name": name, "datatype": datatype, "shape": shape, "parameters": parameters}


def test_metadata_has_one_input_per_field_and_the_four_outputs() -> None:
    meta = model_metadata("m", "7", CONTRACT)
    assert meta["name"] == "m" and meta["versions"] == ["7"]
    assert [(i["name"], i["datatype"], i["shape"]) for i in meta["inputs"]] == [
        ("Product Title", "BYTES", [-1]),  # a `string`: one per product
        ("description", "BYTES", [-1, -1]),  # a `text`: a list of paragraphs per product
        ("brand", "BYTES", [-1, -1]),
        ("Weight (g)", "FP64", [-1]),
        ("price", "FP64", [-1]),
        ("sku", "BYTES", [-1]),
    ]
    assert [(o["name"], o["datatype"], o["shape"]) for o in meta["outputs"]] == [
        ("label", "BYTES", [-1]),
        ("probability", "FP32", [-1]),
        ("top_labels", "BYTES", [-1, -1]),
        ("top_probabilities", "FP32", [-1, -1]),
    ]


def test_json_tensors_become_products_keyed_by_field_name() -> None:
    request = parse(
        {
            "id": "req-1",
            "inputs": [
                tensor("Product Title", ["Chess for X11", "Perl XML parser"]),
                tensor("Weight (g)", [[12.5], [3]], "FP64", [2]),  # nested data is flattened
                tensor("brand", [["Acme", ""], ["Foo", "Bar"]], shape=[2, 2]),
            ],
            "parameters": {"top_k": 5},
        }
    )
    assert request.id == "req-1" and request.top_k == 5
    assert request.products == [
        {"Product Title": "Chess for X11", "Weight (g)": 12.5, "brand": ["Acme"]},
        {"Product Title": "Perl XML parser", "Weight (g)": 3, "brand": ["Foo", "Bar"]},
    ]
    assert [(o.name, o.binary) for o in request.outputs] == [
        ("label", False),
        ("probability", False),
        ("top_labels", False),
        ("top_probabilities", False),
    ]


def test_empty_strings_and_nan_are_missing_values() -> None:
    raw = np.array([math.nan, 4.0], "<f8").tobytes()
    request = parse(
        {
            "inputs": [
                tensor("Product Title", ["a", "b"]),
                tensor("sku", ["", "x1"]),
                binary_input("Weight (g)", "FP64", [2], raw),
            ]
        },
        raw,
    )
    assert request.products == [
        {"Product Title": "a"},
        {"Product Title": "b", "sku": "x1", "Weight (g)": 4.0},
    ]


def test_binary_bytes_and_numbers_after_the_json_header() -> None:
    titles = encode_bytes(["Échecs ✓", "Perl"])
    weights = np.array([1.5, 2], "<f4").tobytes()
    request = parse(
        {
            "inputs": [
                binary_input("Product Title", "BYTES", [2], titles),
                binary_input("Weight (g)", "FP32", [2], weights),
            ],
            "outputs": [{"name": "label", "parameters": {"binary_data": True}}],
        },
        titles + weights,
    )
    assert request.products == [
        {"Product Title": "Échecs ✓", "Weight (g)": 1.5},
        {"Product Title": "Perl", "Weight (g)": 2.0},
    ]
    assert [(o.name, o.binary) for o in request.outputs] == [("label", True)]


def test_bytes_codec_round_trips() -> None:
    values = ["", "a", "ünïcode 🚀"]
    assert decode_bytes("x", encode_bytes(values), 3) == values
    assert encode_bytes(["ab"]) == struct.pack("<I", 2) + b"ab"


TITLE = tensor("Product Title", ["a"])


@pytest.mark.parametrize(
    ("header", "binary", "message"),
    [
        ({"inputs": []}, b"", "non-empty list"),
        ({"inputs": [tensor("colour", ["red"])]}, b"", "unknown input 'colour'"),
        ({"inputs": [TITLE, TITLE]}, b"", "given twice"),
        ({"inputs": [tensor("brand", ["Acme"])]}, b"", "none of the model's text inputs"),
        (
            {"inputs": [TITLE, tensor("brand", ["A", "B"])]},
            b"",
            "same number of rows (shape[0]): 'Product Title' has 1, 'brand' has 2",
        ),
        ({"inputs": [tensor("Product Title", ["a", "b"], shape=[3])]}, b"", "2 values in data"),
        ({"inputs": [tensor("Product Title", ["a"], shape=[1, 1, 1])]}, b"", "shape must be"),
        ({"inputs": [tensor("Product Title", [], shape=[10**9, 0])]}, b"", "shape must be"),
        ({"inputs": [tensor("Product Title", [], shape=[2**32, 2**32])]}, b"", "0 values in data"),
        ({"inputs": [tensor("Product Title", [1])]}, b"", "must be a string"),
        ({"inputs": [tensor("Weight (g)", ["1"], "FP64")]}, b"", 'must be a number, not "1"'),
        ({"inputs": [tensor("Product Title", [True], "BOOL")]}, b"", 'datatype "BOOL" is not'),
        (
            {"inputs": [{"name": "Product Title", "datatype": "BYTES", "shape": [1]}]},
            b"",
            "neither data",
        ),
        (
            {"inputs": [binary_input("Product Title", "BYTES", [1], encode_bytes(["a"]))]},
            encode_bytes(["a"]) + b"xx",
            "2 bytes of binary data",
        ),
        (
            {"inputs": [binary_input("Product Title", "BYTES", [1], b"\x05\x00\x00\x00abcde")]},
            b"\x05\x00\x00\x00ab",
            "only 6 bytes",
        ),
        (
            {"inputs": [binary_input("Product Title", "BYTES", [1], b"\x02\x00\x00\x00\xff\xfe")]},
            b"\x02\x00\x00\x00\xff\xfe",
            "not UTF-8",
        ),
        (
            {"inputs": [binary_input("Weight (g)", "FP64", [2], b"\x00" * 8)]},
            b"\x00" * 8,
            "2 FP64 values take 16",
        ),
        (
            {"inputs": [{**TITLE, "parameters": {"shared_memory_region": "r"}}]},
            b"",
            "shared-memory extension is not supported",
        ),
        ({"inputs": [TITLE], "parameters": {"top_k": 0}}, b"", "top_k"),
        ({"inputs": [TITLE], "parameters": {"top_k": True}}, b"", "top_k"),
        ({"inputs": [TITLE], "outputs": [{"name": "score"}]}, b"", "unknown output 'score'"),
        (
            {
                "inputs": [TITLE],
                "outputs": [{"name": "label", "parameters": {"classification": 3}}],
            },
            b"",
            "classification",
        ),
        ({"inputs": [TITLE], "id": 5}, b"", "`id` must be a string"),
        ({"inputs": [TITLE], "parameters": []}, b"", "`parameters` must be an object"),
        ({"inputs": [TITLE], "parameters": 0}, b"", 'such as {"top_k": 3}, not 0'),
        ({"inputs": [TITLE], "parameters": False}, b"", "must be an object such as"),
        (
            {"inputs": [TITLE], "parameters": ""},
            b"",
            'must be an object such as {"top_k": 3}, not ""',
        ),
        (
            {"inputs": [TITLE], "outputs": [{"name": "label", "parameters": []}]},
            b"",
            "output 'label': parameters must be an object, not []",
        ),
        ({"inputs": [TITLE], "outputs": [{"name": None}]}, b"", 'object with a string "name"'),
        ({"inputs": [TITLE], "outputs": ["label"]}, b"", 'object with a string "name"'),
    ],
)
def test_bad_requests_are_refused_with_a_message(header: dict, binary: bytes, message: str) -> None:
    with pytest.raises(BadRequestError, match=None) as caught:
        parse(header, binary)
    assert caught.value.status_code == 400
    assert message in caught.value.message, caught.value.message


@pytest.mark.parametrize(
    ("datatype", "value", "message"),
    [
        (
            "INT8",
            1000,
            "input 'Weight (g)' (INT8): element 1 must be a whole number from -128 to 127",
        ),
        ("INT8", -129, "from -128 to 127, not -129"),
        ("INT64", 1.5, "(INT64): element 1 must be a whole number"),
        ("INT32", 2.0, "not 2.0"),  # a whole number written as a float is a float in JSON
        ("UINT8", -1, "(UINT8): element 1 must be a whole number from 0 to 255, not -1"),
        ("UINT64", 2**64, "from 0 to 18446744073709551615"),
        ("FP16", 70000, "(FP16): element 1 must be a number from -65504 to 65504"),
        ("FP32", 1e300, "(FP32): element 1 must be a number from -3.40282e+38 to 3.40282e+38"),
        ("FP64", 10**400, "(FP64): element 1 must be a number from"),
    ],
)
def test_json_values_must_fit_the_declared_datatype(datatype, value, message) -> None:
    with pytest.raises(BadRequestError) as caught:
        parse(
            {
                "inputs": [
                    tensor("Product Title", ["a", "b"]),
                    tensor("Weight (g)", [1, value], datatype),
                ]
            }
        )
    assert caught.value.status_code == 400
    assert message in caught.value.message, caught.value.message


@pytest.mark.parametrize(
    ("datatype", "value"),
    [
        ("INT8", -128),
        ("UINT64", 2**64 - 1),
        ("FP32", 3),  # a whole number is a number
        ("FP32", float("nan")),
        ("FP16", 65504.0),  # infinity fits too, but is no number a field takes (below)
        ("FP64", 1.7e308),
    ],
)
def test_json_values_that_fit_their_datatype_are_taken(datatype, value) -> None:
    request = parse({"inputs": [TITLE, tensor("Weight (g)", [value], datatype)]})
    weight = request.products[0].get("Weight (g)")
    assert weight == value or (math.isnan(value) and weight is None)


@pytest.mark.parametrize("missing", ["datatype", "shape"])
@pytest.mark.parametrize("given", ["absent", None])
def test_a_missing_datatype_or_shape_is_named_as_missing(missing, given) -> None:
    spec = {k: v for k, v in TITLE.items() if k != missing}
    if given is None:
        spec[missing] = None
    with pytest.raises(BadRequestError) as caught:
        parse({"inputs": [spec]})
    assert caught.value.message.startswith(
        f"input 'Product Title': field `{missing}` is required"
    ), caught.value.message
    assert "None" not in caught.value.message


def test_numbers_as_bytes_read_as_the_other_routes_read_them() -> None:
    """A BYTES element for a number field: blank is missing, "1e3" a number, other text a 400
    that says how to send it (the service's check, named in tensor terms)."""
    limits = Limits(max_products=10, max_text_chars=100)
    values = ["", " ", "1e3", ".5", "+3"]
    request = parse({"inputs": [tensor("Product Title", ["a"] * 5), tensor("Weight (g)", values)]})
    checked = check_products(request.products, CONTRACT, limits)
    assert [p.get("Weight (g)") for p in checked] == [None, None, 1000.0, 0.5, 3.0]
    with pytest.raises(BadRequestError) as caught:
        parse({"inputs": [tensor("Product Title", ["a"]), tensor("Weight (g)", ["9,99"])]})
    message = caught.value.message
    assert message.startswith("input 'Weight (g)', row 0: must be a number written with '.'")


@pytest.mark.parametrize(
    ("values", "datatype", "row"),
    [
        (["2", "n/a"], "BYTES", 1),
        (["n/a", ""], "BYTES", 0),
        ([1.0, float("inf")], "FP16", 1),
    ],
)
def test_a_number_input_that_is_no_number_says_how_a_tensor_sends_a_missing_one(
    values, datatype, row
) -> None:
    """JSON has no NaN and a BYTES element cannot be null: the message says null or ""."""
    inputs = [tensor("Product Title", ["a", "b"]), tensor("Weight (g)", values, datatype)]
    with pytest.raises(BadRequestError) as caught:
        parse({"inputs": inputs})
    message = caught.value.message
    assert message.startswith(f"input 'Weight (g)', row {row}: must be a finite number"), message
    assert message.endswith('send null in an FP64 input, or an empty string ("") in a BYTES input)')
    assert "NaN" not in message


def test_input_names_match_the_fields_in_another_unicode_normal_form() -> None:
    weight = unicodedata.normalize("NFD", "Gewicht (ö)")  # looks the same, another name
    contract = RequestContract(
        (
            InputField("Product Title", "text", "string"),
            InputField("Gewicht (ö)", "numeric", "number"),
        )
    )
    body = {"inputs": [tensor("Product Title", ["a"]), tensor(weight, ["2"])]}
    request = parse_infer_request(json.dumps(body).encode(), None, contract, 3)
    assert request.products == [{"Product Title": "a", "Gewicht (ö)": "2"}]
    twice = {"inputs": [*body["inputs"], tensor("Gewicht (ö)", ["3"])]}
    with pytest.raises(BadRequestError, match="is given twice"):
        parse_infer_request(json.dumps(twice).encode(), None, contract, 3)


def test_a_number_of_too_many_digits_is_named_not_pythons_advice() -> None:
    body = b'{"inputs": [{"name": "sku", "datatype": "INT64", "shape": [1], "data": [' + (
        b"7" * 5000 + b"]}]}"
    )
    with pytest.raises(BadRequestError) as caught:
        parse_infer_request(body, None, CONTRACT, 3)
    message = caught.value.message
    assert "a number in the body has more than 4300 digits (5000 digits, at line 1" in message
    assert "sys." not in message and "set_int_max_str_digits" not in message


def test_header_length_must_fit_and_header_must_be_json() -> None:
    with pytest.raises(BadRequestError, match="longer than the body"):
        parse_infer_request(b"{}", 10, CONTRACT, 3)
    with pytest.raises(BadRequestError, match="the JSON header is not valid JSON"):
        parse_infer_request(b'{"inputs": [}xx', 13, CONTRACT, 3)
    with pytest.raises(BadRequestError, match="the body is not valid JSON"):
        parse_infer_request(b"not json", None, CONTRACT, 3)
    with pytest.raises(BadRequestError, match="nested too deeply"):
        parse_infer_request(b"[" * 100_000 + b"]" * 100_000, None, CONTRACT, 3)


PREDICTIONS = [
    {
        "label": "Software",
        "probability": 0.75,
        "top_k": [
            {"label": "Software", "probability": 0.75},
            {"label": "Games", "probability": 0.25},
        ],
    },
    {
        "label": "Jeux ✓",
        "probability": 0.5,
        "top_k": [
            {"label": "Jeux ✓", "probability": 0.5},
            {"label": "Software", "probability": 0.5},
        ],
    },
]


def test_json_response_keeps_the_id_and_flattens_top_k_rows() -> None:
    request = parse({"id": "abc", "inputs": [TITLE]})
    body, header_length = encode_infer_response(request, "m", "3", PREDICTIONS)
    assert header_length is None
    answer = json.loads(body)
    assert (answer["id"], answer["model_name"], answer["model_version"]) == ("abc", "m", "3")
    outputs = {o["name"]: o for o in answer["outputs"]}
    assert outputs["label"] == {
        "name": "label",
        "datatype": "BYTES",
        "shape": [2],
        "data": ["Software", "Jeux ✓"],
    }
    assert outputs["probability"]["data"] == [0.75, 0.5]
    assert outputs["top_labels"]["shape"] == [2, 2]
    assert outputs["top_labels"]["data"] == ["Software", "Games", "Jeux ✓", "Software"]
    assert outputs["top_probabilities"]["data"] == [0.75, 0.25, 0.5, 0.5]


def test_binary_response_puts_asked_outputs_after_the_header() -> None:
    request = parse(
        {
            "inputs": [TITLE],
            "parameters": {"binary_data_output": True},
            "outputs": [
                {"name": "top_probabilities"},
                {"name": "label", "parameters": {"binary_data": False}},
            ],
        }
    )
    body, header_length = encode_infer_response(request, "m", "3", PREDICTIONS)
    assert header_length is not None
    header = json.loads(body[:header_length])
    assert "id" not in header
    first, second = header["outputs"]
    assert first["parameters"] == {"binary_data_size": 16} and "data" not in first
    assert second["data"] == ["Software", "Jeux ✓"]
    raw = body[header_length:]
    assert np.frombuffer(raw, "<f4").tolist() == [0.75, 0.25, 0.5, 0.5]


def test_service_complaints_are_named_in_tensor_terms() -> None:
    error = rejected_input(InvalidInputError("must be a string", field="products[3].Product Title"))
    assert error.status_code == 400
    assert error.message == "input 'Product Title', row 3: must be a string"
    assert (
        rejected_input(InvalidInputError("no text", field="products[0]")).message
        == "row 0: no text"
    )
    assert rejected_input(InvalidInputError("too many", field="products")).message == "too many"


def test_error_bodies_in_the_protocols_form() -> None:
    ours = json.dumps({"error": {"code": "x", "message": "too large"}, "request_id": "r"})
    assert json.loads(protocol_error_body(ours.encode())) == {"error": "too large"}
    assert json.loads(protocol_error_body(b'{"error": "as is"}')) == {"error": "as is"}
    assert json.loads(protocol_error_body(b"plain text")) == {"error": "plain text"}


def test_objects_and_lists_for_json_and_tokens_fields_come_as_json_text() -> None:
    contract = RequestContract(
        (
            InputField("info", "text", "json"),
            InputField("details", "tokens", "tokens"),
            InputField("title", "text", "string"),
        )
    )
    info = {"name": "cmake-fedora", "tags": ["devel::lang"]}
    header = {
        "inputs": [
            tensor("info", [json.dumps(info), "[not json", ""]),
            tensor("details", ['{"Color": "red"}', "[1, 2]", "plain"]),
            tensor("title", ['{"kept": "as text"}', "b", "c"]),
        ]
    }
    body = json.dumps(header).encode()
    products = parse_infer_request(body, None, contract, 3).products
    assert products[0] == {
        "info": info,
        "details": {"Color": "red"},
        "title": '{"kept": "as text"}',
    }
    assert products[1] == {"info": "[not json", "details": [1, 2], "title": "b"}
    assert products[2] == {"details": "plain", "title": "c"}


WITH_JSON = RequestContract(
    (
        InputField("title", "text", "string"),
        InputField("info", "text", "json"),
        InputField("brand", "tokens", "tokens"),
    )
)


def parse_for(contract: RequestContract, *inputs: dict) -> list[dict]:
    body = json.dumps({"inputs": list(inputs)}).encode()
    return parse_infer_request(body, None, contract, 3).products


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ([tensor("title", [""])], "row 0 has no text: input 'title' is an empty string"),
        ([tensor("title", [""], shape=[1])], "input 'title' is an empty string"),
        ([tensor("title", [], shape=[0])], "input 'title' has no rows (shape [0])"),
        ([tensor("title", ["   "])], "input 'title' holds only whitespace"),
        ([tensor("info", [math.nan], "FP64")], "input 'info' is null or NaN"),
        ([tensor("info", [None], "FP32")], "input 'info' is null or NaN"),
        ([tensor("info", ["", ""], shape=[1, 2])], "input 'info' has 2 items, none with text"),
        ([tensor("info", ["{}"])], "input 'info' is \"{}\", JSON with no text in it"),
        ([tensor("info", ["[]"])], "input 'info' is \"[]\", JSON with no text in it"),
        (
            [tensor("title", ["a", ""]), tensor("info", ["", "{}"]), tensor("brand", ["x", "y"])],
            "row 1 has no text: input 'title' is an empty string (\"\"); input 'info' is \"{}\"",
        ),
    ],
)
def test_rows_without_text_name_the_inputs_sent_and_what_they_hold(
    inputs: list[dict], message: str
) -> None:
    with pytest.raises(BadRequestError) as caught:
        parse_for(WITH_JSON, *inputs)
    assert message in caught.value.message, caught.value.message
    assert "no fields" not in caught.value.message
    if "has no text" in message:
        assert "non-empty value in one of the model's text inputs ('title', 'info')" in (
            caught.value.message
        )


def test_rows_with_text_in_any_text_input_are_taken() -> None:
    assert parse_for(
        WITH_JSON,
        tensor("title", ["", "b", "", ""]),
        tensor("info", ['{"a": null}', "", "0", '["x"]']),
    ) == [{"info": {"a": None}}, {"title": "b"}, {"info": "0"}, {"info": ["x"]}]
    assert parse_for(WITH_JSON, tensor("info", ["", "a"], shape=[1, 2])) == [{"info": ["a"]}]
