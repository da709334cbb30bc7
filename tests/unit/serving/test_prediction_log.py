"""Prediction logging is off by default, and when asked for writes one JSON line per product,
with the product's fields only when allowed."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from serving.metrics import ServingMetrics
from serving.prediction_log import PredictionLog
from serving.settings import Settings, describe_settings_error

PRODUCTS = [{"title": "Cordless drill 18V", "brand": "Acme"}, {"title": "Organic green tea"}]


def test_off_by_default() -> None:
    assert Settings().prediction_log is None and Settings(prediction_log=" ").prediction_log is None
    assert Settings().prediction_log_fields is False


def test_one_line_per_product_without_fields(make_client, tmp_path: Path) -> None:
    target = tmp_path / "logs" / "predictions.jsonl"
    client = make_client(prediction_log=str(target))
    response = client.post(
        "/v1/predict", json={"products": PRODUCTS, "top_k": 2}, headers={"x-request-id": "req-42"}
    )
    assert response.status_code == 200
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    answered = response.json()["predictions"]
    assert [line["label"] for line in lines] == [p["label"] for p in answered]
    assert {line["request_id"] for line in lines} == {"req-42"}
    assert all(len(line["top_k"]) == 2 and "product" not in line for line in lines)
    assert lines[0]["version"] == response.json()["model_version"]


def test_fields_only_when_allowed(make_client, tmp_path: Path) -> None:
    target = tmp_path / "predictions.jsonl"
    client = make_client(prediction_log=str(target), prediction_log_fields=True)
    assert client.post("/v1/predict", json={"products": PRODUCTS}).status_code == 200
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert lines[0]["product"] == PRODUCTS[0]


def test_stdout(make_client, capsys) -> None:
    client = make_client(prediction_log="stdout")
    assert client.post("/v1/predict", json={"products": PRODUCTS[:1]}).status_code == 200
    out = [line for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert json.loads(out[-1])["confidence"] > 0


class Clock:
    """A monotonic clock the test moves (the log checks rotation once a second, reports
    failures once a minute)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


PREDICTION = {
    "label": "tools",
    "probability": 0.9,
    "top_k": [{"label": "tools", "probability": 0.9}],
}


def write(log: PredictionLog, request_id: str, products: int = 1) -> None:
    log.write(request_id, ("m", "1"), [{"title": "x"}] * products, [PREDICTION] * products)


def request_ids(path: Path) -> list[str]:
    return [json.loads(line)["request_id"] for line in path.read_text().splitlines()]


def test_a_renamed_log_file_is_reopened_at_its_path(tmp_path: Path) -> None:
    """logrotate's default (`create`, no copytruncate) renames the file: the server kept writing
    to the renamed file and never created a new one."""
    path, clock = tmp_path / "predictions.jsonl", Clock()
    log = PredictionLog(str(path), include_fields=False, clock=clock)
    write(log, "before")
    path.rename(tmp_path / "predictions.jsonl.1")
    write(log, "within-the-second")  # the path is compared with the open file once a second
    clock.now += 1.0
    write(log, "after")
    assert request_ids(tmp_path / "predictions.jsonl.1") == ["before", "within-the-second"]
    assert request_ids(path) == ["after"]
    path.unlink()  # removed: created again
    clock.now += 1.0
    write(log, "removed")
    assert request_ids(path) == ["removed"]
    log.close()


def test_write_failures_are_counted_and_logged_once_a_minute(caplog) -> None:
    """A log that cannot be written (here /dev/full: every write fails, no space) was one ERROR
    per request, and no metric counted the lines lost."""
    metrics, clock = ServingMetrics(CollectorRegistry()), Clock()
    log = PredictionLog("/dev/full", False, metrics.prediction_log_failed, clock=clock)
    with caplog.at_level(logging.ERROR, logger="serving.prediction_log"):
        write(log, "a", products=3)
        for request in range(5):
            clock.now += 10
            write(log, f"b{request}")
        clock.now += 15  # 65 s after the first message
        write(log, "c", products=2)
    dropped = metrics.registry.get_sample_value("prediction_log_dropped_lines_total")
    assert dropped == 3 + 5 + 2
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2, messages
    assert messages[0].startswith("prediction log /dev/full not written: [Errno 28]")
    assert "3 line(s) lost since the last such message" in messages[0]
    assert "7 line(s) lost since the last such message" in messages[1]  # 5 + the 2 of this one
    log.close()


@pytest.mark.parametrize("under", ["missing-parent-of-a-file", "a-file"])
def test_a_log_file_that_cannot_be_opened_stops_start_up(tmp_path: Path, under: str) -> None:
    (tmp_path / "a-file").write_text("not a folder\n")
    target = tmp_path / "a-file" / "predictions.jsonl"
    if under == "missing-parent-of-a-file":
        target = tmp_path / "a-file" / "logs" / "predictions.jsonl"
    with pytest.raises(ValidationError) as caught:
        Settings(prediction_log=str(target))
    message = describe_settings_error(caught.value)
    assert message.startswith("invalid setting PREDICTION_LOG: cannot be opened for appending")
    assert "Not a directory" in message and f"(got '{target}')" in message


def test_a_folder_is_no_log_file(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="cannot be opened for appending"):
        Settings(prediction_log=str(tmp_path))


def test_a_log_file_is_created_with_its_folder_at_start_up(tmp_path: Path) -> None:
    target = tmp_path / "logs" / "predictions.jsonl"
    assert Settings(prediction_log=str(target)).prediction_log == str(target)
    assert target.is_file() and target.stat().st_size == 0


def test_the_server_counts_the_lines_a_failing_log_drops(make_client) -> None:
    client = make_client(prediction_log="/dev/full")  # opens; every write fails (no space)
    assert client.post("/v1/predict", json={"products": PRODUCTS}).status_code == 200
    assert client.post("/v1/predict", json={"products": PRODUCTS[:1]}).status_code == 200
    text = client.get("/metrics").text
    assert "prediction_log_dropped_lines_total 3.0" in text
