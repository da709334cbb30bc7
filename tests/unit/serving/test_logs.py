"""Logs are JSON lines carrying the request id."""

from __future__ import annotations

import asyncio
import calendar
import io
import json
import logging
import logging.handlers
import sys
import time
from collections.abc import Iterator

import pytest

from serving.logs import (
    AccessLog,
    JsonFormatter,
    _only_handler,
    configure_logging,
    log_time,
    request_id_var,
)


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


PATHS = ["/v1/predict", '/odd "quoted" \\ path', "/ünïcödé/\u2028/\x07", "/tab\there"]


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch) -> Iterator[CountingStream]:
    """Logging as the server sets it up, writing to a string; the test's logging restored."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level, logging.logThreads, logging.logProcesses
    stream = CountingStream()
    monkeypatch.setattr(sys, "stderr", stream)
    configure_logging("INFO")
    yield stream
    root.handlers, level, logging.logThreads, logging.logProcesses = saved
    root.setLevel(level)


@pytest.mark.parametrize("path", PATHS)
def test_access_lines_written_directly_are_the_formatters_lines(configured, path) -> None:
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if type(h.formatter) is JsonFormatter]  # not pytest's
    access = AccessLog(logging.getLogger("serving.access"))
    assert _only_handler(access.logger) is root.handlers[0]
    access.write("POST", path, 422, "abc-1", "/v1/predict", 0.0123456)
    line = configured.getvalue()
    assert line.endswith("\n") and line.count("\n") == 1
    expected = record(f"POST {path} 422", request_id="abc-1", route="/v1/predict", status=422)
    expected.__dict__.update(name="serving.access", duration_ms=12.346)
    expected.created, expected.msecs = json_time(line)
    assert line[:-1] == JsonFormatter().format(expected)


def json_time(line: str) -> tuple[float, float]:
    """The created time and milliseconds a record needs to print the line's time."""
    stamp = json.loads(line)["time"]
    created = calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S"))
    return created, float(stamp[20:23])


def test_access_lines_go_through_logging_when_another_handler_listens(configured, caplog) -> None:
    access = AccessLog(logging.getLogger("serving.access"))
    with caplog.at_level(logging.INFO, logger="serving.access"):
        assert _only_handler(access.logger) is None
        access.write("GET", "/v1/model", 200, "abc-2", "/v1/model", 0.001)
    assert [(r.getMessage(), r.route) for r in caplog.records] == [
        ("GET /v1/model 200", "/v1/model")
    ]  # type: ignore[attr-defined]
    assert json.loads(configured.getvalue())["request_id"] == "abc-2"


def test_access_lines_of_one_loop_pass_are_written_together_after_it(configured) -> None:
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if type(h.formatter) is JsonFormatter]  # not pytest's
    access = AccessLog(logging.getLogger("serving.access"))

    async def answer_three() -> list[str]:
        for n in range(3):
            access.write("POST", "/v1/predict", 200, f"id-{n}", "/v1/predict", 0.001)
        during = configured.getvalue()
        await asyncio.sleep(0)  # the pass ends; the next one starts with the flush
        await asyncio.sleep(0)
        return [during, configured.getvalue()]

    during, after = asyncio.run(answer_three())
    assert during == ""
    assert [json.loads(line)["request_id"] for line in after.splitlines()] == [
        "id-0",
        "id-1",
        "id-2",
    ]
    assert configured.writes == 1


def test_gathered_access_lines_go_first_when_logging_changes(configured) -> None:
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if type(h.formatter) is JsonFormatter]  # not pytest's
    access = AccessLog(logging.getLogger("serving.access"))
    other = logging.handlers.MemoryHandler(capacity=10)  # another handler: lines go via logging

    async def write_two() -> str:
        access.write("GET", "/v1/model", 200, "gathered", "/v1/model", 0.001)
        gathered = configured.getvalue()
        root.addHandler(other)
        access.write("GET", "/v1/model", 200, "through-logging", "/v1/model", 0.001)
        return gathered

    assert asyncio.run(write_two()) == ""
    ids = [json.loads(line)["request_id"] for line in configured.getvalue().splitlines()]
    assert ids == ["gathered", "through-logging"]
    assert [r.request_id for r in other.buffer] == ["through-logging"]  # type: ignore[attr-defined]


def test_no_access_line_below_the_log_level(configured) -> None:
    logging.getLogger().setLevel(logging.WARNING)
    AccessLog(logging.getLogger("serving.access")).write("GET", "/", 200, "a", "/", 0.0)
    assert configured.getvalue() == ""


def test_log_time_is_utc_to_the_millisecond() -> None:
    assert log_time(0, 5) == "1970-01-01T00:00:00.005Z"
    assert log_time(1_795_576_955, 190) == "2026-11-25T03:22:35.190Z"
