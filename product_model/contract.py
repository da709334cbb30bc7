"""The model's input contract: which fields it reads, by the catalog's own column names, and how.

Training writes the contract into the model's metadata (`contract`) and its MLflow signature;
serving, batch scoring and the v2 protocol build their request validation from it, so a model
trained on a CSV with a `Product Title` column is asked for `Product Title`, not `title`.

The contract also says what the model answers: `task` is `single_label` (one label per product),
`multilabel` (every tag above its threshold) or `path` (a consistent category path); the last two
carry their tags and per-tag thresholds (`tags`, see `product_model.tags`).

Roles say what a field feeds: `text` (cleaned, stemmed TF-IDF), `tokens` (categorical values or
lists, one token each), `numeric` (a number), `id` (character n-grams of the product id). Types
say what a value may be: `string`; `text` (a string or a list of strings); `tokens` (a string, a
number, a list of them, or an object of key/value pairs); `json` (any JSON value, nested: a text
field whose catalog held objects, numbers or lists of them, read as its text the way
`features.as_text` flattens it); `number` (a number or a numeric string); `price` (a number or a
price text such as "$12.99").
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

Role = Literal["text", "tokens", "numeric", "id"]
ValueType = Literal["string", "text", "tokens", "json", "number", "price"]
ROLES: tuple[str, ...] = ("text", "tokens", "numeric", "id")
VALUE_TYPES: tuple[str, ...] = ("string", "text", "tokens", "json", "number", "price")
CONTRACT_VERSION = 1
SINGLE_LABEL = "single_label"


@dataclass(frozen=True)
class InputField:
    """One field the model reads."""

    name: str
    role: Role
    type: ValueType
    description: str = ""

    def to_dict(self) -> dict[str, str]:
        entry = {"name": self.name, "role": self.role, "type": self.type}
        if self.description:
            entry["description"] = self.description
        return entry


@dataclass(frozen=True)
class InputContract:
    """Every field the model reads, the label column it learned, and the task it answers."""

    fields: tuple[InputField, ...]
    label_column: str = "label"
    task: str = SINGLE_LABEL
    version: int = CONTRACT_VERSION
    outputs: tuple[str, ...] = field(
        default=("label", "probability", "top_labels", "top_probabilities")
    )
    # multilabel and path models: their tags (or path nodes), per-tag thresholds and separator
    tags: Mapping[str, Any] | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def text_fields(self) -> tuple[str, ...]:
        """The fields of which a product needs at least one, non-empty."""
        return tuple(f.name for f in self.fields if f.role == "text")

    def of_type(self, *types: str) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.type in types)

    def to_dict(self) -> dict[str, Any]:
        described = {
            "version": self.version,
            "task": self.task,
            "label_column": self.label_column,
            "fields": [f.to_dict() for f in self.fields],
            "outputs": list(self.outputs),
        }
        if self.tags is not None:
            described["tags"] = dict(self.tags)
        return described

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InputContract:
        fields = tuple(
            InputField(str(item["name"]), item["role"], item["type"], item.get("description", ""))
            for item in data["fields"]
        )
        return cls(
            fields=fields,
            label_column=str(data.get("label_column", "label")),
            task=str(data.get("task", SINGLE_LABEL)),
            version=int(data.get("version", CONTRACT_VERSION)),
            outputs=tuple(data.get("outputs", cls.__dataclass_fields__["outputs"].default)),
            tags=data.get("tags"),
        )

    def coerce_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The model's own columns of `frame`, numeric fields parsed as numbers (blank or
        unparseable values become missing): what `predict` receives from any client."""
        present = [name for name in self.names if name in frame.columns]
        frame = frame[present].copy()
        for name in self.of_type("number"):
            if name in frame.columns:
                frame[name] = to_numbers(frame[name])
        return frame.reset_index(drop=True)


def to_numbers(values: pd.Series) -> pd.Series:
    """Numbers and numeric strings as floats; blanks, booleans, text and infinities as NaN."""

    def one(value: Any) -> float:
        if isinstance(value, bool) or value is None:
            return math.nan
        try:
            number = float(value.strip() if isinstance(value, str) else value)
        except (TypeError, ValueError):
            return math.nan
        return number if math.isfinite(number) else math.nan

    return values.map(one).astype("float64")


def is_present(values: pd.Series) -> pd.Series:
    """True where a value is there: not null, not NaN, not blank text. A present value that
    `to_numbers` reads as NaN is not a number (training and batch scoring count those)."""
    return ~(values.isna() | values.map(lambda v: isinstance(v, str) and not v.strip()))


def text_type(values: Iterable[Any]) -> ValueType:
    """The type of a text field from its catalog's values: `string` when all are strings, `text`
    when all are strings or lists of strings, else `json` (objects, numbers, booleans, or lists
    holding them), so the model accepts every value it was trained on."""
    present = [v for v in values if not is_missing(v)]
    if all(isinstance(v, str) for v in present):
        return "string"
    if all(isinstance(v, str) or _is_list_of_strings(v) for v in present):
        return "text"
    return "json"


def _is_list_of_strings(value: Any) -> bool:
    """A list of strings; Parquet list columns read as arrays, which serve as lists."""
    return isinstance(value, list | tuple | np.ndarray) and all(isinstance(i, str) for i in value)


def is_missing(value: Any) -> bool:
    """None, NaN or pandas' NA (a list or an array is a value, however many items it holds)."""
    if value is None or value is pd.NA:
        return True
    return isinstance(value, float) and math.isnan(value)
