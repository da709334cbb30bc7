"""Opt-in prediction logging: one JSON line per classified product, for a cluster's log stack.

Off unless PREDICTION_LOG names `stdout` or a file. Each line holds the request id, the model
name and version, the label, its confidence and the top-k; the product's own fields only with
PREDICTION_LOG_FIELDS=true (they may be confidential). `product-monitor report --prediction-log`
reads such a file back.

A file is checked at start-up (`open_for_appending`, from the settings), reopened at its path
once it was renamed or removed (log rotation without copytruncate, as logging's
WatchedFileHandler does), and a write that fails loses its lines: they are counted
(`prediction_log_dropped_lines_total`) and reported in the log at most once a minute.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

log = logging.getLogger(__name__)

ROTATION_CHECK_SECONDS = 1.0  # how often the path is compared with the open file
REPORT_INTERVAL_SECONDS = 60.0  # write failures are logged at most this often


def open_for_appending(path: Path) -> TextIO:
    """The file at `path` opened for appending, line-buffered, its folder created if missing;
    OSError when it cannot be."""
    # Each worker checks at start-up: another may create the folder first. A file in its place
    # is refused by open(), as "Not a directory".
    with contextlib.suppress(FileExistsError):
        path.parent.mkdir(parents=True)
    return path.open("a", encoding="utf-8", buffering=1)


class PredictionLog:
    """Writes prediction lines to stdout or appends them to a file; `count_dropped` (if given)
    is told how many lines each failed write lost."""

    def __init__(
        self,
        target: str,
        include_fields: bool,
        count_dropped: Callable[[int], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.target = target
        self.include_fields = include_fields
        self._count_dropped = count_dropped
        self._clock = clock
        self._lock = threading.Lock()
        self._stream: TextIO | None = None
        self._opened: tuple[int, int] | None = None  # device and inode of the open file
        self._checked_at = clock()
        self._reported_at: float | None = None
        self._dropped_since_report = 0

    def write(
        self,
        request_id: str | None,
        model: tuple[str, str],
        products: Sequence[Mapping[str, Any]],
        predictions: Sequence[Mapping[str, Any]],
    ) -> None:
        """Log one request's predictions; a failing log is counted and reported, never raised."""
        now = round(time.time(), 3)
        lines = [
            json.dumps(self.entry(now, request_id, model, product, prediction), default=str)
            for product, prediction in zip(products, predictions, strict=True)
        ]
        with self._lock:
            try:
                stream = self._current_stream()
                stream.write("\n".join(lines) + "\n")
                stream.flush()
            except OSError as error:
                self._drop_stream()  # reopened at the next write: the failure may be the file's
                self._dropped(len(lines), error)

    def _current_stream(self) -> TextIO:
        """The open stream, (re)opened at the path when none is open or the file at the path
        is no longer the one open (checked at most once per ROTATION_CHECK_SECONDS)."""
        if self.target == "stdout":
            return sys.stdout
        now = self._clock()
        if self._stream is not None and now - self._checked_at >= ROTATION_CHECK_SECONDS:
            self._checked_at = now
            if self._file_identity() != self._opened:
                self._drop_stream()
        if self._stream is None:
            self._stream = open_for_appending(Path(self.target))
            status = os.fstat(self._stream.fileno())
            self._opened = (status.st_dev, status.st_ino)
            self._checked_at = now
        return self._stream

    def _file_identity(self) -> tuple[int, int] | None:
        """Device and inode of the file now at the path (None: there is none)."""
        try:
            status = Path(self.target).stat()
        except OSError:
            return None
        return status.st_dev, status.st_ino

    def _drop_stream(self) -> None:
        """Close the open file (lines it still buffers, after a failure, are lost)."""
        stream, self._stream, self._opened = self._stream, None, None
        if stream is not None and stream is not sys.stdout:
            with contextlib.suppress(OSError):
                stream.close()

    def _dropped(self, lines: int, error: OSError) -> None:
        """Count the lines lost; log the failure if none was logged in the last interval."""
        if self._count_dropped is not None:
            self._count_dropped(lines)
        self._dropped_since_report += lines
        now = self._clock()
        if self._reported_at is not None and now - self._reported_at < REPORT_INTERVAL_SECONDS:
            return
        log.error(
            "prediction log %s not written: %s; %d line(s) lost since the last such message "
            "(prediction_log_dropped_lines_total counts them all)",
            self.target,
            error,
            self._dropped_since_report,
        )
        self._reported_at, self._dropped_since_report = now, 0

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
            self._drop_stream()
