"""Opt-in prediction logging: one JSON line per classified product, for a cluster's log stack.

Off unless PREDICTION_LOG names `stdout` or a file. Each line holds the request id, the model
name and version, the label, its confidence and the top-k; the product's own fields only with
PREDICTION_LOG_FIELDS=true (they may be confidential). `product-monitor report --prediction-log`
reads such a file back.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

log = logging.getLogger(__name__)


class PredictionLog:
    """Writes prediction lines to stdout or appends them to a file (opened once, line-buffered)."""

    def __init__(self, target: str, include_fields: bool) -> None:
        self.target = target
        self.include_fields = include_fields
        self._lock = threading.Lock()
        self._stream: TextIO | None = None

    def _open(self) -> TextIO:
        if self._stream is None:
            if self.target == "stdout":
                self._stream = sys.stdout
            else:
                path = Path(self.target)
                path.parent.mkdir(parents=True, exist_ok=True)
                self._stream = path.open("a", encoding="utf-8", buffering=1)
        return self._stream

    def write(
        self,
        request_id: str | None,
        model: tuple[str, str],
        products: Sequence[Mapping[str, Any]],
        predictions: Sequence[Mapping[str, Any]],
    ) -> None:
        """Log one request's predictions; a failing log is reported once per call, never raised."""
        now = round(time.time(), 3)
        lines = [
            json.dumps(self.entry(now, request_id, model, product, prediction), default=str)
            for product, prediction in zip(products, predictions, strict=True)
        ]
        try:
            with self._lock:
                stream = self._open()
                stream.write("\n".join(lines) + "\n")
                stream.flush()
        except OSError as error:
            log.error("prediction log %s not written: %s", self.target, error)

    def entry(
        self,
        at: float,
        request_id: str | None,
        model: tuple[str, str],
        product: Mapping[str, Any],
        prediction: Mapping[str, Any],
    ) -> dict[str, Any]:
        entry = {
            "ts": at,
            "request_id": request_id,
            "model": model[0],
            "version": model[1],
            "label": prediction["label"],
            "confidence": prediction["probability"],
            "top_k": [[p["label"], p["probability"]] for p in prediction["top_k"]],
        }
        if self.include_fields:
            entry["product"] = dict(product)
        return entry

    def close(self) -> None:
        with self._lock:
            if self._stream is not None and self._stream is not sys.stdout:
                self._stream.close()
            self._stream = None
