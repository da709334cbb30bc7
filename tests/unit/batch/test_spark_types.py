"""The Spark engine's UDF returns, for every task, the list columns of the local engine's output
with the same element types; nothing else is a list."""

from __future__ import annotations

import pyarrow as pa
import pytest

from batch.scoring import output_schema
from batch.spark import list_columns, result_type

SPARK_ELEMENT_TYPES = {"array<string>": pa.string(), "array<double>": pa.float64()}


@pytest.mark.parametrize("task", ["single_label", "multilabel", "path"])
def test_the_udf_returns_the_list_columns_of_the_local_output(task: str) -> None:
    local = {f.name: f.type.value_type for f in output_schema(task) if pa.types.is_list(f.type)}
    spark = {name: SPARK_ELEMENT_TYPES[kind] for name, kind in list_columns(task)}
    assert spark == local


def test_the_result_type_names_each_task_s_own_fields() -> None:
    assert result_type("single_label") == (
        "label string, probability double, top_labels array<string>, "
        "top_probabilities array<double>"
    )
    assert result_type("multilabel").endswith(
        ", tags array<string>, tag_probabilities array<double>"
    )
    assert result_type("path").endswith(", path array<string>, path_probabilities array<double>")
