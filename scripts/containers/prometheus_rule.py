"""Wrap a Prometheus rule file into a Prometheus Operator `PrometheusRule`.

The rule file stays the source, so `promtool check rules` and `promtool test rules` run on it
directly; the PrometheusRule is derived from it and committed beside the kustomize component:

    python scripts/containers/prometheus_rule.py RULES_FILE > OUTPUT      # write
    python scripts/containers/prometheus_rule.py --check RULES_FILE OUTPUT  # fail if stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

NAME = "product-classifier"
REPO = Path(__file__).resolve().parents[2]
# The version label is added by the component (k8s/components/version, via the serving Deployment).
LABELS = {
    "app.kubernetes.io/name": "product-classifier",
    "app.kubernetes.io/component": "monitoring",
    "app.kubernetes.io/instance": "product-classifier",
    "app.kubernetes.io/part-of": "product-categorization",
    "app.kubernetes.io/managed-by": "kustomize",
}


class _BlockDumper(yaml.SafeDumper):
    """Writes multi-line strings (PromQL, descriptions) as `|` blocks, the way people write them."""


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _string)


def prometheus_rule(rules: dict[str, Any], source: str) -> str:
    """The PrometheusRule manifest holding `rules['groups']`, as YAML text."""
    manifest = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": NAME, "labels": LABELS},
        "spec": {"groups": rules["groups"]},
    }
    header = (
        f"# Generated from {source}\n"
        "# by scripts/containers/prometheus_rule.py (`make k8s-rules`): edit that file.\n"
    )
    return header + yaml.dump(manifest, Dumper=_BlockDumper, sort_keys=False, width=4096)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rules", type=Path, help="Prometheus rule file (groups: ...)")
    parser.add_argument("output", type=Path, nargs="?", help="PrometheusRule file (for --check)")
    parser.add_argument("--check", action="store_true", help="exit 1 if OUTPUT is out of date")
    args = parser.parse_args(argv)
    rules = yaml.safe_load(args.rules.read_text(encoding="utf-8"))
    source = args.rules.resolve()
    if source.is_relative_to(REPO):
        source = source.relative_to(REPO)
    text = prometheus_rule(rules, source.as_posix())
    if not args.check:
        sys.stdout.write(text)
        return 0
    if args.output is None or not args.output.exists():
        print(f"{args.output}: missing; run `make k8s-rules`", file=sys.stderr)
        return 1
    if args.output.read_text(encoding="utf-8") != text:
        print(
            f"{args.output} is out of date with {args.rules}; run `make k8s-rules`", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
