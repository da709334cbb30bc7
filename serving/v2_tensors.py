"""Tensors of the Open Inference Protocol (v2), without the web framework: an input tensor's
values from its JSON `data` or from the binary tensor extension, and output tensors back to JSON or
binary. Binary data is little-endian, row-major; a BYTES element is a 4-byte length and its bytes.
"""

from __future__ import annotations

import functools
import json
import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from serving.errors import BadRequestError

NUMERIC_TYPES = {
    "INT8": "<i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "UINT8": "<u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
}
DATATYPES = ("BYTES", *NUMERIC_TYPES)
FLOAT_TYPES = ("FP16", "FP32", "FP64")
"""The datatypes whose JSON `data` may hold null: a missing value, read as NaN (as MLServer reads
it); JSON has no NaN, and a BYTES element or an integer has no missing value of its own."""
_LENGTH = struct.Struct("<I")
# An input's fields that have no default, and what to give.
REQUIRED = {
    "datatype": "BYTES for text, FP64 for numbers, as the model metadata lists",
    "shape": "[rows] for one value per product, [rows, items] for a list per product",
}


@dataclass(frozen=True)
class Tensor:
    """One input tensor: its values flattened in row-major order."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    values: list[Any]

    @property
    def rows(self) -> int:
        return self.shape[0]

    def row(self, index: int) -> Any:
        """Row `index`: one element for a 1-D tensor, a list of items for a 2-D one."""
        if len(self.shape) == 1:
            return self.values[index]
        width = self.shape[1]
        return self.values[index * width : (index + 1) * width]


class BinarySection:
    """The bytes after the JSON header, handed out to the binary inputs in their order."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def take(self, size: int, name: str) -> bytes:
        if self.offset + size > len(self.data):
            left = len(self.data) - self.offset
            raise BadRequestError(
                f"input '{name}' declares binary_data_size {size} but only {left} bytes of "
                "binary data are left after the JSON header"
            )
        chunk = self.data[self.offset : self.offset + size]
        self.offset += size
        return chunk

    def check_consumed(self) -> None:
        extra = len(self.data) - self.offset
        if extra:
            raise BadRequestError(
                f"{extra} bytes of binary data after the JSON header belong to no input: the "
                "inputs' binary_data_size values must add up to the body's length minus "
                "Inference-Header-Content-Length"
            )


def read_tensor(spec: Any, binary: BinarySection) -> Tensor:
    """An input tensor from its request object (`name`, `shape`, `datatype`, and `data` or the
    `binary_data_size` parameter)."""
    if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str):
        raise BadRequestError('each input must be an object with a string "name"')
    name = spec["name"]
    for field in ("datatype", "shape"):
        if spec.get(field) is None:
            raise BadRequestError(
                f"input '{name}': field `{field}` is required ({REQUIRED[field]})"
            )
    datatype = spec.get("datatype")
    if datatype not in DATATYPES:
        raise BadRequestError(
            f"input '{name}': datatype {json_text(datatype)} is not supported; use BYTES for "
            f"text and FP64 (or another of {', '.join(NUMERIC_TYPES)}) for numbers"
        )
    shape = read_shape(name, spec.get("shape"))
    count = math.prod(shape)  # Python integers: a huge shape cannot overflow to a small one
    size = binary_size(name, spec.get("parameters"))
    if size is None:
        values = json_values(name, datatype, spec.get("data"), count)
        check_fits_datatype(name, datatype, values)
    else:  # binary data always fits its datatype
        values = binary_values(name, datatype, binary.take(size, name), count)
    return Tensor(name, datatype, shape, values)


def read_shape(name: str, shape: Any) -> tuple[int, ...]:
    valid = isinstance(shape, list) and all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape
    )
    # [rows, 0] is refused: it would make any number of products out of no data at all.
    if not valid or len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] == 0):
        raise BadRequestError(
            f"input '{name}': shape must be [rows] (one value per product) or [rows, items] "
            f"(a list of at least one item per product), not {json_text(shape)}"
        )
    return tuple(shape)


def binary_size(name: str, parameters: Any) -> int | None:
    if parameters is None:
        return None
    if not isinstance(parameters, Mapping):
        raise BadRequestError(f"input '{name}': parameters must be an object")
    if "shared_memory_region" in parameters:
        raise BadRequestError(
            f"input '{name}': the shared-memory extension is not supported; send the data in "
            "JSON or as binary data after the JSON header"
        )
    size = parameters.get("binary_data_size")
    if size is None:
        return None
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise BadRequestError(f"input '{name}': binary_data_size must be a non-negative integer")
    return size


def json_values(name: str, datatype: str, data: Any, count: int) -> list[Any]:
    """The flattened `data` (nested lists read in row-major order, as Triton reads them), each
    element of the datatype's JSON type; null in a float tensor is NaN, a missing value."""
    if data is None:
        raise BadRequestError(f"input '{name}' has neither data nor a binary_data_size parameter")
    values = flatten(data if isinstance(data, list) else [data])
    if len(values) != count:
        raise BadRequestError(
            f"input '{name}': {len(values)} values in data, but its shape holds {count}"
        )
    if datatype in FLOAT_TYPES:
        values = [math.nan if value is None else value for value in values]
    wanted = is_text if datatype == "BYTES" else is_number
    for index, value in enumerate(values):
        if not wanted(value):
            kind = "a string" if datatype == "BYTES" else "a number"
            raise BadRequestError(
                f"input '{name}' ({datatype}): element {index} must be {kind}, "
                f"not {json_text(value)}{null_advice(datatype) if value is None else ''}"
            )
    return values


def null_advice(datatype: str) -> str:
    """How a tensor of this datatype says a value is missing, when it was sent as null."""
    if datatype == "BYTES":
        return '; a missing value in a BYTES input is an empty string ("")'
    return f"; {datatype} has no missing value: declare the input FP64 to send null for one"


def json_text(value: Any, limit: int = 60) -> str:
    """A value of the request as JSON writes it (null, "12", [1, 2]), cut short if long."""
    text = json.dumps(value, ensure_ascii=False)  # parsed from JSON, so it writes back
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def check_fits_datatype(name: str, datatype: str, values: list[Any]) -> None:
    """The protocol's data must match its datatype, and JSON can hold any number: an INT or UINT
    tensor takes whole numbers (not 2.0) in its type's range, an FP one numbers in its range, NaN
    and infinity. (Text and numbers are told apart as the values are read.)"""
    if datatype not in NUMERIC_TYPES:
        return
    low, high, whole = datatype_range(datatype)
    for index, value in enumerate(values):
        if not fits(value, low, high, whole):
            kind = "a whole number" if whole else "a number"
            span = f"{low} to {high}" if whole else f"{low:.6g} to {high:.6g}"
            raise BadRequestError(
                f"input '{name}' ({datatype}): element {index} must be {kind} "
                f"from {span}, not {json_text(value)} (declare the input FP64 to send any number)"
            )


def fits(value: int | float, low: int | float, high: int | float, whole: bool) -> bool:
    """Whether a JSON number is a value of a datatype with this range."""
    if whole:
        return isinstance(value, int) and low <= value <= high
    return low <= value <= high or (isinstance(value, float) and not math.isfinite(value))


@functools.cache
def datatype_range(datatype: str) -> tuple[int | float, int | float, bool]:
    """The lowest and highest value of a numeric datatype, and whether it takes whole numbers."""
    dtype = np.dtype(NUMERIC_TYPES[datatype])
    if dtype.kind == "f":
        floats = np.finfo(dtype)
        return float(floats.min), float(floats.max), False
    ints = np.iinfo(dtype)
    return int(ints.min), int(ints.max), True


def binary_values(name: str, datatype: str, raw: bytes, count: int) -> list[Any]:
    if datatype == "BYTES":
        return decode_bytes(name, raw, count)
    dtype = np.dtype(NUMERIC_TYPES[datatype])
    if len(raw) != count * dtype.itemsize:
        raise BadRequestError(
            f"input '{name}': {len(raw)} bytes of binary data, but {count} {datatype} values "
            f"take {count * dtype.itemsize}"
        )
    return list(np.frombuffer(raw, dtype=dtype).tolist())


def decode_bytes(name: str, raw: bytes, count: int) -> list[str]:
    """BYTES elements: each a 4-byte little-endian length, then that many UTF-8 bytes."""
    values: list[str] = []
    offset = 0
    while offset < len(raw):
        if offset + _LENGTH.size > len(raw):
            raise BadRequestError(f"input '{name}': binary BYTES data ends inside a length prefix")
        (length,) = _LENGTH.unpack_from(raw, offset)
        offset += _LENGTH.size
        if offset + length > len(raw):
            raise BadRequestError(
                f"input '{name}': binary BYTES element {len(values)} is cut short"
            )
        try:
            values.append(raw[offset : offset + length].decode("utf-8"))
        except UnicodeDecodeError:
            raise BadRequestError(
                f"input '{name}': binary BYTES element {len(values)} is not UTF-8 text"
            ) from None
        offset += length
    if len(values) != count:
        raise BadRequestError(
            f"input '{name}': {len(values)} elements in its binary data, but its shape "
            f"holds {count}"
        )
    return values


def flatten(data: list[Any]) -> list[Any]:
    """Nested lists in row-major order (the protocol allows nested or flat `data`)."""
    flat: list[Any] = []
    stack: list[Any] = [iter(data)]
    while stack:
        item = next(stack[-1], _END)
        if item is _END:
            stack.pop()
        elif isinstance(item, list):
            stack.append(iter(item))
        else:
            flat.append(item)
    return flat


_END = object()


def is_text(value: Any) -> bool:
    return isinstance(value, str)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def output_tensor(
    name: str, datatype: str, shape: Sequence[int], values: list[Any], binary: bool
) -> tuple[dict[str, Any], bytes | None]:
    """An output's JSON object and, when asked for binary, its bytes (then out of the JSON)."""
    tensor: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(shape)}
    if not binary:
        tensor["data"] = values
        return tensor, None
    raw = encode_bytes(values) if datatype == "BYTES" else encode_numbers(datatype, values)
    tensor["parameters"] = {"binary_data_size": len(raw)}
    return tensor, raw


def encode_bytes(values: list[str]) -> bytes:
    parts = []
    for value in values:
        encoded = value.encode("utf-8")
        parts += [_LENGTH.pack(len(encoded)), encoded]
    return b"".join(parts)


def encode_numbers(datatype: str, values: list[float]) -> bytes:
    return np.asarray(values, dtype=NUMERIC_TYPES[datatype]).tobytes()
