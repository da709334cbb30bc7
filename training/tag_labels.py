"""The label cells of a multi-label or path catalog read as tags or path levels, and the checks
that need the whole label column: a separator most labels hold that no option splits, one given
that splits none, an object or a nested list where a tag belongs, empty path levels, and a path
level holding the joiner of node names.

A path's nodes are named by their full path, its levels joined by the catalog's *joiner*: the
`--label-separator` its text labels are split at, spaced as they write it (`Desktop/games` with
`--label-separator /`; `A > B` with '>' or ' > ' on "A > B"), or ` > ` when the levels come as
lists (or no separator is given). The model answers paths spelled that way, so a level must not
hold the joiner: `X > A > B` would name both the path [X, A > B] and the path [X, A, B].
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from product_model.features import as_text
from product_model.tags import MULTILABEL, PATH, PATH_SEPARATOR
from training.catalog_files import row_name
from training.config import TrainConfig
from training.errors import DataError

log = logging.getLogger(__name__)
_SPACES = re.compile(r"\s+")
Tags = tuple[str, ...]

LIKELY_SEPARATORS = (" > ", "|", ";")
"""Without --label-separator, text labels most of which hold one of these stop the run (few real
tag or category names hold them)."""
NAME_SEPARATORS = {MULTILABEL: ",", PATH: "/"}
"""...and a warning suggests these: the usual tag and path separators, which real names hold too
("Clothing, Shoes & Jewelry", "Audio/Video"), so they cannot stop a run."""
GAP_AT_END, GAP_INSIDE = "end", "inside"


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _shown(value: Any) -> Any:
    """A cell as a message shows it (a Parquet array as the list it holds)."""
    return value.tolist() if isinstance(value, np.ndarray) else value


def split_text(text: str, separator: str | None) -> list[str]:
    """A text label split at `separator`. A separator at either end marks an empty item even
    without its spaces: a CSV reader drops the spaces that open a cell (' > video' arrives as
    '> video') and the cell is trimmed."""
    if not separator:
        return [text]
    items = text.strip().split(separator)
    core = separator.strip()
    if core and core != separator:
        if items[0].startswith(core):
            items[:1] = ["", items[0][len(core) :]]
        if items[-1].endswith(core):
            items[-1:] = [items[-1][: -len(core)], ""]
    return items


def label_items(value: Any, separator: str | None) -> list[str]:
    """One label cell's items in their order as trimmed text, a blank item as ''."""
    if _is_blank(value):
        return []
    if isinstance(value, str):
        items: list[Any] = split_text(value, separator)
    elif isinstance(value, list | tuple | np.ndarray):
        items = list(value)
    else:
        items = [value]
    return [_SPACES.sub(" ", as_text(item)).strip() for item in items]


def parse_tags(value: Any, separator: str | None) -> Tags:
    """One label cell as tags in their order, blanks and repeats removed."""
    return tuple(dict.fromkeys(item for item in label_items(value, separator) if item))


def parse_levels(value: Any, separator: str | None) -> tuple[Tags, str]:
    """One label cell as path levels, most general first, and where it had an empty level
    ('' none, GAP_AT_END, GAP_INSIDE). Empty levels at the end are left out (the path is whole); a
    path with an empty level before a named one gives no levels: its deeper levels have no known
    parent, and cutting it there would teach the model that the product stops at that level."""
    items = label_items(value, separator)
    named = [item for item in items if item]
    if len(named) in (0, len(items)):
        return tuple(dict.fromkeys(named)), ""
    if "" in items[: items.index(named[-1])]:
        return (), GAP_INSIDE
    return tuple(dict.fromkeys(named)), GAP_AT_END


def path_joiner(values: pd.Series, config: TrainConfig) -> str:
    """What joins a path's levels in node names and answers: --label-separator as the text
    labels split at it write it (`--label-separator '>'` on "A > B" gives ' > ', on "A>B" '>'),
    else ' > ' (levels given as lists, or no separator)."""
    separator = config.label_separator
    texts = [v for v in values if isinstance(v, str) and separator and separator in v]
    if not separator or not texts:
        return PATH_SEPARATOR
    core = separator.strip()
    if not core:
        return separator
    spellings: Counter[str] = Counter()
    for text in texts:
        for match in re.finditer(rf"(\s*){re.escape(core)}(\s*)", text):
            before, after = (" " if space else "" for space in match.groups())
            spellings[before + core + after] += 1
    return spellings.most_common(1)[0][0]


def check_tag_values(frame: pd.DataFrame, config: TrainConfig, path: Path) -> None:
    """Stop at a label that is an object or holds an object or a list: a tag is a text or a
    number, and what the object or list would become (its words joined) is no tag the file
    names."""
    column = config.label_column
    for position, value in enumerate(frame[column]):
        if isinstance(value, Mapping):
            inner: Any = value
        elif isinstance(value, list | tuple | np.ndarray):
            inner = next(
                (i for i in value if isinstance(i, Mapping | list | tuple | np.ndarray)), None
            )
        else:
            continue
        if inner is None:
            continue
        kind = "an object" if isinstance(inner, Mapping) else "a list inside the list"
        verb = "is" if inner is value else "holds"
        raise DataError(
            f"{path}, {row_name(frame, position)}, column '{column}': {_shown(value)!r} {verb} "
            f"{kind}; {config.task} training reads a list of texts or numbers per row, or a text "
            "split at --label-separator: fix that row"
        )


def _holding(texts: list[str], separator: str) -> list[str]:
    """The texts holding `separator` when at least half of them do, else none."""
    joined = [text for text in texts if separator in text]
    return joined if texts and len(joined) >= len(texts) / 2 else []


def check_label_separator(values: pd.Series, config: TrainConfig, path: Path) -> None:
    """Without --label-separator, stop when most text labels hold " > ", "|" or ";" (each would
    be one tag, or one unparented path node) and warn when they hold the task's usual separator
    (NAME_SEPARATORS); with it, warn when it splits none of them."""
    texts = [value.strip() for value in values if isinstance(value, str) and value.strip()]
    if config.label_separator:
        _warn_if_unused(values, texts, config, path)
        return
    for separator in LIKELY_SEPARATORS:
        if joined := _holding(texts, separator):
            raise DataError(
                f"{path}: '{config.label_column}' holds strings such as {joined[0]!r} and no "
                f"--label-separator splits them; {config.task} training reads a list per row or "
                f"a string split at --label-separator (here perhaps --label-separator "
                f"'{separator}')"
            )
    separator = NAME_SEPARATORS[config.task]
    if joined := _holding(texts, separator):
        log.warning(
            "%s: most labels of '%s' hold '%s' (e.g. %r) and no --label-separator splits them: "
            "each is read whole, as %s; if '%s' separates them, pass --label-separator '%s'",
            path.name,
            config.label_column,
            separator,
            joined[0],
            _read_whole(config),
            separator,
            separator,
        )


def _read_whole(config: TrainConfig) -> str:
    return "a path of one level" if config.task == PATH else "one tag"


def _warn_if_unused(values: pd.Series, texts: list[str], config: TrainConfig, path: Path) -> None:
    """Warn when --label-separator splits none of the labels (say so with one of them)."""
    separator = config.label_separator
    assert separator
    if any(separator in text for text in texts):
        return
    present = [_shown(value) for value in values if not _is_blank(value)]
    if texts:
        outcome, example = f"each is read whole, as {_read_whole(config)}", texts[0]
    elif present:
        outcome, example = "they are lists, which need no separator", present[0]
    else:
        return
    log.warning(
        "%s: --label-separator '%s' splits none of the labels of '%s' (e.g. %r): %s",
        path.name,
        separator,
        config.label_column,
        example,
        outcome,
    )


def warn_empty_levels(
    frame: pd.DataFrame, gaps: pd.Series, config: TrainConfig, path: Path
) -> None:
    """One warning counting the paths with an empty level, with one of them, and what was done."""
    with_gap = np.flatnonzero((gaps != "").to_numpy())
    if not with_gap.size:
        return
    first = int(with_gap[0])
    log.warning(
        "%s: %d row(s) of '%s' have an empty path level (e.g. %s: %r): %d with an empty level "
        "before a named one are dropped (their deeper levels have no known parent), %d are read "
        "without their empty last level(s)",
        path.name,
        with_gap.size,
        config.label_column,
        row_name(frame, first),
        _shown(frame[config.label_column].iloc[first]),
        int((gaps == GAP_INSIDE).sum()),
        int((gaps == GAP_AT_END).sum()),
    )


def check_joiner(
    levels: pd.Series, joiner: str, frame: pd.DataFrame, config: TrainConfig, path: Path
) -> None:
    """Stop at a path level (after --label-map) that holds the joiner of node names: its path
    would be merged with the deeper path spelled the same."""
    for position, row in enumerate(levels):
        level = next((level for level in row if joiner in level), None)
        if level is None:
            continue
        fix = (
            "or pass a --label-separator that no level holds"
            if joiner == config.label_separator
            else "levels given as lists are joined with ' > '"
        )
        raise DataError(
            f"{path}, {row_name(frame, position)}, column '{config.label_column}': the path level "
            f"{level!r} holds '{joiner}', which joins a path's levels in node names, so "
            f"{joiner.join(row)!r} would read as a deeper path; rename that level in the file or "
            f"with --label-map ({fix})"
        )
