"""Reading a search-space file: YAML holding one mapping of option: range. A key written twice is
refused, naming both lines, as the `--label-map` reader does: YAML would keep the last value
without a word."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from training.errors import ConfigError


def read_space_file(path: Path) -> dict[str, Any]:
    """The mapping in the search-space file at `path`; a ConfigError (exit 2) naming the file, and
    the line where there is one, if it cannot be read, is not YAML, is no mapping, or repeats a
    key."""
    try:
        text = path.read_text("utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read search space {path}: {error.strerror}") from None
    try:
        content = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f", line {mark.line + 1} column {mark.column + 1}" if mark else ""
        reason = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(f"search space {path}{where} is not valid YAML: {reason}") from None
    if not isinstance(content, dict) or not content:
        raise ConfigError(f"search space {path} must be a non-empty mapping of option: range")
    twice = _key_written_twice(yaml.compose(text, Loader=yaml.SafeLoader))
    if twice:
        raise ConfigError(f"search space {path}, {twice}; keep one of the two")
    return content


def _key_written_twice(node: yaml.Node | None, owner: str = "") -> str | None:
    """Where a mapping of the file repeats a key (YAML would keep the last value silently), as
    `lines 3 and 7: 'n_estimators' is given twice`; None if no key repeats."""
    if isinstance(node, yaml.SequenceNode):
        return next(filter(None, (_key_written_twice(item, owner) for item in node.value)), None)
    if not isinstance(node, yaml.MappingNode):
        return None
    lines: dict[str, int] = {}
    for key_node, value_node in node.value:
        key, line = str(key_node.value), key_node.start_mark.line + 1
        if isinstance(key_node, yaml.ScalarNode) and key in lines:
            where = f"line {line}" if lines[key] == line else f"lines {lines[key]} and {line}"
            return f"{where}: {key!r}{owner} is given twice"
        lines.setdefault(key, line)
        inner = _key_written_twice(value_node, f" (in {key!r}{owner})")
        if inner:
            return inner
    return None
