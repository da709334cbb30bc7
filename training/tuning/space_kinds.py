"""Whether each search-space entry draws the kind of value its option takes.

Checking a range's two ends is not enough: pydantic takes 1.0 and 3.0 for a whole-number option,
yet a float range between them draws 1.23, which `product-train` rejects. So before a study starts,
a whole-number option must be drawn by `type: int` (or choices written as whole numbers), an option
with named values by `type: categorical`, and `max_features` by whole numbers or by fractions below
1 (1.0 and above are numbers of features). Each problem names the option and what to write.
"""

from __future__ import annotations

import math
from typing import Any, Literal, get_args, get_origin

import yaml

from training.config import TrainConfig

# Tunable options that hold a whole number (a count, a length, a depth).
WHOLE_NUMBER_OPTIONS = frozenset(
    {
        "text_max_features",
        "text_ngram_max",
        "id_ngram_min",
        "id_ngram_max",
        "min_df",
        "select_k_best",
        "smote_k_neighbors",
        "n_estimators",
        "max_depth",
        "min_samples_leaf",
    }
)
# Options with named values whose names are not listed by their type.
CHOICE_EXAMPLES: dict[str, list[Any]] = {"smote_strategy": ["share:0.05", "share:0.1", "min:50"]}


def kind_problems(entries: dict[str, Any]) -> list[str]:
    """One problem per entry (option name → IntRange, FloatRange or Categorical) that draws
    values of the wrong kind for its option."""
    found = (_problem(name, param) for name, param in entries.items())
    return [problem for problem in found if problem]


def _problem(name: str, param: Any) -> str | None:
    if name in WHOLE_NUMBER_OPTIONS:
        return _whole_number_problem(name, param)
    if name == "max_features":
        return _max_features_problem(param)
    if param.type != "categorical":
        choices = _flow(named_choices(name))
        takes = "text values such as" if name in CHOICE_EXAMPLES else "one of"
        return (
            f"{name} takes {takes} {choices}, not a number range; "
            f"write {name}: {{type: categorical, choices: {choices}}}"
        )
    return None


def _whole_number_problem(name: str, param: Any) -> str | None:
    if param.type == "float":
        return (
            f"{name} is a whole number, so a float range would draw fractions such as "
            f"{_between(param.low, param.high)}; write {name}: {_int_range(param)}"
        )
    if param.type == "categorical":
        # Whole values written as 2.0 or '2' (pydantic would take them; the best config would
        # repeat them so); a fraction such as 1.5 is a bad value, which `_invalid_values` names.
        written = [c for c in param.choices if type(c) is not int and _as_whole(c) is not c]
        if written:
            return (
                f"{name} is a whole number, but its choice(s) {_flow(written)} are not written "
                f"as one; write each without quotes or decimals, e.g. choices: "
                f"{_flow([_as_whole(c) for c in param.choices])}"
            )
    return None


def _max_features_problem(param: Any) -> str | None:
    if param.type == "float" and param.high >= 1:
        return (
            f"max_features: a float range draws fractions of the features, so it must stay "
            f"below 1 (1.0 and above are numbers of features); write max_features: "
            f"{{type: float, low: {param.low if param.low < 0.5 else 0.01}, high: 0.5}} for "
            "fractions, or {type: int, low: 100, high: 1000} for numbers of features"
        )
    return None


def named_choices(name: str) -> list[Any]:
    """The values an option with named values takes (`TrainConfig`'s Literal, or examples)."""
    annotation = TrainConfig.model_fields[name].annotation
    if annotation is bool:
        return [True, False]
    if get_origin(annotation) is Literal:
        return list(get_args(annotation))
    return CHOICE_EXAMPLES.get(name, [])


def _int_range(param: Any) -> str:
    low = max(1, math.ceil(param.low))
    high = max(low, math.floor(param.high))
    log = ", log: true" if param.log else ""
    return f"{{type: int, low: {low}, high: {high}{log}}}"


def _between(low: float, high: float) -> str:
    """A value with a fractional part inside [low, high] (or just above low if there is none)."""
    middle = low + (high - low) * 0.37
    return f"{middle:.2f}" if middle % 1 else f"{low + 0.5:.1f}"


def _as_whole(value: Any) -> Any:
    """`2.0`, `'2'` or `True` as a whole number; other values (None, 1.5, 'x') themselves."""
    if value is None or type(value) is int:
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value
    return int(number) if number.is_integer() else value


def _flow(values: list[Any]) -> str:
    """`values` as a one-line YAML list, as the user would write it in the file."""
    return str(yaml.safe_dump(values, default_flow_style=True, width=10**6)).strip()
