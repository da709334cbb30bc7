"""Rebuild the bundled sample catalog from the full shared catalog.

The sample is a stratified subset: every main category keeps the same share it has in the full
catalog, with a floor so that small categories still have enough rows to train and evaluate on.
The output is deterministic for a given input and seed.

    python scripts/build_sample_catalog.py ../shared/data/apt-catalog.jsonl.gz \
        training/data/sample_catalog.jsonl.gz --rows 6000
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
from collections import defaultdict
from pathlib import Path


def read_records(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def stratified_sample(records: list[dict], rows: int, floor: int, seed: int) -> list[dict]:
    """Pick about `rows` records, proportional per `main_cat`, at least `floor` per class."""
    by_class: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        by_class[record.get("main_cat") or ""].append(record)
    rng = random.Random(seed)
    picked: list[dict] = []
    for label in sorted(by_class):
        members = by_class[label]
        quota = max(floor, round(rows * len(members) / len(records)))
        picked.extend(rng.sample(members, min(quota, len(members))))
    picked.sort(key=lambda record: record.get("asin", ""))
    return picked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="full catalog, JSON lines (.gz)")
    parser.add_argument("target", type=Path, help="where to write the sample (.jsonl.gz)")
    parser.add_argument("--rows", type=int, default=6000, help="approximate sample size")
    parser.add_argument("--floor", type=int, default=40, help="minimum rows per category")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    sample = stratified_sample(read_records(args.source), args.rows, args.floor, args.seed)
    # mtime=0 keeps the gzip bytes reproducible.
    with (
        args.target.open("wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as zipped,
    ):
        for record in sample:
            zipped.write((json.dumps(record, ensure_ascii=False) + "\n").encode())
    size_kb = args.target.stat().st_size / 1024
    print(f"wrote {len(sample)} products to {args.target} ({size_kb:.0f} KiB)")


if __name__ == "__main__":
    main()
