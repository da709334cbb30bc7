"""Scoring one chunk of a catalog: the same rules for both engines.

Every input row gives one output row. A row with none of the model's text columns filled in is
not sent to the model: it gets an empty label and a reason. The output columns and their types
are defined here once; the Spark engine writes the same schema. Without an id column a row is
identified by its 0-based position in the catalog, in a `row` column instead of `product_id`.
Numeric fields are parsed as numbers first (as training and serving parse them), since the
model's signature types them `double` and MLflow refuses text or integers there; values that are
there but are not numbers are read as missing, and counted (`count_not_numbers`) so that the run
can say so, as training does. Text fields are read by one rule in every chunk
(`batch.text_values`): a number or a boolean as its text, whatever else the chunk holds.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from batch.model import ModelInputs, ScoringModel
from batch.text_values import texts_as_read
from product_model.contract import is_present, to_numbers
from product_model.features import as_text
from training.catalog_keys import integers_as_written
from training.errors import DataError

log = logging.getLogger(__name__)

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
# Identifies each output row when the catalog has no id column: its 0-based position.
ROW_COLUMN = "row"
# The columns multilabel and path models add, after `top_probabilities`.
TASK_COLUMNS = {
    "multilabel": ("tags", "tag_probabilities"),
    "path": ("path", "path_probabilities"),
}


def output_schema(task: str, by_row: bool = False) -> pa.Schema:
    """The output columns for a model of this task; `by_row`: rows are identified by their
    position (`row`) instead of a product id."""
    schema = OUTPUT_SCHEMA
    if by_row:
        schema = schema.set(0, pa.field(ROW_COLUMN, pa.int64()))
    extra = TASK_COLUMNS.get(task)
    if extra is None:
        return schema
    at = schema.get_field_index("top_probabilities") + 1
    schema = schema.insert(at, pa.field(extra[0], pa.list_(pa.string())))
    return schema.insert(at + 1, pa.field(extra[1], pa.list_(pa.float64())))


def no_text_reason(inputs: ModelInputs) -> str:
    return f"no text: {', '.join(inputs.text_columns)} all empty or missing"


def model_names(columns: Sequence[str], inputs: ModelInputs) -> list[str]:
    """The catalog's column names, those naming one of the model's columns in another Unicode
    normal form (a header saved with a decomposed "ö") spelled as the model spells it: names
    are compared after NFC normalisation, as the server compares a request's field names."""
    wanted = [*inputs.columns, *([inputs.id_column] if inputs.id_column else [])]
    by_nfc = {unicodedata.normalize("NFC", name): name for name in reversed(wanted)}
    taken = set(columns)  # a name the catalog already has is never given to another column
    renamed = []
    for column in columns:
        name = by_nfc.get(unicodedata.normalize("NFC", column), column)
        if name != column and name not in taken:
            taken.add(name)
            column = name
        renamed.append(column)
    return renamed


def with_model_names(frame: pd.DataFrame, inputs: ModelInputs) -> pd.DataFrame:
    """`frame` with its columns named as `model_names` names them."""
    names = model_names([str(c) for c in frame.columns], inputs)
    return frame if names == list(frame.columns) else frame.set_axis(names, axis="columns")


def check_columns(columns: list[str], inputs: ModelInputs, source: Path | str) -> None:
    """Stop before scoring when the catalog lacks the id column (if any) or every text column;
    each is named with the catalog's column of the same name but for case and spaces."""
    available = ", ".join(sorted(columns)[:30])
    if inputs.id_column is not None and inputs.id_column not in columns:
        raise DataError(
            f"{source}: id column {near_match(inputs.id_column, columns)} not found; columns "
            f"are: {available}; set --id-column"
        )
    if not any(column in columns for column in inputs.text_columns):
        named = ", ".join(near_match(column, columns) for column in inputs.text_columns)
        raise DataError(
            f"{source}: none of the model's text columns ({named}) exist; columns are: {available}"
        )


def near_match(column: str, present: Iterable[str]) -> str:
    """`'column'`, and the catalog's column of the same name but for case, surrounding spaces
    and Unicode forms when there is one: `'Vendor' (is it 'vendor'?)`."""
    near = {_loose(name): name for name in sorted(present, reverse=True)}
    found = near.get(_loose(column))
    return f"'{column}'" + (f" (is it '{found}'?)" if found is not None else "")


def warn_missing_inputs(columns: Iterable[str], inputs: ModelInputs, source: Path | str) -> None:
    """One warning naming the model's inputs the catalog has no column for (a renamed or
    mis-mapped export quietly changes every label), each with the catalog's column of the same
    name but for case and surrounding spaces, when there is one."""
    present = set(columns)
    missing = [column for column in inputs.feature_columns if column not in present]
    if not missing:
        return
    named = ", ".join(near_match(column, present) for column in missing)
    several = len(missing) > 1
    log.warning(
        "%s: the catalog has no column for the model's input%s %s; its products are scored "
        "without %s",
        source,
        "s" if several else "",
        named,
        "them" if several else "it",
    )


def _loose(name: str) -> str:
    """A column name as a person may retype it: case, spaces and Unicode forms aside."""
    return "".join(unicodedata.normalize("NFC", name).casefold().split())


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
    string-typed id field); numeric fields as floats, values that are not numbers missing
    (CSV cells are text and JSON numbers may be integers: the signature wants `double`)."""
    columns = frame[[c for c in inputs.columns if c in frame.columns]].reset_index(drop=True)
    if inputs.id_column in columns.columns:
        columns[inputs.id_column] = ids_as_text(columns[inputs.id_column])
    for column in inputs.numeric_columns:
        if column in columns.columns:
            columns[column] = to_numbers(columns[column])
    return columns


def count_not_numbers(frame: pd.DataFrame, inputs: ModelInputs) -> Counter[str]:
    """Per numeric column of the model, the values `model_frame` reads as missing that were there:
    neither null nor blank text, yet not a finite number (`n/a`, `9,99`, `true`, `inf`)."""
    counts: Counter[str] = Counter()
    for column in inputs.numeric_columns:
        if column not in frame.columns:
            continue
        raw = frame[column]
        bad = int((to_numbers(raw).isna() & is_present(raw)).sum())
        if bad:
            counts[column] = bad
    return counts


def row_ids(frame: pd.DataFrame, inputs: ModelInputs, first_row: int) -> tuple[str, np.ndarray]:
    """The output's first column: the product id as text, or each row's catalog position."""
    if inputs.id_column is None:
        return ROW_COLUMN, np.arange(first_row, first_row + len(frame), dtype=np.int64)
    return "product_id", ids_as_text(frame[inputs.id_column]).to_numpy()


def ids_as_text(ids: pd.Series) -> pd.Series:
    """Product ids as text, as training reads them: integer ids are `7`, also in a chunk where
    some id is missing and pandas read the column as floats (`7.0`)."""
    return integers_as_written(ids).map(as_text)


def predict(model: ScoringModel, frame: pd.DataFrame, top_k: int, where: str) -> pd.DataFrame:
    """The model's answers; values its signature still refuses (the rules above leave none that
    the project knows of) are a `DataError` of one line that says `where` they are."""
    from mlflow.exceptions import MlflowException

    columns = model_frame(frame, model.inputs)
    try:
        return answered_label(model.pyfunc.predict(columns, params={"top_k": top_k}), model.task)
    except MlflowException as error:
        if "Failed to enforce schema" not in str(error):
            raise
        raise DataError(f"{where}: {refused_column(str(error), columns)}") from None


def answered_label(predicted: pd.DataFrame, task: str) -> pd.DataFrame:
    """A multilabel row's `label` and `probability` are its first answered tag (the most probable
    that passes its threshold), as the server answers: a model saved before that rule gave its
    most probable tag, even one it rejects."""
    if task != "multilabel":
        return predicted
    labels, probabilities = [], []
    columns = ("label", "probability", "tags", "tag_probabilities")
    for label, probability, tags, tag_probabilities in zip(
        *(predicted[c] for c in columns), strict=True
    ):
        answered = len(tags) > 0  # always, for a usable row: at least the most probable tag
        labels.append(tags[0] if answered else label)
        probabilities.append(tag_probabilities[0] if answered else probability)
    return predicted.assign(label=labels, probability=probabilities)


def refused_column(message: str, columns: pd.DataFrame) -> str:
    """The column MLflow's schema check refused, in the project's words (its own message prints
    the whole chunk, and numpy's type names such as `<U0`)."""
    named = re.search(r"for column (.+?)\. ", message)
    column = named.group(1) if named else ""
    if column not in columns.columns:
        return "the model's signature refuses these values"
    values = columns[column]
    kinds = [
        (pd.api.types.is_bool_dtype, "true/false values"),
        (pd.api.types.is_numeric_dtype, "numbers"),
        (pd.api.types.is_datetime64_any_dtype, "dates or times"),
    ]
    kind = next((words for test, words in kinds if test(values)), "values of another type")
    return f"the model's signature refuses column '{column}', which holds {kind} here"


def score_chunk(
    model: ScoringModel,
    frame: pd.DataFrame,
    top_k: int,
    first_row: int = 0,
    source: Path | str = "the catalog",
) -> pd.DataFrame:
    """One output row per input row, in input order; `first_row` is the catalog position of
    the chunk's first row (the `row` column of a catalog without ids), `source` the catalog
    named in messages."""
    inputs = model.inputs
    frame = texts_as_read(frame, inputs.text_valued_columns, source, first_row)
    usable = has_text(frame, inputs.text_columns).to_numpy()
    size = len(frame)
    id_name, ids = row_ids(frame, inputs, first_row)
    out = pd.DataFrame(
        {
            id_name: ids,
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
        where = f"{source}, rows {first_row}-{first_row + size - 1} (counted from 0)"
        predicted = predict(model, frame[usable], top_k, where)
        rows = np.flatnonzero(usable)
        for column in ("label", "probability", "top_labels", "top_probabilities", *extra):
            values = out[column].tolist()
            for row, value in zip(rows, predicted[column], strict=True):
                values[row] = value
            out[column] = pd.Series(values, dtype=object)
    out["probability"] = out["probability"].astype("float64")
    return out
