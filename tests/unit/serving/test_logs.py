"""Logs are JSON lines carrying the request id."""

from __future__ import annotations

import json
import logging

from serving.logs import JsonFormatter, request_id_var


def record(message: str, **extra) -> logging.LogRecord:
    entry = logging.LogRecord("serving.test", logging.INFO, __file__, 1, message, None, None)
    entry.__dict__.update(extra)
    return entry


def test_one_json_object_per_line_with_request_id_and_extras() -> None:
    token = request_id_var.set("req-1")
    try:
        line = JsonFormatter().format(record("hello\nworld", route="/v1/predict", status=200))
    finally:
        request_id_var.reset(token)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "hello\nworld" and entry["request_id"] == "req-1"
    assert entry["route"] == "/v1/predict" and entry["status"] == 200
    assert entry["level"] == "INFO" and entry["logger"] == "serving.test"
    assert entry["time"].endswith("Z")


def test_exceptions_are_included() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        entry = record("failed")
        entry.exc_info = sys.exc_info()
    payload = json.loads(JsonFormatter().format(entry))
    assert "ValueError: boom" in payload["exception"] and "Traceback" in payload["exception"]
    assert "request_id" not in payload
