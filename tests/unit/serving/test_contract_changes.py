"""Comparing two served models' contracts: what a hot swap changes for clients."""

from __future__ import annotations

import numpy as np

from serving.contract_changes import contract_changes, describe_changes
from serving.model import ModelRef, ServedModel
from serving.validation import InputField, RequestContract

TITLE = InputField("title", "text", "text")
BRAND = InputField("brand", "tokens", "tokens")


def served(fields: tuple[InputField, ...], classes: list[str], task: str = "single_label"):
    ref = ModelRef("m", "1", "models:/m/1")
    return ServedModel(ref, np.asarray(classes), {}, object(), RequestContract(fields, task))


def test_the_same_contract_and_classes_change_nothing() -> None:
    model = served((TITLE, BRAND), ["a", "b"])
    assert contract_changes(model, served((BRAND, TITLE), ["b", "a"])) == {}


def test_a_role_type_or_task_change_is_named() -> None:
    before = served((TITLE, BRAND), ["a"])
    after = served((TITLE, InputField("brand", "text", "string")), ["a"], "multilabel")
    changes = contract_changes(before, after)
    assert changes == {
        "fields_changed": ["brand (tokens tokens → text string)"],
        "task": ["single_label → multilabel"],
    }
    assert describe_changes(changes) == (
        "fields changed: brand (tokens tokens → text string); task: single_label → multilabel"
    )


def test_classes_are_compared_as_text() -> None:
    """A model whose classes are numbers (a catalog's integer ids) compares as their text."""
    before = served((TITLE,), np.asarray([100, 101]).tolist())
    assert contract_changes(before, served((TITLE,), ["100", "101"])) == {}
