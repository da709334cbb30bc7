"""Label cleaning: a user's label map (`--label-map`) merging the ways a catalog writes one label.

A map's keys are matched exactly, then ignoring case. Chains are followed to their end (`a: b` and
`b: c` send both `a` and `b` to `c`), so a map can grow line by line; a cycle (`a: b`, `b: a`) has
no end and is refused. Keys that match no label are named in a warning: usually a typo.
Keys and labels are kept as written; one that is empty, a YAML boolean, a list or a mapping is
refused, and so are keys equal but for case that lead to different labels. The file is read by
`training.label_map_files`; the groups of labels a map should merge are found by
`training.label_variants`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Set
from pathlib import Path

import pandas as pd

from training.errors import ConfigError
from training.label_map_files import read_label_map

log = logging.getLogger(__name__)
MAX_NAMED_KEYS = 10  # unused keys listed in the warning; the rest are counted


class LabelMap(dict[str, str]):
    """`variant: canonical` pairs as written in the file named by `source`, with the line of each
    key in `lines` (where known)."""

    def __init__(
        self, pairs: Mapping[str, str], source: str = "", lines: Mapping[str, int] | None = None
    ) -> None:
        super().__init__(pairs)
        self.source = source
        self.lines = dict(lines or {})


def load_label_map(path: Path) -> LabelMap:
    """`variant: canonical` pairs from a YAML mapping or a two-column CSV (variant, canonical);
    a map with a cycle, or with keys equal but for case that lead to different labels, is
    refused."""
    entries = read_label_map(path)
    pairs = {key: label for key, (label, _) in entries.items()}
    mapping = LabelMap(pairs, str(path), {key: line for key, (_, line) in entries.items()})
    folded = folded_keys(mapping)
    # each key's final label (`label_chain` raises on a cycle)
    ends = {key: mapping[label_chain(mapping, key, folded)[-1]] for key in mapping}
    _check_case_variant_keys(mapping, ends)
    return mapping


def _check_case_variant_keys(mapping: LabelMap, ends: Mapping[str, str]) -> None:
    """Refuse keys equal but for case that lead to labels (`ends`, by key) differing beyond case:
    labels are unified across case after the map, so such keys would split one label in two."""
    seen: dict[str, tuple[str, str]] = {}
    for key, end in ends.items():
        first, first_end = seen.setdefault(key.casefold(), (key, end))
        if first_end.casefold() != end.casefold():
            raise ConfigError(
                f"--label-map{_source(mapping)}{_lines_of(mapping, first, key)}: the keys "
                f"{first!r} and {key!r} differ only in case but lead to different labels "
                f"({first_end!r} and {end!r}); labels are unified across case after the map, so "
                "one label would become two: delete one of the lines, or give both the same label"
            )


def _lines_of(mapping: LabelMap, first: str, second: str) -> str:
    """`, lines 2 and 3`: where the two keys are written (nothing if not known)."""
    if first not in mapping.lines or second not in mapping.lines:
        return ""
    return f", lines {mapping.lines[first]} and {mapping.lines[second]}"


def folded_keys(mapping: Mapping[str, str]) -> dict[str, str]:
    """Each key by its casefolded form (of keys equal but for case, the last)."""
    return {key.casefold(): key for key in mapping}


def matching_key(mapping: Mapping[str, str], label: str, folded: Mapping[str, str]) -> str | None:
    """The key that maps `label`: equal to it, else equal ignoring case."""
    return label if label in mapping else folded.get(label.casefold())


def label_chain(mapping: Mapping[str, str], key: str, folded: Mapping[str, str]) -> list[str]:
    """The keys a label matching `key` passes through, `key` first, followed while each value is
    itself a key (a value that only differs from its own key in case ends the chain)."""
    chain = [key]
    while True:
        step = matching_key(mapping, mapping[chain[-1]], folded)
        if step is None or step == chain[-1]:
            return chain
        if step in chain:
            cycle = " → ".join(repr(k) for k in [*chain[chain.index(step) :], step])
            raise ConfigError(
                f"--label-map{_source(mapping)}: the map has a cycle, {cycle}; each label must "
                "lead to one final label (chains are followed to their end): delete or change "
                "one of these lines"
            )
        chain.append(step)


def _source(mapping: Mapping[str, str]) -> str:
    """` FILE` for a map read from a file, else nothing."""
    source = getattr(mapping, "source", "")
    return f" {source}" if source else ""


def apply_label_map(labels: pd.Series, mapping: Mapping[str, str]) -> pd.Series:
    """Each label replaced by the end of its chain in the map (keys matched exactly, then
    ignoring case); warns about keys that no label reaches."""
    folded = folded_keys(mapping)
    final: dict[str, str] = {}
    chains: dict[str, list[str]] = {}
    for label in labels.unique():
        key = matching_key(mapping, label, folded)
        if key is not None:
            chains[label] = label_chain(mapping, key, folded)
            final[label] = mapping[chains[label][-1]]
    followed = [chain for chain in chains.values() if len(chain) > 1]
    if followed:
        shown = " → ".join([*followed[0], final[followed[0][0]]])
        log.info("--label-map: %d chain(s) followed to their end, e.g. %s", len(followed), shown)
    used = {key for chain in chains.values() for key in chain}
    warn_unused_keys(mapping, used, {label.casefold() for label in final})
    return labels.map(lambda label: final.get(label, label))


def warn_unused_keys(
    mapping: Mapping[str, str], used: Set[str], mapped_labels: Set[str] = frozenset()
) -> None:
    """One warning naming the first keys that match no label of the catalog, counting all.
    An unused key equal ignoring case to a mapped label (`mapped_labels`, casefolded) does match
    it, but a key of the exact spelling took it first: it is named apart, not called a typo."""
    unused = [key for key in mapping if key not in used]
    shadowed = [key for key in unused if key.casefold() in mapped_labels]
    unused = [key for key in unused if key.casefold() not in mapped_labels]
    if shadowed:
        log.info(
            "--label-map%s: key(s) %s are not needed: the labels they match ignoring case are "
            "mapped by keys of their exact spelling (to the same label)",
            _source(mapping),
            ", ".join(repr(key) for key in shadowed[:MAX_NAMED_KEYS]),
        )
    if not unused:
        return
    named = ", ".join(repr(key) for key in unused[:MAX_NAMED_KEYS])
    more = f" and {len(unused) - MAX_NAMED_KEYS} more" if len(unused) > MAX_NAMED_KEYS else ""
    log.warning(
        "--label-map%s: %d of %d key(s) match no label of the catalog and change nothing: %s%s "
        "(keys are matched exactly, then ignoring case; check their spelling)",
        _source(mapping),
        len(unused),
        len(mapping),
        named,
        more,
    )


def check_other_label(sizes: Mapping[str, int], other_label: str, min_class_size: int) -> None:
    """Refuse an `--other-label` that names a class big enough to keep (equal ignoring case):
    folding rare classes into it would silently change that class. Merging into an existing class
    on purpose is said class by class with `--label-map`."""
    existing = [
        label
        for label, rows in sizes.items()
        if rows >= min_class_size and label.casefold() == other_label.casefold()
    ]
    rare = sorted(label for label, rows in sizes.items() if rows < min_class_size)
    if not existing or not rare:
        return
    raise ConfigError(
        f"--other-label {other_label!r}: the catalog already has the class {existing[0]!r} "
        f"({sizes[existing[0]]:,} rows); --small-classes other would merge {len(rare)} class(es) "
        f"below --min-class-size {min_class_size} ({_some(rare)}) into it. Pick a name no class "
        "uses (e.g. --other-label 'other (rare classes)'), or, to merge them into "
        f"{existing[0]!r} on purpose, map them to it with --label-map"
    )


def _some(labels: list[str], shown: int = 5) -> str:
    """The first `shown` labels, quoted, and `...` when there are more."""
    return ", ".join(map(repr, labels[:shown])) + (", ..." if len(labels) > shown else "")


def check_other_label_not_mapped(
    mapping: Mapping[str, str], other_label: str, rare: list[str]
) -> None:
    """Refuse an `--other-label` that the label map maps away (a key, matched as labels are):
    folding the `rare` classes into it would bring that label back beside the one it maps to."""
    folded = folded_keys(mapping)
    key = matching_key(mapping, other_label, folded)
    if key is None or not rare:
        return
    final = mapping[label_chain(mapping, key, folded)[-1]]
    if final.casefold() == other_label.casefold():
        return
    raise ConfigError(
        f"--other-label {other_label!r}: --label-map{_source(mapping)} maps {key!r} to "
        f"{final!r}; --small-classes other would fold {len(rare)} class(es) below "
        f"--min-class-size ({_some(rare)}) into {other_label!r}, a class beside {final!r} that "
        "the map meant to merge away. Pick a name the map does not map (e.g. --other-label "
        f"'other (rare classes)'), or, to merge them into {final!r} on purpose, map them to it "
        "with --label-map"
    )
