"""What a run did, counted the same way by both engines and printed at the end."""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class Summary:
    """Rows read, scored and left without a label, the time taken, the label counts, and per
    numeric column the values that were not numbers (read as missing)."""

    engine: str
    model_uri: str
    model_name: str
    model_version: str
    output: str
    rows: int = 0
    no_text: int = 0
    malformed_lines: int = 0
    seconds: float = 0.0
    first_output_seconds: float | None = None
    labels: Counter[str] = field(default_factory=Counter)
    not_numbers: Counter[str] = field(default_factory=Counter)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "model_uri": self.model_uri,
            "model_name": self.model_name,
            "model_version": self.model_version,
            "output": self.output,
            "rows": self.rows,
            "scored": self.rows - self.no_text,
            "no_text": self.no_text,
            "malformed_lines": self.malformed_lines,
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows_per_second, 1),
            "first_output_seconds": self.first_output_seconds,
            "labels": dict(self.labels.most_common()),
            "not_numbers": dict(sorted(self.not_numbers.items())),
        }

    def text(self, top: int = 10) -> str:
        version = f" v{self.model_version}" if self.model_version else ""
        lines = [
            "batch scoring summary",
            f"  engine:          {self.engine}",
            f"  model:           {self.model_name or '-'}{version} ({self.model_uri})",
            f"  output:          {self.output}",
            f"  rows:            {self.rows}",
            f"  scored:          {self.rows - self.no_text}",
            f"  without text:    {self.no_text} (written with an empty label and a reason)",
            f"  malformed lines: {self.malformed_lines} (skipped)",
            *self._not_numbers_lines(),
            f"  time:            {self.seconds:.1f} s ({self.rows_per_second:,.0f} rows/s)",
            f"  labels:          {len(self.labels)} distinct; most frequent:",
        ]
        lines += [f"    {label:<24} {count}" for label, count in self.labels.most_common(top)]
        return "\n".join(lines)

    def _not_numbers_lines(self) -> list[str]:
        """The line naming numeric columns with values that are not numbers, when there are."""
        if not self.not_numbers:
            return []
        counts = ", ".join(
            f"{column} {count}" for column, count in sorted(self.not_numbers.items())
        )
        return [f"  not numbers:     {counts} (read as missing)"]

    def json(self) -> str:
        return json.dumps(self.as_dict())


def warn_not_numbers(summary: Summary, source: str) -> None:
    """One warning line, as training words it, when numeric columns held values that are not
    numbers: the run went on with them missing, which the user should know."""
    if not summary.not_numbers:
        return
    counts = ", ".join(
        f"column '{column}': {count} value(s)"
        for column, count in sorted(summary.not_numbers.items())
    )
    log.warning("%s: %s are not numbers and count as missing", source, counts)
