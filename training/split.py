"""The holdout split: each product's side is fixed by a salted hash of its key, not by a seed.

A product stays on the same side in every run and as the catalog grows, whatever the seed, so
the champion gate can compare two models on rows that neither trained on. The split definition
travels with the model (`SplitDefinition.to_dict`), so a later run can tell which of its rows a
champion held out.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from product_model.features import as_text

SALT = "product-categorization/holdout/v1"
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class SplitDefinition:
    """Which rows a model held out: those whose key hashes below `test_size`."""

    test_size: float
    id_column: str | None
    text_columns: tuple[str, ...]
    salt: str = SALT
    method: str = "hash"

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "salt": self.salt,
            "test_size": self.test_size,
            "id_column": self.id_column,
            "text_columns": list(self.text_columns),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SplitDefinition:
        if data.get("method") != "hash":
            raise ValueError(f"unknown split method {data.get('method')!r}")
        return cls(
            test_size=float(data["test_size"]),
            id_column=data.get("id_column"),
            text_columns=tuple(data.get("text_columns", ())),
            salt=str(data["salt"]),
        )

    def keys(self, frame: pd.DataFrame) -> pd.Series:
        """Each row's key: its id, or its normalised text where it has no id."""
        text_columns = [c for c in self.text_columns if c in frame.columns]
        text = frame[text_columns].map(as_text).agg(" ".join, axis=1) if text_columns else None
        text = (
            text.str.casefold().str.replace(_SPACES, " ", regex=True).str.strip()
            if text is not None
            else pd.Series("", index=frame.index)
        )
        if self.id_column and self.id_column in frame.columns:
            ids = frame[self.id_column].map(as_text).str.strip()
            return ("id:" + ids).where(ids != "", "text:" + text)
        return "text:" + text

    def held_out(self, frame: pd.DataFrame) -> np.ndarray:
        """A boolean mask: True for the rows this definition holds out."""
        return hash_fractions(self.keys(frame).tolist(), self.salt) < self.test_size


def hash_fractions(keys: Sequence[str], salt: str) -> np.ndarray:
    """A number in [0, 1) per key, uniform and stable across runs, machines and Python versions."""
    salt_bytes = salt.encode()
    values = [
        int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8, key=salt_bytes).digest())
        for key in keys
    ]
    return np.asarray(values, dtype=np.float64) / float(1 << 64)


def holdout_split(
    frame: pd.DataFrame, definition: SplitDefinition
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training rows, holdout rows) of a cleaned catalog frame."""
    mask = definition.held_out(frame)
    return frame[~mask], frame[mask]
