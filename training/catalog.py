"""Reading catalogs and cleaning them into labelled training rows.

The readers of `training/catalog_files.py` turn a file into a DataFrame, or stop with one
`DataError` naming the file and line. Here the columns are checked and numbers parsed (a bad one
is named by file, line and column), then `clean_catalog` removes what cannot be trained on and
counts every removal, so the counts can be printed and logged.
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import pandas as pd

from product_model.contract import is_present, to_numbers
from product_model.features import as_text
from training.catalog_duplicates import duplicated_rows
from training.catalog_files import detect_format as detect_format  # imported from here by others
from training.catalog_files import read_catalog_file, row_name
from training.catalog_keys import keys_as_written
from training.config import TrainConfig
from training.errors import DataError
from training.label_variants import VariantGroup, find_variants
from training.labels import (
    LabelMap,
    apply_label_map,
    check_other_label,
    check_other_label_not_mapped,
    load_label_map,
)

log = logging.getLogger(__name__)

AMAZON_FIELDS = frozenset(
    {
        "asin",
        "title",
        "description",
        "feature",
        "brand",
        "category",
        "main_cat",
        "also_buy",
        "also_view",
        "image",
        "price",
        "rank",
        "details",
        "date",
        "similar_item",
        "tech1",
        "tech2",
    }
)
_SPACES = re.compile(r"\s+")


@dataclass
class Catalog:
    """Clean, labelled rows plus where they came from, what was removed, and label variants."""

    frame: pd.DataFrame
    source: str
    sha256: str
    counts: dict[str, int] = field(default_factory=dict)
    variants: list[VariantGroup] = field(default_factory=list)

    @property
    def labels(self) -> pd.Series:
        return self.frame["label"]


def bundled_sample() -> Path:
    """The sample catalog that ships with the package."""
    return Path(str(resources.files("training.data").joinpath("sample_catalog.jsonl.gz")))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


COLUMN_OPTIONS = (
    "label_column",
    "id_column",
    "text_columns",
    "token_columns",
    "numeric_columns",
    "char_ngram_columns",
)
"""The options that name catalog columns."""


def use_catalog_spelling(columns: Iterable[str], config: TrainConfig) -> None:
    """Spell each column option as the catalog spells the column it names, names compared after
    Unicode NFC normalisation: a header may write "Größe" with a decomposed "ö" that the option,
    typed on a keyboard, composes. The model's field names are then the catalog's own (serving
    and batch scoring match either form). The catalog's names are distinct after NFC
    (`check_distinct_columns`)."""
    spellings = {unicodedata.normalize("NFC", column): column for column in columns}

    def catalog_spelling(name: str) -> str:
        return spellings.get(unicodedata.normalize("NFC", name), name)

    for option in COLUMN_OPTIONS:
        value = getattr(config, option)
        if isinstance(value, list):
            spelled: list[str] | str | None = [catalog_spelling(name) for name in value]
        else:
            spelled = catalog_spelling(value) if value else value
        if spelled != value:
            setattr(config, option, spelled)


def check_columns(frame: pd.DataFrame, config: TrainConfig, path: Path) -> None:
    """Spell the column options as the catalog does (`use_catalog_spelling`), then stop on a
    missing label column or a mapped column the file does not have."""
    use_catalog_spelling(frame.columns, config)
    available = ", ".join(sorted(frame.columns)[:30])
    if config.label_column not in frame.columns:
        raise DataError(
            f"{path}: label column '{config.label_column}' not found; columns are: {available}; "
            "set --label-column"
        )
    mapped = [*config.text_columns, *config.token_columns, *config.numeric_columns]
    if config.id_column:
        mapped.append(config.id_column)
    unknown = [c for c in mapped if c not in frame.columns and c not in AMAZON_FIELDS]
    if unknown:
        raise DataError(
            f"{path}: column(s) {', '.join(unknown)} not found; columns are: {available}"
        )
    if not any(c in frame.columns for c in config.text_columns):
        raise DataError(
            f"{path}: none of the text columns ({', '.join(config.text_columns)}) exist; "
            f"columns are: {available}; set --text-columns"
        )


def parse_numeric_columns(frame: pd.DataFrame, config: TrainConfig, path: Path) -> dict[str, int]:
    """Numeric columns as numbers (CSV cells arrive as text): blanks become missing values;
    values that are not numbers are counted, and stop the run past `max_bad_numeric_share`."""
    bad_counts: dict[str, int] = {}
    for column in config.numeric_columns:
        if column not in frame.columns:
            continue
        raw = frame[column]
        parsed, present = to_numbers(raw), is_present(raw)
        bad = parsed.isna() & present
        share = bad.sum() / max(1, present.sum())
        if share > config.max_bad_numeric_share:
            first = int(bad.to_numpy().nonzero()[0][0])
            raise DataError(
                f"{path}, {row_name(frame, first)}, column '{column}': "
                f"{raw.iloc[first]!r} is not a number ({int(bad.sum())} of "
                f"{int(present.sum())} values are not); fix the file, drop the column from "
                "--numeric-columns, or raise --max-bad-numeric-share"
            )
        if bad.any():
            log.warning(
                "%s: column '%s': %d value(s) are not numbers and count as missing",
                path.name,
                column,
                int(bad.sum()),
            )
        bad_counts[f"bad_numeric_{column}"] = int(bad.sum())
        frame[column] = parsed
    return bad_counts


def normalize_labels(labels: pd.Series) -> pd.Series:
    """Trim and collapse spaces; labels equal but for case take their most frequent spelling."""
    cleaned = labels.map(lambda value: _SPACES.sub(" ", as_text(value)).strip())
    spellings = Counter(cleaned[cleaned != ""])
    canonical: dict[str, str] = {}
    for spelling, _ in spellings.most_common():
        canonical.setdefault(spelling.casefold(), spelling)
    return cleaned.map(lambda value: canonical.get(value.casefold(), value))


def clean_catalog(frame: pd.DataFrame, config: TrainConfig) -> tuple[pd.DataFrame, dict[str, int]]:
    """Drop rows with no label, no text or a duplicated id, and handle small classes."""
    counts = {"rows_read": len(frame), "malformed_lines": frame.attrs.get("malformed_lines", 0)}
    frame = keys_as_written(frame, config)
    labels = frame[config.label_column].map(lambda v: _SPACES.sub(" ", as_text(v)).strip())
    label_map = load_label_map(Path(config.label_map)) if config.label_map else None
    if label_map is not None:
        labels = apply_label_map(labels, label_map)
    # The answer is never an input: a model that read it would score 1.0 and serve nonsense.
    frame = frame.drop(columns=[config.label_column]).assign(label=normalize_labels(labels))

    no_label = frame["label"] == ""
    text_columns = [c for c in config.text_columns if c in frame.columns]
    text = frame[text_columns].map(as_text).agg(" ".join, axis=1).str.strip()
    no_text = (text == "") & ~no_label
    counts["dropped_no_label"] = int(no_label.sum())
    counts["dropped_no_text"] = int(no_text.sum())
    frame = frame[~no_label & ~no_text]

    duplicated = duplicated_rows(frame, text, config, text_columns)
    counts["dropped_duplicates"] = int(duplicated.sum())
    frame = frame[~duplicated]

    frame, small_class_counts = _small_classes(frame, config, label_map)
    counts |= small_class_counts
    counts["rows_kept"] = len(frame)
    counts["classes"] = int(frame["label"].nunique())
    return frame.reset_index(drop=True), counts


def _small_classes(
    frame: pd.DataFrame, config: TrainConfig, label_map: LabelMap | None
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Rows of classes below `min_class_size` dropped (counted as `small_class_rows`) or folded
    into `other_label` (`folded_small_class_rows`; dropped after all when too few to keep); the
    other label is checked against the catalog's classes and `label_map`."""
    sizes = frame["label"].value_counts()
    small = sizes[sizes < config.min_class_size].index
    affected = frame["label"].isin(small)
    if config.small_classes == "drop":
        return frame[~affected], {"small_class_rows": int(affected.sum())}
    check_other_label(sizes.to_dict(), config.other_label, config.min_class_size)
    if label_map is not None:
        check_other_label_not_mapped(label_map, config.other_label, sorted(small))
    frame = frame.assign(label=frame["label"].where(~affected, config.other_label))
    if (frame["label"] == config.other_label).sum() < config.min_class_size:
        frame = frame[frame["label"] != config.other_label]
        return frame, {"small_class_rows": int(affected.sum())}
    return frame, {"folded_small_class_rows": int(affected.sum())}


def warn_about_options(config: TrainConfig) -> None:
    """Options the run takes but will not use, each group said once (both tasks' loaders)."""
    warn_if_label_is_input(config)
    for unused in config.unused_options():
        log.warning("%s", unused)


def warn_if_label_is_input(config: TrainConfig) -> None:
    """The label column is dropped from the inputs; say so when the options listed it as one."""
    listed = {
        option: getattr(config, option)
        for option in ("text_columns", "token_columns", "numeric_columns", "char_ngram_columns")
        if config.label_column in getattr(config, option)
    }
    if config.id_column == config.label_column:
        listed["id_column"] = [config.id_column]
    explicit = [option for option in listed if option in config.model_fields_set]
    if explicit:
        options = ", ".join("--" + option.replace("_", "-") for option in explicit)
        log.warning(
            "the label column '%s' is also named as an input (%s); it is not used as one",
            config.label_column,
            options,
        )
    elif listed:
        log.info("the label column '%s' is not used as an input", config.label_column)


def warn_removed_rows(path: Path, counts: dict[str, int], warned: tuple[str, ...] = ()) -> None:
    """One warning counting every kind of removed row, but those already `warned` about, and the
    rows of small classes folded into `--other-label` (kept, so told apart from removed ones)."""
    removed = {
        key: value
        for key, value in counts.items()
        if value and key.startswith(("small", "malf", "dropped")) and key not in warned
    }
    folded = counts.get("folded_small_class_rows", 0)
    parts = (
        [f"removed rows: {', '.join(f'{k}={v}' for k, v in removed.items())}"] if removed else []
    )
    if folded:
        parts.append(
            f"rows kept under --other-label (classes below --min-class-size folded into it, not "
            f"removed): folded_small_class_rows={folded}"
        )
    if parts:
        log.warning("%s: %s", path.name, "; ".join(parts))


def load_catalog(config: TrainConfig) -> Catalog:
    """Read, check and clean the catalog named by the config (default: the bundled sample)."""
    path = Path(config.data) if config.data else bundled_sample()
    raw = read_catalog_file(path, config)
    check_columns(raw, config, path)
    bad_numbers = parse_numeric_columns(raw, config, path)
    warn_about_options(config)
    frame, counts = clean_catalog(raw, config)
    counts |= bad_numbers
    warn_removed_rows(path, counts, warned=("dropped_duplicates",))
    if counts["classes"] < 2:
        raise DataError(
            f"{path}: after cleaning, {counts['rows_kept']} rows in {counts['classes']} class(es) "
            "remain; training needs at least 2 classes (lower --min-class-size?)"
        )
    variants = find_variants(frame["label"].value_counts().to_dict())
    for group in variants:
        log.warning("labels that look like variants of one category: %s", group.describe())
    return Catalog(frame, str(path), file_sha256(path), counts, variants)
