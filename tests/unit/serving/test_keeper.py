"""The model keeper on a hot swap: an operator is told when the model swapped in reads other
input fields or answers other classes than the one it replaces (clients' requests may now be
refused with 422 while /readyz stays 200)."""

from __future__ import annotations

import asyncio
import logging

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from serving.keeper import ModelKeeper
from serving.metrics import ServingMetrics
from serving.model import ModelRef, ServedModel
from serving.settings import Settings
from serving.validation import InputField, RequestContract

AMAZON = RequestContract(
    (
        InputField("asin", "id", "string"),
        InputField("title", "text", "text"),
        InputField("description", "text", "text"),
        InputField("price", "numeric", "price"),
    )
)
PARQUET = RequestContract(
    (
        InputField("pid", "id", "string"),
        InputField("name", "text", "string"),
        InputField("body", "text", "string"),
        InputField("price", "numeric", "number"),
    )
)


class StubPredictor:
    """Enough of a model for the keeper: it never predicts here."""


def served(version: str, contract: RequestContract, classes: list[str]) -> ServedModel:
    ref = ModelRef("product-classifier", version, f"models:/product-classifier/{version}")
    return ServedModel(ref, np.asarray(classes), {}, StubPredictor(), contract)


class SteppingLocator:
    """Names the next model of `models` each time it is asked."""

    can_change = True

    def __init__(self, models: list[ServedModel]) -> None:
        self.models = {model.ref: model for model in models}
        self.refs = [model.ref for model in models]

    def resolve(self) -> ModelRef:
        return self.refs.pop(0)


def swap(before: ServedModel, after: ServedModel) -> ModelKeeper:
    """Serve `before`, then swap to `after` as an alias move would."""
    locator = SteppingLocator([before, after])
    settings = Settings(reload_interval_seconds=0)
    metrics = ServingMetrics(CollectorRegistry())
    keeper = ModelKeeper(settings, metrics, locator, locator.models.__getitem__)  # type: ignore[arg-type]

    async def both() -> None:
        keeper.start()  # the first load
        await keeper.first_attempt.wait()
        assert await keeper.refresh() is True
        await keeper.stop()

    asyncio.run(both())
    assert keeper.model is after
    return keeper


def contract_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage().startswith("model contract changed")]


def test_a_swap_to_other_input_fields_and_classes_is_a_warning(caplog) -> None:
    caplog.set_level(logging.INFO, logger="serving.keeper")
    classes = [f"class-{i}" for i in range(8)]
    swap(served("2", AMAZON, ["games", *classes]), served("5", PARQUET, [*classes, "gaming"]))
    [record] = contract_warnings(caplog)
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        "model contract changed: version 2 → 5: fields removed: asin, title, description; "
        "fields added: pid, name, body; fields changed: price (numeric price → numeric number); "
        "classes removed (1): games; classes added (1): gaming"
    )
    assert record.fields_removed == ["asin", "title", "description"]
    assert record.previous_version == "2" and record.model_version == "5"


def test_many_changed_classes_are_named_first_few_and_counted(caplog) -> None:
    caplog.set_level(logging.INFO, logger="serving.keeper")
    before = served("1", AMAZON, [f"old-{i}" for i in range(100)])
    swap(before, served("2", AMAZON, [f"new-{i}" for i in range(100)]))
    [record] = contract_warnings(caplog)
    assert record.getMessage().endswith("classes added (100): new-0, new-1, new-2, new-3, new-4, …")
    assert "fields" not in record.getMessage()
    assert len(record.classes_removed) == 50  # the log line's fields stay bounded too


def test_a_swap_that_keeps_the_contract_logs_no_warning(caplog) -> None:
    caplog.set_level(logging.INFO, logger="serving.keeper")
    swap(served("1", AMAZON, ["games", "utils"]), served("2", AMAZON, ["games", "utils"]))
    assert not contract_warnings(caplog)
    assert any(r.getMessage() == "model loaded" for r in caplog.records)
