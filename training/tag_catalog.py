"""Catalogs whose label is a set of tags (`--task multilabel`) or a category path (`--task path`).

The label column holds a list (JSON lines, Parquet) or a string split at `--label-separator`
(CSV); how cells are read and checked is in `training/tag_labels.py`. Tags (and a path's levels)
are trimmed, mapped by `--label-map` and unified across case as single labels are: `Games` and
`games ` are one tag, spelled as most products spell it. A path's levels, most general first,
become its nodes named by their full path, joined by the catalog's joiner (`A`, `A > B`,
`A > B > C`; `A`, `A/B` with `--label-separator /`), so a path model is a multi-label model over
the category tree. Tags
(or nodes) on fewer than `--min-tag-count` products are dropped with a warning that counts them,
and products left without any tag are dropped. The label column is removed from the rows once
read: it can never also be an input.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from product_model.features import as_text
from product_model.tags import PATH, PATH_SEPARATOR, path_nodes
from training.catalog import (
    Catalog,
    bundled_sample,
    check_columns,
    file_sha256,
    normalize_labels,
    parse_numeric_columns,
    read_catalog_file,
    warn_about_options,
    warn_removed_rows,
)
from training.catalog_duplicates import duplicated_rows
from training.catalog_keys import keys_as_written
from training.config import TrainConfig
from training.errors import DataError
from training.labels import apply_label_map, load_label_map
from training.split import SplitDefinition, holdout_split
from training.tag_labels import (
    GAP_INSIDE,
    check_joiner,
    check_label_separator,
    check_tag_values,
    parse_levels,
    parse_tags,
    path_joiner,
    warn_empty_levels,
)

log = logging.getLogger(__name__)
WARNED_COUNTS = (
    "dropped_rare_tags",
    "dropped_rare_tag_uses",
    "dropped_duplicates",
    "dropped_empty_path_level",
)
"""Counts a warning of their own already told: not repeated in the removed-rows summary."""


def unify_tags(tags: pd.Series, label_map: str | None) -> pd.Series:
    """Each row's tags (or levels) mapped by `--label-map` and unified across case exactly as
    single labels are (`normalize_labels`: the most used spelling wins), repeats removed."""
    uses = tags.reset_index(drop=True).explode().dropna().astype(str)
    if uses.empty:
        return tags
    if label_map:
        uses = apply_label_map(uses, load_label_map(Path(label_map)))
    uses = normalize_labels(uses)
    uses = uses[uses != ""]
    rows = uses.groupby(level=0, sort=False).agg(lambda row: tuple(dict.fromkeys(row)))
    unified = [rows.get(position, ()) for position in range(len(tags))]
    return pd.Series(unified, index=tags.index, dtype=object)


@dataclass
class TagCatalog(Catalog):
    """A multi-label or path catalog; `joiner` joins a path's levels in its node names (and in
    the model's answers): see training/tag_labels.py."""

    joiner: str = PATH_SEPARATOR


def read_labels(
    frame: pd.DataFrame, config: TrainConfig, path: Path, joiner: str
) -> tuple[pd.Series, int]:
    """Each row's tags, or the nodes of its path named with `joiner`; and how many paths gave
    no node for an empty level before a named one (warned about here)."""
    values = frame[config.label_column]
    if config.task != PATH:
        tags = values.map(lambda value: parse_tags(value, config.label_separator))
        return unify_tags(tags, config.label_map), 0
    parsed = values.map(lambda value: parse_levels(value, config.label_separator))
    gaps = parsed.map(lambda levels_gap: levels_gap[1])
    warn_empty_levels(frame, gaps, config, path)
    levels = unify_tags(parsed.map(lambda levels_gap: levels_gap[0]), config.label_map)
    check_joiner(levels, joiner, frame, config, path)
    nodes = levels.map(lambda named: tuple(path_nodes(named, joiner)))
    return nodes, int((gaps == GAP_INSIDE).sum())


def drop_rare_tags(labels: pd.Series, min_count: int) -> tuple[pd.Series, dict[str, int]]:
    """Labels without the tags on fewer than `min_count` rows; counts of what went."""
    counts = Counter(tag for tags in labels for tag in tags)
    rare = {tag for tag, n in counts.items() if n < min_count}
    kept = labels.map(lambda tags: tuple(t for t in tags if t not in rare))
    dropped = {
        "dropped_rare_tags": len(rare),
        "dropped_rare_tag_uses": sum(counts[t] for t in rare),
    }
    if rare:
        log.warning(
            "dropped %d tag(s) found on fewer than %d products (%d uses; --min-tag-count), e.g. %s",
            len(rare),
            min_count,
            dropped["dropped_rare_tag_uses"],
            ", ".join(sorted(rare)[:5]),
        )
    return kept, dropped


def clean_tag_catalog(
    frame: pd.DataFrame, config: TrainConfig, path: Path, joiner: str = PATH_SEPARATOR
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Rows with text, their tags in `label`, no duplicate, no rare tag; the label column gone."""
    counts = {"rows_read": len(frame), "malformed_lines": frame.attrs.get("malformed_lines", 0)}
    frame = keys_as_written(frame, config)
    labels, gapped = read_labels(frame, config, path, joiner)
    text_columns = [c for c in config.text_columns if c in frame.columns]
    text = frame[text_columns].map(as_text).agg(" ".join, axis=1).str.strip()
    frame = frame.drop(columns=[config.label_column]).assign(label=labels)
    no_label, no_text = labels.map(len) == 0, text == ""
    counts["dropped_no_label"] = int(no_label.sum()) - gapped
    counts["dropped_empty_path_level"] = gapped
    counts["dropped_no_text"] = int((no_text & ~no_label).sum())
    frame, text = frame[~no_label & ~no_text], text[~no_label & ~no_text]
    duplicated = duplicated_rows(frame, text, config, text_columns)
    counts["dropped_duplicates"] = int(duplicated.sum())
    frame = frame[~duplicated]
    kept, dropped = drop_rare_tags(frame["label"], config.min_tag_count)
    frame = frame.assign(label=kept)
    counts |= dropped
    counts["dropped_no_tag_left"] = int((kept.map(len) == 0).sum())
    frame = frame[kept.map(len) > 0]
    counts["rows_kept"] = len(frame)
    counts["classes"] = len({tag for tags in frame["label"] for tag in tags})
    return frame.reset_index(drop=True), counts


def load_tag_catalog(config: TrainConfig) -> TagCatalog:
    """Read, check and clean a multi-label or path catalog; `label` holds tuples of tags."""
    path = Path(config.data) if config.data else bundled_sample()
    raw = read_catalog_file(path, config)
    check_columns(raw, config, path)
    counts = parse_numeric_columns(raw, config, path)
    check_label_separator(raw[config.label_column], config, path)
    check_tag_values(raw, config, path)
    warn_about_options(config)
    joiner = path_joiner(raw[config.label_column], config)
    frame, cleaned = clean_tag_catalog(raw, config, path, joiner)
    counts |= cleaned
    warn_removed_rows(path, counts, warned=WARNED_COUNTS)
    if counts["classes"] < 2:
        raise DataError(
            f"{path}: after cleaning, {counts['rows_kept']} rows carry {counts['classes']} "
            f"tag(s) on at least {config.min_tag_count} products (--min-tag-count); "
            f"{config.task} training needs 2 or more (is '{config.label_column}' a list, or does "
            "it need --label-separator?)"
        )
    return TagCatalog(frame, str(path), file_sha256(path), counts, joiner=joiner)


def split_tag_catalog(
    catalog: Catalog, definition: SplitDefinition
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Training rows, holdout rows, and the tags the model learns: those on 2+ training rows
    (others are dropped from both sides, with a warning)."""
    train, holdout = holdout_split(catalog.frame, definition)
    counts = Counter(tag for tags in train["label"] for tag in tags)
    tags = sorted(tag for tag, n in counts.items() if n >= 2)
    missing = sorted({t for tags_ in catalog.frame["label"] for t in tags_} - set(tags))
    if missing:
        log.warning(
            "tags on fewer than 2 training rows after the holdout split are dropped: %s",
            ", ".join(missing[:20]),
        )
        known = set(tags)
        train = train.assign(label=train["label"].map(lambda t: tuple(x for x in t if x in known)))
        holdout = holdout.assign(
            label=holdout["label"].map(lambda t: tuple(x for x in t if x in known))
        )
        train, holdout = train[train["label"].map(len) > 0], holdout[holdout["label"].map(len) > 0]
    if len(tags) < 2 or holdout.empty:
        raise DataError(
            f"{catalog.source}: after the holdout split, {len(train)} training rows with "
            f"{len(tags)} tag(s) and {len(holdout)} holdout rows remain; training needs 2+ tags "
            "and a holdout (more rows, or another --test-size)"
        )
    return train, holdout, tags


def indicator_matrix(labels: pd.Series, tags: list[str]) -> np.ndarray:
    """The 0/1 matrix of rows x tags (tags not in `tags` are ignored)."""
    column = {tag: j for j, tag in enumerate(tags)}
    matrix = np.zeros((len(labels), len(tags)), dtype=np.uint8)
    for i, row in enumerate(labels):
        for tag in row:
            if tag in column:
                matrix[i, column[tag]] = 1
    return matrix
