"""Finding labels that look like variants of one category.

Real catalogs write one category several ways (`fridge`/`Fridges`, `CPU`/`CPUs`, `Mobile Phone` /
`Mobile Phones`); each spelling would become a class of its own. `find_variants` points at the
groups that a `--label-map` should merge, and gives the map lines that would merge them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import yaml

_NOT_ALNUM = re.compile(r"[\W_]+")
MAX_LABELS_FOR_EDIT_DISTANCE = 3000


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
        return [f"{yaml_str(label)}: {yaml_str(self.canonical)}" for label, _ in self.labels[1:]]

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


def yaml_str(text: str) -> str:
    """`text` as one YAML scalar, quoted only where YAML would read it otherwise."""
    return yaml.safe_dump(text, default_style=None).removesuffix("\n...\n").strip()
