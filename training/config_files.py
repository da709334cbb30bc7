"""From a config file or a mapping of options to one validated `TrainConfig`, or one ConfigError.

A config file (YAML, JSON or TOML) is a flat mapping whose keys are `TrainConfig`'s field names;
relative file paths in it are relative to its folder (`PATH_OPTIONS`). Whatever is wrong in it, or
in the command line's options, is reported in one line that names where it came from.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    JsonConfigSettingsSource,
    TomlConfigSettingsSource,
    YamlConfigSettingsSource,
)

from training.config import TrainConfig
from training.errors import ConfigError

CONFIG_FILE_SOURCES: dict[str, Callable[[type[BaseSettings], Path], InitSettingsSource]] = {
    ".json": JsonConfigSettingsSource,
    ".toml": TomlConfigSettingsSource,
}


def read_config_file(path: Path) -> dict[str, Any]:
    """The mapping in a YAML, JSON or TOML config file (YAML unless it ends in .json or .toml)."""
    try:
        with path.open("rb"):  # the library's sources skip a missing file silently
            pass
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror}") from None
    source = CONFIG_FILE_SOURCES.get(path.suffix, YamlConfigSettingsSource)
    try:
        values = source(TrainConfig, path)()
    except (ValueError, TypeError, AttributeError, OSError, yaml.YAMLError) as error:
        kind = path.suffix[1:].upper() if source is not YamlConfigSettingsSource else "YAML"
        raise ConfigError(
            f"config file {path}: not valid {kind}, or not a mapping of option: value "
            f"({' '.join(str(error).split())})"
        ) from None
    return resolve_paths(values, path.parent)


PATH_OPTIONS = ("data", "label_map")
"""The options that name a file. Relative in a config file, they are relative to its folder (as
docker compose, kustomize and MLflow projects read theirs); on the command line, to the working
directory."""


def file_paths(values: dict[str, Any]) -> dict[str, str]:
    """The options of `values` that name a local file (`PATH_OPTIONS`, not blank, not a URI)."""
    return {
        name: value
        for name in PATH_OPTIONS
        if isinstance(value := values.get(name), str) and value.strip() and "://" not in value
    }


def resolve_paths(values: dict[str, Any], folder: Path) -> dict[str, Any]:
    """`values` with each relative file path (`~` expanded) prefixed by `folder`."""
    paths = file_paths(values)
    return values | {name: str(folder / Path(value).expanduser()) for name, value in paths.items()}


def make_config(values: dict[str, Any], source: str = "options", **sources: Any) -> TrainConfig:
    """Validate `values` (and `sources`, e.g. the CLI's) into a TrainConfig, or one ConfigError."""
    try:
        return TrainConfig(**values, **sources)
    except ValidationError as error:
        raise ConfigError(describe_problems(error, source)) from None


def describe_problems(error: ValidationError, source: str) -> str:
    """One line: unknown options first (with where to find the known ones), then bad values."""
    unknown = [str(item["loc"][0]) for item in error.errors() if item["type"] == "extra_forbidden"]
    if unknown:
        return (
            f"unknown option(s) {', '.join(unknown)} in {source}; "
            "run `product-train --help` for the list"
        )
    problems = "; ".join(
        f"{item['loc'][0]} (--{str(item['loc'][0]).replace('_', '-')}): {item['msg']}"
        if item["loc"]
        else str(item["msg"]).removeprefix("Value error, ")
        for item in error.errors()
    )
    return f"invalid {source}: {problems}"
