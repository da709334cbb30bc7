"""Label cleaning: a user's label map, and finding labels that look like variants of each other.

Real catalogs write one category several ways (`fridge`/`Fridges`, `CPU`/`CPUs`, `Mobile Phone` /
`Mobile Phones`); each spelling would become a class of its own. `--label-map` merges them before
classes are counted, and `find_variants` points at the groups that a map should merge.

A map's keys are matched exactly, then ignoring case. Chains are followed to their end (`a: b` and
`b: c` send both `a` and `b` to `c`), so a map can grow line by line; a cycle (`a: b`, `b: a`) has
no end and is refused. Keys that match no label are named in a warning: usually a typo.
Keys and labels are kept as written; one that is empty, a YAML boolean, a list or a mapping is
refused, and so are keys equal but for case that lead to different labels.
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Mapping, Set
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from training.errors import ConfigError

log = logging.getLogger(__name__)
_NOT_ALNUM = re.compile(r"[\W_]+")
MAX_LABELS_FOR_EDIT_DISTANCE = 3000
MAX_NAMED_KEYS = 10  # unused keys listed in the warning; the rest are counted


class LabelMap(dict[str, str]):
    """`variant: canonical` pairs as written in the file named by `source`."""

    def __init__(self, pairs: Mapping[str, str], source: str = "") -> None:
        super().__init__(pairs)
        self.source = source


def load_label_map(path: Path) -> LabelMap:
    """`variant: canonical` pairs from a YAML mapping or a two-column CSV (variant, canonical);
    a map with a cycle, or with keys equal but for case that lead to different labels, is
    refused."""
    mapping = LabelMap(_read_label_map(path), str(path))
    folded = folded_keys(mapping)
    # each key's final label (`label_chain` raises on a cycle)
    ends = {key: mapping[label_chain(mapping, key, folded)[-1]] for key in mapping}
    _check_case_variant_keys(mapping, ends)
    return mapping


def _read_label_map(path: Path) -> dict[str, str]:
    try:
        text = path.read_text("utf-8")
    except OSError as error:
        raise ConfigError(f"--label-map {path}: cannot read the file ({error.strerror})") from None
    if path.suffix.lower() in (".csv", ".tsv"):
        return _csv_map(path, text)
    try:
        # Composed, not loaded: the text as written is kept (`01` stays `01`), and a null, a
        # boolean or a list is seen for what it is instead of becoming the label 'None' or 'True'.
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as error:
        raise ConfigError(f"--label-map {path}: not valid YAML: {error}") from None
    if not isinstance(root, yaml.MappingNode) or not root.value:
        raise ConfigError(
            f"--label-map {path}: expected a YAML mapping of `variant: canonical` lines "
            "(or a two-column CSV)"
        )
    mapping: dict[str, str] = {}
    lines: dict[str, int] = {}
    for key_node, value_node in root.value:
        key = _yaml_label(path, key_node, key=None)
        label = _yaml_label(path, value_node, key=key)
        _add_pair(path, mapping, lines, (key, label), key_node.start_mark.line + 1)
    return mapping


def _add_pair(
    path: Path, mapping: dict[str, str], lines: dict[str, int], pair: tuple[str, str], line: int
) -> None:
    """Add `key: label` read at `line`; a key given twice with two labels stops the run."""
    key, label = pair
    if key in mapping and mapping[key] != label:
        raise ConfigError(
            f"--label-map {path}, lines {lines[key]} and {line}: the key {key!r} maps to "
            f"{mapping[key]!r} and to {label!r}; keep one of the two lines"
        )
    mapping[key] = label
    lines.setdefault(key, line)


def _yaml_label(path: Path, node: yaml.Node, key: str | None) -> str:
    """The trimmed text of one key (`key` None) or of `key`'s value; a null, blank, boolean,
    list or mapping stops the run naming the file, line and key."""
    problem = _not_a_label(node)
    if problem is None:
        return str(node.value).strip()
    where = f"--label-map {path}, line {node.start_mark.line + 1}"
    if key is None:
        raise ConfigError(
            f"{where}: a key is {problem}; write the label to map as text (quoted if YAML would "
            "read it otherwise, e.g. 'yes': ...), or delete the line"
        )
    written = str(node.value).strip() if isinstance(node, yaml.ScalarNode) else ""
    example = f"{_yaml_str(key)}: '{written or 'yes'}'"
    raise ConfigError(
        f"{where}: the key {key!r} maps to {problem}; give the label it maps to "
        f"({_yaml_str(key)}: the label), in quotes if YAML would read it otherwise ({example}), "
        "or delete the line"
    )


def _not_a_label(node: yaml.Node) -> str | None:
    """What makes a YAML node no label (None for a scalar such as `Laptops` or `01`)."""
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if node.tag == "tag:yaml.org,2002:null":
        return f"{node.value}, which YAML reads as null" if node.value else "nothing (empty)"
    if node.tag == "tag:yaml.org,2002:bool":
        return f"{node.value}, which YAML reads as a boolean, not a text"
    return None if str(node.value).strip() else "a blank text"


def _csv_map(path: Path, text: str) -> dict[str, str]:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    mapping: dict[str, str] = {}
    lines: dict[str, int] = {}
    for number, row in enumerate(csv.reader(text.splitlines(), delimiter=delimiter), start=1):
        if not row or not "".join(row).strip():
            continue
        if len(row) != 2:
            raise ConfigError(
                f"--label-map {path}, line {number}: expected two columns (variant, canonical), "
                f"found {len(row)}"
            )
        variant, canonical = (cell.strip() for cell in row)
        if not variant or not canonical:
            subject = (
                f"the key {variant!r} has an empty second cell" if variant else "a key is empty"
            )
            raise ConfigError(
                f"--label-map {path}, line {number}: {subject}; give both the variant and the "
                "label it maps to, or delete the line"
            )
        _add_pair(path, mapping, lines, (variant, canonical), number)
    if not mapping:
        raise ConfigError(f"--label-map {path}: the file holds no `variant,canonical` rows")
    return mapping


def _check_case_variant_keys(mapping: Mapping[str, str], ends: Mapping[str, str]) -> None:
    """Refuse keys equal but for case that lead to labels (`ends`, by key) differing beyond case:
    labels are unified across case after the map, so such keys would split one label in two."""
    seen: dict[str, tuple[str, str]] = {}
    for key, end in ends.items():
        first, first_end = seen.setdefault(key.casefold(), (key, end))
        if first_end.casefold() != end.casefold():
            raise ConfigError(
                f"--label-map{_source(mapping)}: the keys {first!r} and {key!r} differ only in "
                f"case but lead to different labels ({first_end!r} and {end!r}); labels are "
                "unified across case after the map, so one label would become two: delete one "
                "of the lines, or give both the same label"
            )


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


def variant_key(label: str) -> str:
    """Case, spacing and punctuation removed, a plural ending dropped: `Mobile Phones` and
    `mobile-phone` share the key `mobilephone`."""
    key = _NOT_ALNUM.sub("", label.casefold())
    if key.endswith("ies") and len(key) > 4:
        return key[:-3] + "y"
    if key.endswith(("ches", "shes", "sses", "xes")):
        return key[:-2]
    if key.endswith("s") and not key.endswith("ss") and len(key) > 3:
        return key[:-1]
    return key


def within_one_edit(a: str, b: str) -> bool:
    """Whether `a` becomes `b` by at most one inserted, deleted or replaced character."""
    if abs(len(a) - len(b)) > 1 or a == b:
        return a == b
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i + (len(a) == len(b)) :] == b[i + 1 :]


@dataclass(frozen=True)
class VariantGroup:
    """Labels that look like one category, most rows first; `canonical` is the first."""

    labels: tuple[tuple[str, int], ...]

    @property
    def canonical(self) -> str:
        return self.labels[0][0]

    def map_lines(self) -> list[str]:
        """The `--label-map` YAML lines that would merge the group."""
        return [f"{_yaml_str(label)}: {_yaml_str(self.canonical)}" for label, _ in self.labels[1:]]

    def describe(self) -> str:
        counts = ", ".join(f"'{label}' ({rows:,} rows)" for label, rows in self.labels)
        return f"{counts}; to merge, add to --label-map: {'; '.join(self.map_lines())}"


def find_variants(counts: Mapping[str, int]) -> list[VariantGroup]:
    """Groups of labels that differ only in case, spacing, punctuation, a plural ending or (for
    keys of 5+ characters) one edited character."""
    labels = sorted(counts, key=lambda label: (-counts[label], label))
    parent = {label: label for label in labels}

    def root(label: str) -> str:
        while parent[label] != label:
            label = parent[label]
        return label

    keys = {label: variant_key(label) for label in labels}
    by_key: dict[str, str] = {}
    for label in labels:
        first = by_key.setdefault(keys[label], label)
        parent[root(label)] = root(first)
    if len(labels) <= MAX_LABELS_FOR_EDIT_DISTANCE:
        for i, a in enumerate(labels):
            for b in labels[i + 1 :]:
                if len(keys[a]) >= 5 and within_one_edit(keys[a], keys[b]):
                    parent[root(b)] = root(a)
    groups: dict[str, list[str]] = {}
    for label in labels:
        groups.setdefault(root(label), []).append(label)
    return [
        VariantGroup(tuple((label, int(counts[label])) for label in members))
        for members in groups.values()
        if len(members) > 1
    ]


def _yaml_str(text: str) -> str:
    return yaml.safe_dump(text, default_style=None).removesuffix("\n...\n").strip()
