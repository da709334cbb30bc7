"""Reading a `--label-map` file: a YAML mapping or a two-column CSV of `variant: canonical`.

Keys and labels are kept as written (YAML is composed, not loaded); an empty, boolean, list or
mapping key or label, and a key given twice with two labels, stop the run naming file and line.
YAML merge keys (`<<: *base`, `<<: [*a, *b]`) work as YAML says: explicit keys override merged
ones. A key whose value is a mapping that some `<<` merges (`base: &base {...}`) only defines
that mapping: it is not itself a label-map entry.
"""

from __future__ import annotations

import csv
from collections.abc import Set
from pathlib import Path

import yaml

from training.errors import ConfigError
from training.label_variants import yaml_str

MERGE_TAG = "tag:yaml.org,2002:merge"
Entries = dict[str, tuple[str, int]]  # key: (label, line of the key)


def read_label_map(path: Path) -> Entries:
    """Each key of the map at `path` with its label and the line it is written on."""
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
    entries = _yaml_entries(path, root, _merge_sources(path, root), ())
    # in the order of the file, so that messages name the first line first
    return dict(sorted(entries.items(), key=lambda entry: entry[1][1]))


def _yaml_entries(
    path: Path, node: yaml.MappingNode, sources: Set[int], outer: tuple[int, ...]
) -> Entries:
    """`key: (label, line)` of one mapping, merge keys resolved as YAML says: explicit keys
    override merged ones, and a mapping merged earlier overrides one merged later. `sources` are
    the ids of mappings merged somewhere; `outer`, those of the mappings merging this one."""
    explicit: dict[str, str] = {}
    lines: dict[str, int] = {}
    merged: list[yaml.MappingNode] = []
    for key_node, value_node in node.value:
        if key_node.tag == MERGE_TAG:
            merged.extend(_merged_mappings(path, key_node, value_node))
        elif not (isinstance(value_node, yaml.MappingNode) and id(value_node) in sources):
            key = _yaml_label(path, key_node, key=None)
            label = _yaml_label(path, value_node, key=key)
            _add_pair(path, explicit, lines, (key, label), key_node.start_mark.line + 1)
    entries: Entries = {}
    for source in reversed(merged):
        if id(source) in (*outer, id(node)):
            raise ConfigError(
                f"--label-map {path}, line {source.start_mark.line + 1}: a mapping merges "
                "itself (`<<:` names a mapping that contains that `<<:`); merge another mapping"
            )
        entries.update(_yaml_entries(path, source, sources, (*outer, id(node))))
    entries.update({key: (label, lines[key]) for key, label in explicit.items()})
    return entries


def _merged_mappings(
    path: Path, key_node: yaml.Node, value_node: yaml.Node
) -> list[yaml.MappingNode]:
    """The mappings a merge key `<<` names: one (`<<: *base`) or a list (`<<: [*a, *b]`)."""
    if isinstance(value_node, yaml.MappingNode):
        return [value_node]
    items = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
    if all(isinstance(item, yaml.MappingNode) for item in items):
        return list(items)
    raise ConfigError(
        f"--label-map {path}, line {key_node.start_mark.line + 1}: the merge key `<<` takes a "
        "mapping (`<<: *base` after `base: &base` and its `variant: canonical` lines) or a list "
        "of them (`<<: [*a, *b]`); to map the label '<<' itself, quote it ('<<': label)"
    )


def _merge_sources(path: Path, root: yaml.Node) -> set[int]:
    """The ids of all mappings under `root` that a merge key `<<` names."""
    sources: set[int] = set()
    seen: set[int] = set()
    pending = [root]
    while pending:
        node = pending.pop()
        if id(node) in seen:  # an alias, or a mapping that merges itself
            continue
        seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            pending.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.tag == MERGE_TAG:
                    sources.update(map(id, _merged_mappings(path, key_node, value_node)))
                pending.extend((key_node, value_node))
    return sources


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
    example = f"{yaml_str(key)}: '{written or 'yes'}'"
    merge_hint = (
        " (to share lines between maps, anchor the mapping and merge it: `<<: *name`)"
        if isinstance(node, yaml.MappingNode)
        else ""
    )
    raise ConfigError(
        f"{where}: the key {key!r} maps to {problem}; give the label it maps to "
        f"({yaml_str(key)}: the label), in quotes if YAML would read it otherwise ({example}), "
        f"or delete the line{merge_hint}"
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


def _csv_map(path: Path, text: str) -> Entries:
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
    return {key: (label, lines[key]) for key, label in mapping.items()}
