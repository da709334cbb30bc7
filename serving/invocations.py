"""MLflow's scoring protocol (`POST /invocations`, as `mlflow models serve` speaks it), without
the web framework: request bodies to product records, predictions to MLflow's answer shape.

JSON bodies hold exactly one of `dataframe_records` (a list of objects), `dataframe_split`
(`columns` and `data` rows, as pandas writes with orient="split"), `instances` or `inputs` (a list
of objects, or an object of equally long columns), plus optional `params` (`top_k`). CSV bodies
(`text/csv`) have a header row. Errors name the offending value in the shape the client sent
(`dataframe_records[0].title`, `dataframe_split.data[0][1]`, CSV line 2), not as `/v1/predict`'s
`products[0].title`.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from serving.contract_types import in_csv_terms
from serving.errors import InvalidInputError, UnsupportedMediaTypeError
from serving.json_body import invalid_json
from serving.validation import InvalidItemError, product_position

FORMATS = ("dataframe_records", "dataframe_split", "instances", "inputs")


@dataclass(frozen=True)
class ScoringRequest:
    """A scoring request's records and params, and where each record came from: the input key
    (`form`), whether it was sent as columns, the `dataframe_split` columns, the CSV lines."""

    records: list[Any]
    params: dict[str, Any] = field(default_factory=dict)
    form: str = "csv"
    columnar: bool = False
    columns: list[Any] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)

    def located(self, error: InvalidInputError) -> InvalidInputError:
        """The service's complaint about `products[i].name`, named where this request holds
        that value (and, for CSV, saying how a cell sends a missing value: it cannot hold null);
        any other complaint as it is."""
        if error.field == "products":
            return InvalidInputError(error.message, field=self._container())
        item = error.item if isinstance(error, InvalidItemError) else ""
        position = product_position((error.field or "").removesuffix(item))
        if position is None:
            return error
        where, prefix = self._place(*position)
        if item and where != "body":  # the item of a list or object the record's value holds
            where += item
        message = in_csv_terms(error.message) if self.form == "csv" else error.message
        return InvalidInputError(f"{prefix}{message}", field=where)

    def _container(self) -> str:
        return "body" if self.form == "csv" else self.form

    def _place(self, row: int, name: str | None) -> tuple[str, str]:
        """The path of record `row` (its field `name`) and what the message starts with."""
        if self.form == "csv":  # CSV has no paths: the message names the line and the column
            column = f", column {name!r}" if name is not None else ""
            return "body", f"CSV line {self.lines[row]}{column}: "
        if self.form == "dataframe_split":
            if name is None or name not in self.columns:
                return f"dataframe_split.data[{row}]", ""
            position = self.columns.index(name)  # each column is named once
            return f"dataframe_split.data[{row}][{position}]", f"column {name!r}: "
        if self.columnar:  # {"title": [...]}: a record is one position in every column
            if name is None:
                return self.form, f"row {row}: "
            return f"{self.form}.{name}[{row}]", ""
        return f"{self.form}[{row}]" + (f".{name}" if name is not None else ""), ""


def parse_json_body(body: bytes) -> ScoringRequest:
    """The records and params of a JSON request body."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as error:
        raise invalid_json(error, body) from None
    if not isinstance(payload, Mapping):
        raise InvalidInputError(_which_format("the body is not a JSON object"), field="body")
    present = [key for key in FORMATS if key in payload]
    if len(present) != 1:
        problem = "none of" if not present else f"more than one ({', '.join(present)}) of"
        raise InvalidInputError(
            _which_format(f"the body holds {problem} the input keys"), field="body"
        )
    params = payload.get("params") or {}
    if not isinstance(params, Mapping):
        raise InvalidInputError('`params` must be an object such as {"top_k": 3}', field="params")
    key = present[0]
    value = payload[key]
    records = _records(key, value)  # first: it checks the value's shape
    columnar = key in ("instances", "inputs") and isinstance(value, Mapping)
    columns = list(value["columns"]) if key == "dataframe_split" else []
    return ScoringRequest(records, dict(params), key, columnar, columns)


def charset_of(content_type: str) -> str:
    """The charset a Content-Type header names; UTF-8 when it names none."""
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip(' "'):
            return value.strip(' "')
    return "utf-8"


def parse_csv_body(body: bytes, charset: str = "utf-8") -> ScoringRequest:
    """The records of a CSV body with a header row; empty cells, and cells a short row lacks, are
    missing values. A row with more cells than the header, a quote left open and a column named
    twice are refused, as pandas (MLflow's scoring server) refuses them or would lose cells."""
    reader = csv.DictReader(io.StringIO(_decoded(body, charset)), strict=True)
    records, lines = [], []
    try:
        reader.fieldnames = _header(reader.fieldnames or ())
        for row in reader:
            if None in row:  # DictReader's key for the cells beyond the header's columns
                raise InvalidInputError(_too_many_cells(reader, len(row[None])), field="body")
            # None, not left out: a product whose model columns are all empty is told so
            records.append({k: v or None for k, v in row.items() if k})
            lines.append(reader.line_num)  # the line the record ends on, as errors above say
    except csv.Error as error:  # a quote left open, or a cell past the csv module's size limit
        where = f"CSV line {reader.line_num + 1}"
        hint = _QUOTE_HINT if "'\"'" in str(error) or "end of data" in str(error) else ""
        raise InvalidInputError(f"{where}: {error}{hint}", field="body") from None
    return ScoringRequest(records, lines=lines)


_QUOTE_HINT = '; a cell holding quotes is quoted whole, its quotes doubled ("a ""b""")'


def _decoded(body: bytes, charset: str) -> str:
    try:  # a UTF-8 byte order mark is not part of the first column's name
        return body.decode("utf-8-sig" if charset.lower() in ("utf-8", "utf8") else charset)
    except LookupError:
        raise UnsupportedMediaTypeError(
            f"charset {charset!r} is not known; send the CSV body as UTF-8"
        ) from None
    except UnicodeDecodeError:
        raise InvalidInputError(f"the CSV body is not {charset.upper()}", field="body") from None


def _header(columns: Sequence[str]) -> list[str]:
    """The column names trimmed, as training trims a catalog's headers; unnamed columns (a
    spreadsheet's trailing commas) are left out of the records, a name given twice is refused."""
    names = [column.strip() for column in columns]
    named_twice = names_twice([name for name in names if name])
    if named_twice:
        raise InvalidInputError(
            f"the CSV header names {', '.join(map(repr, named_twice))} twice: one column each",
            field="body",
        )
    return names


def names_twice(names: list[str]) -> list[str]:
    """The names given more than once, sorted (counted in one pass: a header may be long)."""
    return sorted(name for name, count in Counter(names).items() if count > 1)


def _too_many_cells(reader: csv.DictReader[str], extra: int) -> str:
    columns = len(reader.fieldnames or ())
    return (
        f"CSV line {reader.line_num} has {columns + extra} cells, but the header has "
        f"{columns} columns: quote cells that hold commas, or add the missing column names"
    )


def _which_format(problem: str) -> str:
    keys = ", ".join(f"`{key}`" for key in FORMATS)
    return f"{problem}; send a JSON object with one of {keys} (MLflow's scoring protocol)"


def _records(key: str, value: Any) -> list[Any]:
    if key == "dataframe_split":
        return _split_records(value)
    if isinstance(value, list):
        return value
    if key != "dataframe_records" and isinstance(value, Mapping):
        return _column_records(key, value)
    raise InvalidInputError(f"`{key}` must be a list of objects", field=key)


def _split_records(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, Mapping) or not isinstance(value.get("columns"), list):
        raise InvalidInputError(
            "`dataframe_split` must be an object with `columns` and `data`", field="dataframe_split"
        )
    columns, data = value["columns"], value.get("data")
    if not all(isinstance(column, str) for column in columns):  # a list would be a 500
        raise InvalidInputError(
            "`dataframe_split.columns` must be a list of column names (strings)",
            field="dataframe_split.columns",
        )
    named_twice = names_twice(columns)
    if named_twice:  # a record keeps one value per name: the other column would be lost
        raise InvalidInputError(
            f"`dataframe_split.columns` names {', '.join(map(repr, named_twice))} twice: "
            "one column each",
            field="dataframe_split.columns",
        )
    if not isinstance(data, list) or not all(isinstance(row, list) for row in data):
        raise InvalidInputError(
            "`dataframe_split.data` must be a list of rows", field="dataframe_split"
        )
    for index, row in enumerate(data):
        if len(row) != len(columns):
            raise InvalidInputError(
                f"row {index} has {len(row)} values for {len(columns)} columns",
                field=f"dataframe_split.data[{index}]",
            )
    return [dict(zip(columns, row, strict=True)) for row in data]


def _column_records(key: str, columns: Mapping[str, Any]) -> list[dict[str, Any]]:
    lengths = {len(v) for v in columns.values() if isinstance(v, list)}
    if len(lengths) != 1 or not all(isinstance(v, list) for v in columns.values()):
        raise InvalidInputError(
            f"`{key}` as an object must map each field to a list, all of one length", field=key
        )
    size = lengths.pop()
    return [{name: values[i] for name, values in columns.items()} for i in range(size)]


def top_k_param(params: Mapping[str, Any], default: int) -> int:
    value = params.get("top_k", default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
        raise InvalidInputError(
            "`params.top_k` must be a whole number from 1 to 1000", field="params"
        )
    return value


def mlflow_predictions(predictions: list[dict[str, Any]]) -> dict[str, Any]:
    """The answer `mlflow models serve` gives for this model: the pyfunc's output frame as
    records under `predictions`."""
    return {"predictions": [mlflow_prediction(p) for p in predictions]}


def mlflow_prediction(prediction: dict[str, Any]) -> dict[str, Any]:
    """One row of the pyfunc's frame: a multilabel model adds `tags` and `tag_probabilities`,
    a path model `path` and `path_probabilities` (see `product_model.pyfunc`)."""
    row = {
        "label": prediction["label"],
        "probability": prediction["probability"],
        "top_labels": [entry["label"] for entry in prediction["top_k"]],
        "top_probabilities": [entry["probability"] for entry in prediction["top_k"]],
    }
    for key in ("tags", "path"):
        if key in prediction:
            row[key] = [entry["label"] for entry in prediction[key]]
            row[f"{key.rstrip('s')}_probabilities"] = [e["probability"] for e in prediction[key]]
    return row
