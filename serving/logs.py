"""JSON-lines logging with the request id of the request being answered."""

from __future__ import annotations

import asyncio
import atexit
import functools
import json
import logging
import sys
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

# Attributes every LogRecord has; anything else was passed with `extra=` and is logged as a field.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's coloured duplicate of the message
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": log_time(int(record.created), int(record.msecs)),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return _ENCODER.encode(entry)


_ENCODER = json.JSONEncoder(default=str, ensure_ascii=False)  # as json.dumps(...), built once


def log_time(second: int, millisecond: int) -> str:
    """A log line's time: ISO 8601 UTC to the millisecond, "2026-11-25T03:22:35.190Z"."""
    return f"{utc_second(second)}.{millisecond:03d}Z"


@functools.lru_cache(maxsize=4)
def utc_second(seconds: int) -> str:
    """ISO 8601 UTC time of a Unix second (cached: log lines come many per second)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


class AccessLog:
    """One line per request on the `serving.access` logger.

    While logging is as `configure_logging` set it up (its JSON handler alone at the root, no
    other handler or filter on the way), the line is built directly and written to that handler's
    stream: the same characters its formatter writes for the record, without making the record
    and passing it through the logging machinery, which cost about 5% of a one-product request.
    Anything else (another handler, a filter, pytest's caplog) gets a `LogRecord` as usual.
    """

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self._pending: list[str] = []
        self._pending_to: logging.StreamHandler[Any] | None = None
        atexit.register(self.flush)  # lines of a last loop pass that never ended

    def write(
        self, method: str, path: str, status: int, request_id: str, route: str, seconds: float
    ) -> None:
        if not self.logger.isEnabledFor(logging.INFO):
            return
        extra = {"request_id": request_id, "route": route, "status": status}
        extra["duration_ms"] = round(seconds * 1000, 3)
        handler = _only_handler(self.logger)
        if handler is None:
            self.flush()
            self._handle(method, path, status, extra)
            return
        now = time.time()
        message = f"{method} {path} {status}"
        line = (
            f'{{"time": "{log_time(int(now), int((now - int(now)) * 1000))}", '
            f'"level": "INFO", "logger": {_STRING(self.logger.name)}, '
            f'"message": {_STRING(message)}, "request_id": {_STRING(request_id)}, '
            f'"route": {_STRING(route)}, "status": {status}, '
            f'"duration_ms": {extra["duration_ms"]!r}}}'
        )
        if self._pending_to is not handler:
            self.flush()
            self._pending_to = handler
        self._pending.append(line + handler.terminator)
        if len(self._pending) == 1:
            _at_end_of_loop_pass(self.flush)

    def flush(self) -> None:
        """Write the lines gathered so far, in one write. In the event loop, lines are gathered
        during one pass of it and written at its end: a write per request, releasing the GIL,
        made the event loop wait for a busy model thread to give it back."""
        lines, handler = self._pending, self._pending_to
        if not lines or handler is None:
            return
        self._pending = []
        handler.acquire()
        try:
            handler.stream.write("".join(lines))
            handler.flush()
        except Exception:
            handler.handleError(logging.makeLogRecord({"msg": "access log lines lost"}))
        finally:
            handler.release()

    def _handle(self, method: str, path: str, status: int, extra: dict[str, Any]) -> None:
        self.logger.handle(self._record(method, path, status, extra))

    def _record(
        self, method: str, path: str, status: int, extra: dict[str, Any]
    ) -> logging.LogRecord:
        # Not `Logger.info`, which would also look up the caller's file and line (no line shows it).
        fields = ("%s %s %d", (method, path, status), None)
        return self.logger.makeRecord(self.logger.name, logging.INFO, "", 0, *fields, extra=extra)


def _at_end_of_loop_pass(callback: Callable[[], None]) -> None:
    """`callback` at the end of the running event loop's pass, or now outside any loop."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        callback()
        return
    loop.call_soon(callback)


_STRING = json.encoder.encode_basestring  # as the formatter's encoder writes a string
_JSON_HANDLER: list[logging.StreamHandler[Any]] = []  # the handler `configure_logging` installed


def _only_handler(logger: logging.Logger) -> logging.StreamHandler[Any] | None:
    """The JSON handler when it alone would get `logger`'s INFO records, unfiltered."""
    if not _JSON_HANDLER:
        return None
    handler = _JSON_HANDLER[0]
    current: logging.Logger | None = logger
    while current is not None and current.parent is not None:  # up to the root
        if current.handlers or current.filters or not current.propagate:
            return None
        current = current.parent
    root = logging.getLogger()
    if current is not root or root.handlers != [handler] or root.filters or handler.filters:
        return None
    if handler.level > logging.INFO or type(handler.formatter) is not JsonFormatter:
        return None
    return handler


def configure_logging(level: str) -> None:
    """Route every logger (uvicorn's and MLflow's included) through one JSON handler on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    _JSON_HANDLER[:] = [handler]
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "mlflow", "alembic"):
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # our middleware writes the access log
    # No line shows the thread or the process: skip looking them up for every record (the access
    # log makes one per request).
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.captureWarnings(True)
