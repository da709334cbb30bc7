"""A catalog for the batch-scoring tests: a slice of the bundled sample (lists, dicts with keys
that vary from row to row) plus rows that have no text at all, and helpers to run the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from batch.cli import main
from tests.support import sample_records, signal_handlers_restored, write_jsonl_gz

NO_TEXT_IDS = ("no-text-1", "no-text-2", "no-text-3")


def catalog_records(limit: int) -> list[dict[str, Any]]:
    records = sample_records(limit=limit)
    blank: list[dict[str, Any]] = [
        {"asin": NO_TEXT_IDS[0], "title": "", "description": [], "brand": "Acme"},
        {"asin": NO_TEXT_IDS[1], "title": "   ", "category": ["Tools"]},
        {"asin": NO_TEXT_IDS[2], "description": ["", " "], "details": {"Priority": "optional"}},
    ]
    return records[:7] + blank + records[7:]


def write_catalog(path: Path, limit: int) -> Path:
    return write_jsonl_gz(path, catalog_records(limit))


def classify(*argv: str) -> int:
    """Run `product-classify` in this process; its exit code (0 when it returns). The process's
    signal handlers are restored afterwards (a finished run ignores further signals)."""
    with signal_handlers_restored():
        try:
            main([*argv, "--no-progress", "--quiet"])
        except SystemExit as stop:
            return int(stop.code or 0)
    return 0


def leftovers(folder: Path, output: str) -> list[str]:
    """Files or folders the run left under or beside `output`'s name."""
    return sorted(p.name for p in folder.iterdir() if output in p.name)


__all__ = ["NO_TEXT_IDS", "catalog_records", "classify", "leftovers", "pytest", "write_catalog"]
