"""The search space: which training options a study varies, and over which values.

A space is a YAML mapping of `product-train` option names to ranges or choice lists (see
`search_space.yaml`, the default). Loading checks everything a trial would otherwise trip over
later: unknown or untunable options, empty or reversed ranges, values `TrainConfig` rejects, and
n-gram bounds that could cross. All problems come back in one `ConfigError` (exit 2).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError, model_validator

from training.config import TrainConfig
from training.errors import ConfigError

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
)
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
    """The space in `path` (default: the packaged one) without the options the user fixed,
    checked against the base config."""
    path = path or default_space_path()
    content = _read_yaml(path)
    try:
        space = SearchSpace.model_validate(content)
    except ValidationError as error:
        raise ConfigError(f"search space {path}: {_explain(error)}; {_HINT}") from None
    problems = _untunable(space)
    if not problems:
        space = without_fixed_options(space, base, path)
        problems = _invalid_values(space, base) or _crossing(space, base)
    if problems:
        raise ConfigError(f"search space {path}: {'; '.join(problems)}; {_HINT}")
    return space


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


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        content = yaml.safe_load(path.read_text("utf-8"))
    except OSError as error:
        raise ConfigError(f"cannot read search space {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f", line {mark.line + 1} column {mark.column + 1}" if mark else ""
        reason = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(f"search space {path}{where} is not valid YAML: {reason}") from None
    if not isinstance(content, dict) or not content:
        raise ConfigError(f"search space {path} must be a non-empty mapping of option: range")
    return content


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
    values = base.model_dump(mode="json")
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
