"""The search space: which training options a study varies, and over which values.

A space is a YAML mapping of `product-train` option names to ranges or choice lists (see
`search_space.yaml`, the default). Loading checks everything a trial would otherwise trip over
later: a key written twice, unknown or untunable options, empty or reversed ranges, a range
that draws the wrong kind of value (`space_kinds.py`: a float range for a whole number), values
`TrainConfig` rejects, and n-gram bounds that could cross. All problems come back in one
`ConfigError` (exit 2). Options that do not shape the task's model (SMOTE for label sets) are left
out of the space, with a log line naming them.
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError, model_validator

from product_model.tags import SINGLE_LABEL
from training.config import TrainConfig
from training.errors import ConfigError
from training.tuning.space_file import read_space_file
from training.tuning.space_kinds import kind_problems

log = logging.getLogger(__name__)

# Options that change the model; data, split, tracking and resource options stay fixed.
TUNABLE = (
    "text_max_features",
    "text_ngram_max",
    "id_ngram_min",
    "id_ngram_max",
    "min_df",
    "stemmer",
    "select_k_best",
    "smote",
    "smote_strategy",
    "smote_k_neighbors",
    "estimator",
    "n_estimators",
    "max_features",
    "max_depth",
    "min_samples_leaf",
    "class_weight",
    "tag_weighting",
)
# Options that shape one kind of model only (see training/tag_model.py), and why the other kind
# leaves them out of its space.
SINGLE_LABEL_ONLY = {
    "smote": "SMOTE is not defined for label sets",
    "smote_strategy": "SMOTE is not defined for label sets",
    "smote_k_neighbors": "SMOTE is not defined for label sets",
    "class_weight": "a tag forest weighs rows (tag_weighting), not classes",
}
TAGS_ONLY = {"tag_weighting": "a single_label model balances classes with SMOTE instead"}
# (lower, upper) option pairs whose drawn values must never cross.
ORDERED_PAIRS = (("id_ngram_min", "id_ngram_max"),)
Choice = str | int | float | bool | None


class _Param(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IntRange(_Param):
    type: Literal["int"]
    low: int
    high: int
    step: int = Field(1, ge=1)
    log: bool = False

    @model_validator(mode="after")
    def _check(self) -> IntRange:
        _check_range(self.low, self.high, self.log, self.step != 1)
        return self

    def suggest(self, trial: Any, name: str) -> int:
        return int(trial.suggest_int(name, self.low, self.high, step=self.step, log=self.log))

    def contains(self, value: Any) -> bool:
        if not isinstance(value, int) or isinstance(value, bool):
            return False
        return self.low <= value <= self.high and (value - self.low) % self.step == 0

    def extremes(self) -> list[Choice]:
        return [self.low, self.high]


class FloatRange(_Param):
    type: Literal["float"]
    low: float
    high: float
    step: float | None = Field(None, gt=0)
    log: bool = False

    @model_validator(mode="after")
    def _check(self) -> FloatRange:
        _check_range(self.low, self.high, self.log, self.step is not None)
        return self

    def suggest(self, trial: Any, name: str) -> float:
        return float(trial.suggest_float(name, self.low, self.high, step=self.step, log=self.log))

    def contains(self, value: Any) -> bool:
        return isinstance(value, int | float) and self.low <= value <= self.high

    def extremes(self) -> list[Choice]:
        return [self.low, self.high]


class Categorical(_Param):
    type: Literal["categorical"]
    choices: list[Choice] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> Categorical:
        if len({repr(choice) for choice in self.choices}) != len(self.choices):
            raise ValueError("choices must not repeat")
        return self

    def suggest(self, trial: Any, name: str) -> Choice:
        return trial.suggest_categorical(name, self.choices)

    def contains(self, value: Any) -> bool:
        return any(type(value) is type(choice) and value == choice for choice in self.choices)

    def extremes(self) -> list[Choice]:
        return list(self.choices)


def _check_range(low: float, high: float, log: bool, stepped: bool) -> None:
    if low > high:
        raise ValueError(f"low ({low}) must not be above high ({high})")
    if log and low <= 0:
        raise ValueError("a log range needs low > 0")
    if log and stepped:
        raise ValueError("a range is either log or stepped, not both")


Param = Annotated[IntRange | FloatRange | Categorical, Field(discriminator="type")]


class SearchSpace(RootModel[dict[str, Param]]):
    """Option name → how a trial draws it."""

    def suggest(self, trial: Any) -> dict[str, Any]:
        """One value per option, drawn by the trial's sampler."""
        return {name: param.suggest(trial, name) for name, param in self.root.items()}

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def default_space_path() -> Path:
    return Path(str(resources.files("training.tuning").joinpath("search_space.yaml")))


def load_space(path: Path | None, base: TrainConfig) -> SearchSpace:
    """The space in `path` (default: the packaged one) without the options that do not apply to
    the task or that the user fixed, checked against the base config."""
    path = path or default_space_path()
    content = read_space_file(path)
    try:
        space = SearchSpace.model_validate(content)
    except ValidationError as error:
        raise ConfigError(f"search space {path}: {_explain(error)}; {_HINT}") from None
    problems = _untunable(space)
    if not problems:
        space = without_fixed_options(for_task(space, base.task, path), base, path)
        problems = (
            kind_problems(space.root) or _invalid_values(space, base) or _crossing(space, base)
        )
    if problems:
        raise ConfigError(f"search space {path}: {'; '.join(problems)}; {_HINT}")
    return space


def for_task(space: SearchSpace, task: str, path: Path) -> SearchSpace:
    """The space without the options that do not shape a `task` model (logged, not an error:
    one space file can serve every task)."""
    other = TAGS_ONLY if task == SINGLE_LABEL else SINGLE_LABEL_ONLY
    left_out = {name: other[name] for name in space.root if name in other}
    if not left_out:
        return space
    reasons = "; ".join(f"{name} ({why})" for name, why in left_out.items())
    if len(left_out) == len(space.root):
        usable = ", ".join(name for name in TUNABLE if name not in other)
        raise ConfigError(
            f"search space {path}: none of its options applies to --task {task}: {reasons}; "
            f"give a space with some of {usable}"
        )
    log.info("search space %s: left out for --task %s: %s", path, task, reasons)
    return SearchSpace({k: v for k, v in space.root.items() if k not in left_out})


def given_options(config: TrainConfig) -> dict[str, Any]:
    """The options the user gave (command line or config file), as a config file holds them."""
    values = config.model_dump(mode="json")
    return {name: values[name] for name in config.model_fields_set}


def without_fixed_options(space: SearchSpace, base: TrainConfig, path: Path) -> SearchSpace:
    """The space minus every option the user gave (command line or config file): those keep
    the given value in every trial and in the exported config."""
    fixed = [name for name in space.root if name in base.model_fields_set]
    if fixed and len(fixed) == len(space.root):
        raise ConfigError(
            f"search space {path}: every option in it is fixed by your options "
            f"({', '.join(fixed)}), so nothing is left to tune; drop some of them from the "
            "command line or --config, or pass a --search-space with other options"
        )
    return SearchSpace({k: v for k, v in space.root.items() if k not in fixed})


def space_from_dict(content: dict[str, Any]) -> SearchSpace:
    """A space stored with a study (already checked when the study began)."""
    return SearchSpace.model_validate(content)


_HINT = "see `product-tune --print-space` for the format"


def _explain(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        # Skip the union tag ("int", "float", ...) pydantic puts in the location.
        where = [str(p) for p in item["loc"] if p not in ("int", "float", "categorical")]
        parts.append(f"{'.'.join(where) or 'value'}: {item['msg']}")
    return "; ".join(parts)


def _untunable(space: SearchSpace) -> list[str]:
    unknown = [name for name in space.root if name not in TUNABLE]
    if not unknown:
        return []
    return [f"{', '.join(unknown)} cannot be tuned (tunable options: {', '.join(TUNABLE)})"]


def _invalid_values(space: SearchSpace, base: TrainConfig) -> list[str]:
    problems = []
    values = given_options(base)
    for name, param in space.root.items():
        for value in param.extremes():
            try:
                TrainConfig.model_validate(values | {name: value})
            except ValidationError as error:
                # Rules across options (no field in `loc`) are `_crossing`'s, over whole ranges.
                field_errors = [e for e in error.errors() if e["loc"]]
                if field_errors:
                    reason = field_errors[0]["msg"]
                    problems.append(f"{name}: {value!r} is not a valid value ({reason})")
    return problems


def _bounds(space: SearchSpace, base: TrainConfig, name: str) -> tuple[Any, Any]:
    param = space.root.get(name)
    if param is None:
        value = base.model_dump(mode="json")[name]
        return value, value
    extremes = param.extremes()
    return min(extremes), max(extremes)  # type: ignore[type-var]


def _crossing(space: SearchSpace, base: TrainConfig) -> list[str]:
    problems = []
    for lower, upper in ORDERED_PAIRS:
        if lower not in space.root and upper not in space.root:
            continue
        highest_lower, lowest_upper = _bounds(space, base, lower)[1], _bounds(space, base, upper)[0]
        if highest_lower > lowest_upper:
            lower_text = _reach(space, lower, "can reach", highest_lower)
            upper_text = _reach(space, upper, "can be as low as", lowest_upper)
            problems.append(f"{lower_text} but {upper_text}; keep every {lower} <= every {upper}")
    return problems


def _reach(space: SearchSpace, name: str, verb: str, value: Any) -> str:
    return f"{name} {verb} {value}" if name in space.root else f"{name} is fixed at {value}"
