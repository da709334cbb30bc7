"""Scoring one chunk of a catalog: the same rules for both engines.

Every input row gives one output row. A row with none of the model's text columns filled in is
not sent to the model: it gets an empty label and a reason. The output columns and their types
are defined here once; the Spark engine writes the same schema.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from batch.model import ModelInputs, ScoringModel
from product_model.features import as_text
from training.errors import ConfigError, DataError

OUTPUT_SCHEMA = pa.schema(
    [
        ("product_id", pa.string()),
        ("label", pa.string()),
        ("probability", pa.float64()),
        ("top_labels", pa.list_(pa.string())),
        ("top_probabilities", pa.list_(pa.float64())),
        ("reason", pa.string()),
        ("model_name", pa.string()),
        ("model_version", pa.string()),
    ]
)
OUTPUT_COLUMNS = tuple(OUTPUT_SCHEMA.names)
# The columns multilabel and path models add, after `top_probabilities`.
TASK_COLUMNS = {
    "multilabel": ("tags", "tag_probabilities"),
    "path": ("path", "path_probabilities"),
}


def output_schema(task: str) -> pa.Schema:
    """The output columns for a model of this task."""
    extra = TASK_COLUMNS.get(task)
    if extra is None:
        return OUTPUT_SCHEMA
    at = OUTPUT_SCHEMA.get_field_index("top_probabilities") + 1
    schema = OUTPUT_SCHEMA.insert(at, pa.field(extra[0], pa.list_(pa.string())))
    return schema.insert(at + 1, pa.field(extra[1], pa.list_(pa.float64())))


def no_text_reason(inputs: ModelInputs) -> str:
    return f"no text: {', '.join(inputs.text_columns)} all empty or missing"


def check_columns(columns: list[str], inputs: ModelInputs, source: Path | str) -> None:
    """Stop before scoring when the catalog lacks the id column or every text column."""
    available = ", ".join(sorted(columns)[:30])
    if inputs.id_column is None:
        raise ConfigError(
            "the model names no product id column; pass --id-column with the catalog's id column"
        )
    if inputs.id_column not in columns:
        raise DataError(
            f"{source}: id column '{inputs.id_column}' not found; columns are: {available}; "
            "set --id-column"
        )
    if not any(column in columns for column in inputs.text_columns):
        raise DataError(
            f"{source}: none of the model's text columns ({', '.join(inputs.text_columns)}) "
            f"exist; columns are: {available}"
        )


def has_text(frame: pd.DataFrame, text_columns: tuple[str, ...]) -> pd.Series:
    """True for rows where at least one text column holds more than blanks."""
    usable = pd.Series(False, index=frame.index)
    for column in text_columns:
        if column in frame.columns:
            usable |= frame[column].map(lambda value: as_text(value).strip() != "")
    return usable


def model_frame(frame: pd.DataFrame, inputs: ModelInputs) -> pd.DataFrame:
    """The columns the model reads, as the catalog names them, that this catalog has; the id
    as text, as the output writes it (a catalog of numeric ids must not fail the model's
    string-typed id field)."""
    columns = frame[[c for c in inputs.columns if c in frame.columns]].reset_index(drop=True)
    if inputs.id_column in columns.columns:
        columns[inputs.id_column] = columns[inputs.id_column].map(as_text)
    return columns


def score_chunk(model: ScoringModel, frame: pd.DataFrame, top_k: int) -> pd.DataFrame:
    """One output row per input row, in input order."""
    inputs = model.inputs
    assert inputs.id_column is not None  # check_columns ran first
    usable = has_text(frame, inputs.text_columns).to_numpy()
    size = len(frame)
    out = pd.DataFrame(
        {
            "product_id": frame[inputs.id_column].map(as_text).to_numpy(),
            "label": [""] * size,
            "probability": [float("nan")] * size,
            "top_labels": [[] for _ in range(size)],
            "top_probabilities": [[] for _ in range(size)],
            "reason": [None if ok else no_text_reason(inputs) for ok in usable],
            "model_name": [model.ref.name] * size,
            "model_version": [model.ref.version] * size,
        }
    )
    extra = TASK_COLUMNS.get(model.task, ())
    for at, column in enumerate(extra):
        out.insert(out.columns.get_loc("top_probabilities") + 1 + at, column, [[]] * size)
    if usable.any():
        predicted = model.pyfunc.predict(
            model_frame(frame[usable], inputs), params={"top_k": top_k}
        )
        rows = np.flatnonzero(usable)
        for column in ("label", "probability", "top_labels", "top_probabilities", *extra):
            values = out[column].tolist()
            for row, value in zip(rows, predicted[column], strict=True):
                values[row] = value
            out[column] = pd.Series(values, dtype=object)
    out["probability"] = out["probability"].astype("float64")
    return out
