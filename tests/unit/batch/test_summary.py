"""The run's summary: values of numeric columns that were not numbers are shown, and warned
about once, only when there were some."""

from __future__ import annotations

import json
import logging

import pytest

from batch.summary import Summary, warn_not_numbers


def summary(**counts: int) -> Summary:
    result = Summary("local", "models:/m/1", "m", "1", "out.parquet", rows=10)
    result.not_numbers.update(counts)
    return result


def test_not_numbers_are_in_the_text_and_the_json_when_there_are_some() -> None:
    found = summary(weight=3, price_eur=12)
    assert "  not numbers:     price_eur 12, weight 3 (read as missing)" in found.text()
    assert json.loads(found.json())["not_numbers"] == {"price_eur": 12, "weight": 3}
    assert "not numbers" not in summary().text()
    assert json.loads(summary().json())["not_numbers"] == {}


def test_one_warning_line_names_the_columns_and_counts(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="batch.summary"):
        warn_not_numbers(summary(), "catalog.csv")
        assert caplog.records == []
        warn_not_numbers(summary(weight=3, price_eur=12), "catalog.csv")
    assert [r.getMessage() for r in caplog.records] == [
        "catalog.csv: column 'price_eur': 12 value(s), column 'weight': 3 value(s) "
        "are not numbers and count as missing"
    ]
