"""Prediction logging is off by default, and when asked for writes one JSON line per product,
with the product's fields only when allowed."""

from __future__ import annotations

import json
from pathlib import Path

from serving.settings import Settings

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
