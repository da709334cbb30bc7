"""The Open Inference Protocol (v2, as KServe and Triton speak it) without the web framework:
metadata from the model's input contract, inference requests to product records, predictions to
output tensors, and errors in the protocol's `{"error": "..."}` form.

Each of the model's fields is one input tensor named like the field: BYTES for text, tokens and
ids, FP64 for numbers. Shape [rows] gives one value per product; [rows, items] a list of items per
product (empty strings are padding), for the fields whose metadata shape is [-1, -1]. An object or
a list for a `json` or `tokens` field is sent as its JSON text in one BYTES element. An empty
string, or null or NaN in a float tensor, is a missing value. Outputs: `label`
(BYTES) and `probability` (FP32) of shape [rows], `top_labels` (BYTES) and `top_probabilities`
(FP32) of shape [rows, k], k set by the request parameter `top_k`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from serving.errors import BadRequestError, InvalidInputError
from serving.json_body import json_problem
from serving.v2_inputs import form_of, products_of, read_inputs
from serving.v2_tensors import BinarySection, json_text, output_tensor
from serving.validation import InputField, RequestContract, product_position

SERVER_NAME = "product-categorization"
EXTENSIONS = ["binary_tensor_data"]
PLATFORM = "mlflow_pyfunc"
# name, datatype, dimensions (1: one per product, 2: k per product)
OUTPUTS = (
    ("label", "BYTES", 1),
    ("probability", "FP32", 1),
    ("top_labels", "BYTES", 2),
    ("top_probabilities", "FP32", 2),
)
OUTPUT_NAMES = tuple(name for name, _, _ in OUTPUTS)
# What multilabel and path models add: per product, the tags answered (or the path's levels),
# padded with "" and 0 to the longest answer of the request (tensors are rectangular).
TASK_OUTPUTS = {
    "multilabel": (("tags", "BYTES", 2), ("tag_probabilities", "FP32", 2)),
    "path": (("path", "BYTES", 2), ("path_probabilities", "FP32", 2)),
}


def outputs_of(task: str) -> tuple[tuple[str, str, int], ...]:
    """The outputs a model of this task gives."""
    return OUTPUTS + TASK_OUTPUTS.get(task, ())


@dataclass(frozen=True)
class RequestedOutput:
    name: str
    binary: bool


@dataclass(frozen=True)
class InferenceRequest:
    """An inference request as the service takes it."""

    id: str | None
    products: list[dict[str, Any]]
    top_k: int
    outputs: tuple[RequestedOutput, ...]


def server_metadata(version: str) -> dict[str, Any]:
    return {"name": SERVER_NAME, "version": version, "extensions": EXTENSIONS}


def input_datatype(field: InputField) -> str:
    return "FP64" if field.role == "numeric" else "BYTES"


def input_shape(field: InputField) -> list[int]:
    """[-1, -1] for a field that takes a list per product (a [rows] tensor, one value per
    product, is taken too), [-1] for one that takes a single value."""
    return [-1, -1] if form_of(field).lists else [-1]


def model_metadata(name: str, version: str, contract: RequestContract) -> dict[str, Any]:
    """GET /v2/models/{name}: one input per field of the contract, the four outputs."""
    return {
        "name": name,
        "versions": [version],
        "platform": PLATFORM,
        "inputs": [
            {"name": f.name, "datatype": input_datatype(f), "shape": input_shape(f)}
            for f in contract.fields
        ],
        "outputs": [
            {"name": out, "datatype": datatype, "shape": [-1] * dims}
            for out, datatype, dims in outputs_of(contract.task)
        ],
    }


def parse_infer_request(
    body: bytes, header_length: int | None, contract: RequestContract, default_top_k: int
) -> InferenceRequest:
    """The request's products (one per row, keyed by the model's field names), top_k and
    requested outputs; `BadRequestError` for anything the protocol or the model cannot take."""
    header, binary = split_body(body, header_length)
    if not isinstance(header, Mapping):
        raise BadRequestError("the inference request must be a JSON object with `inputs`")
    parameters = parameters_of(header, "`parameters`", ' such as {"top_k": 3}')
    tensors = read_inputs(header.get("inputs"), binary, contract)
    return InferenceRequest(
        request_id(header.get("id")),
        products_of(tensors, contract),
        top_k_of(parameters, default_top_k),
        requested_outputs(
            header.get("outputs"),
            parameters.get("binary_data_output", False),
            tuple(name for name, _, _ in outputs_of(contract.task)),
        ),
    )


def parameters_of(holder: Mapping[str, Any], where: str, example: str = "") -> Mapping[str, Any]:
    """The `parameters` object of a request or of one of its outputs; none given is {}."""
    parameters = holder.get("parameters")
    if parameters is None:
        return {}
    if not isinstance(parameters, Mapping):
        raise BadRequestError(f"{where} must be an object{example}, not {json_text(parameters)}")
    return parameters


def split_body(body: bytes, header_length: int | None) -> tuple[Any, BinarySection]:
    """The JSON header and the binary section after it (Inference-Header-Content-Length)."""
    if header_length is None:
        header_length = len(body)
    elif header_length > len(body):
        raise BadRequestError(
            f"Inference-Header-Content-Length is {header_length}, longer than the body "
            f"({len(body)} bytes)"
        )
    try:
        header = json.loads(body[:header_length])
    except (ValueError, RecursionError) as error:
        where = "the JSON header" if header_length < len(body) else "the body"
        reason = json_problem(error, body[:header_length])
        raise BadRequestError(f"{where} is not valid JSON: {reason}") from None
    return header, BinarySection(body[header_length:])


def request_id(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise BadRequestError("`id` must be a string")


def top_k_of(parameters: Mapping[str, Any], default: int) -> int:
    value = parameters.get("top_k", default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
        raise BadRequestError("parameter `top_k` must be a whole number from 1 to 1000")
    return value


def requested_outputs(
    specs: Any, binary_default: Any, names: tuple[str, ...] = OUTPUT_NAMES
) -> tuple[RequestedOutput, ...]:
    if not isinstance(binary_default, bool):
        raise BadRequestError("parameter `binary_data_output` must be true or false")
    if specs is None:
        return tuple(RequestedOutput(name, binary_default) for name in names)
    if not isinstance(specs, list):
        raise BadRequestError("`outputs` must be a list of objects with a `name`")
    return tuple(requested_output(spec, binary_default, names) for spec in specs)


def requested_output(
    spec: Any, binary_default: bool, names: tuple[str, ...] = OUTPUT_NAMES
) -> RequestedOutput:
    if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str):
        raise BadRequestError('each requested output must be an object with a string "name"')
    name = spec["name"]
    if name not in names:
        raise BadRequestError(f"unknown output '{name}': the outputs are {', '.join(names)}")
    parameters = parameters_of(spec, f"output '{name}': parameters")
    if "classification" in parameters or "shared_memory_region" in parameters:
        raise BadRequestError(
            f"output '{name}': the classification and shared-memory extensions are not "
            "supported; ask for top_labels and top_probabilities with the top_k parameter"
        )
    binary = parameters.get("binary_data", binary_default)
    if not isinstance(binary, bool):
        raise BadRequestError(f"output '{name}': binary_data must be true or false")
    return RequestedOutput(name, binary)


def encode_infer_response(
    request: InferenceRequest, model_name: str, model_version: str, predictions: list[Any]
) -> tuple[bytes, int | None]:
    """The response body and, when some output is binary, the length of its JSON header."""
    answer: dict[str, Any] = {"model_name": model_name, "model_version": model_version}
    if request.id is not None:
        answer["id"] = request.id
    columns = output_columns(predictions)
    answer["outputs"], chunks = [], []
    for wanted in request.outputs:
        tensor, raw = output_tensor(wanted.name, *columns[wanted.name], wanted.binary)
        answer["outputs"].append(tensor)
        if raw is not None:
            chunks.append(raw)
    header = json.dumps(answer, ensure_ascii=False).encode()
    if not chunks:
        return header, None
    return b"".join([header, *chunks]), len(header)


def output_columns(predictions: list[Any]) -> dict[str, tuple[str, list[int], list[Any]]]:
    """Each output's datatype, shape and flat values."""
    rows = len(predictions)
    k = len(predictions[0]["top_k"]) if predictions else 0
    return {
        "label": ("BYTES", [rows], [p["label"] for p in predictions]),
        "probability": ("FP32", [rows], [p["probability"] for p in predictions]),
        "top_labels": ("BYTES", [rows, k], [e["label"] for p in predictions for e in p["top_k"]]),
        "top_probabilities": (
            "FP32",
            [rows, k],
            [e["probability"] for p in predictions for e in p["top_k"]],
        ),
    } | task_columns(predictions)


def task_columns(predictions: list[Any]) -> dict[str, tuple[str, list[int], list[Any]]]:
    """The tags (or path levels) of each product, padded to the longest answer."""
    key = next((k for k in ("tags", "path") if predictions and k in predictions[0]), None)
    if key is None:
        return {}
    width = max(len(p[key]) for p in predictions)
    padded = [
        p[key] + [{"label": "", "probability": 0.0}] * (width - len(p[key])) for p in predictions
    ]
    shape = [len(predictions), width]
    names = [e["label"] for row in padded for e in row]
    probabilities = [e["probability"] for row in padded for e in row]
    return {
        key: ("BYTES", shape, names),
        f"{key.rstrip('s')}_probabilities": ("FP32", shape, probabilities),
    }


def rejected_input(error: InvalidInputError) -> BadRequestError:
    """The service's complaint about a product, named in tensor terms: `products[3].title`
    becomes input 'title', row 3."""
    position = product_position(error.field)
    if position is None:
        return BadRequestError(error.message)
    row, name = position
    where = f"input '{name}', row {row}" if name else f"row {row}"
    return BadRequestError(f"{where}: {error.message}")


def protocol_error_body(body: bytes) -> bytes:
    """An error body of this server (`{"error": {"message", ...}, ...}`) in the protocol's form,
    `{"error": "message"}`; anything else becomes the message as it is."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        payload = None
    error = payload.get("error") if isinstance(payload, Mapping) else None
    if isinstance(error, Mapping) and isinstance(error.get("message"), str):
        message = error["message"]
    elif isinstance(error, str):
        message = error
    else:
        message = body.decode("utf-8", errors="replace") or "error"
    return json.dumps({"error": message}, ensure_ascii=False).encode()
