"""The real server as a subprocess on loopback: probes, metrics, logs, start-up without MLflow,
several workers, and a SIGTERM drain with requests in flight."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support import (
    REPO,
    free_port,
    sample_records,
    start_mlflow_server,
    stop_process,
    wait_for_http,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("mlflow_uri_restored")]

PRODUCTS = sample_records(limit=200)
for _product in PRODUCTS:
    _product.pop("main_cat")

REQUIRED_METRICS = {
    "http_requests": "counter",
    "http_request_duration_seconds": "histogram",
    "http_requests_in_flight": "gauge",
    "predictions": "counter",
    "prediction_confidence": "histogram",
    "prediction_batch_size": "histogram",
    "model_info": "gauge",
    "model_load_duration_seconds": "histogram",
    "model_load_failures": "counter",
    "model_last_load_timestamp_seconds": "gauge",
}


def families(text: str) -> dict:
    return {family.name: family for family in text_string_to_metric_families(text)}


def test_probes_predictions_metrics_and_logs(registry, serve_registry) -> None:
    server = serve_registry(ready=False)
    server.wait_live()
    status, body = server.get("/readyz")
    assert status in (200, 503)
    if status == 503:
        assert body["status"] == "not ready" and body["reason"]
    server.wait_ready()
    assert time.monotonic() - server.started < 60
    for probe in ("/healthz", "/readyz"):  # HEAD, as load balancers probe: the status, no body
        head = urllib.request.Request(server.url + probe, method="HEAD")
        with urllib.request.urlopen(head, timeout=10) as response:
            assert response.status == 200 and response.read() == b""

    status, answer = server.post(
        "/v1/predict", {"products": [*PRODUCTS[:3], {"title": "SECRET-TITLE 🚀"}], "top_k": 2}
    )
    assert status == 200 and len(answer["predictions"]) == 4
    assert answer["model_name"] == registry.model_name
    assert answer["model_version"] == registry.version
    assert server.post("/v1/predict", {"products": [{"brand": "x"}]})[0] == 422
    assert server.get("/nowhere")[0] == 404
    status, card = server.get("/v1/model")
    assert status == 200 and card["version"] == registry.version and card["classes"]

    found = families(server.metrics_text())
    for name, kind in REQUIRED_METRICS.items():
        assert found[name].type == kind, name
    routes = {s.labels["route"] for s in found["http_requests"].samples}
    assert routes == {"/v1/predict", "other", "/v1/model"}
    info = found["model_info"].samples[0]
    assert info.value == 1 and info.labels["version"] == registry.version
    assert "process_resident_memory_bytes" in found or "process_resident_memory" in found

    lines = server.log_lines()
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    access = [e for e in entries if e["logger"] == "serving.access"]
    assert {e["route"] for e in access} == {"/v1/predict", "other", "/v1/model"}
    assert all(len(e["request_id"]) >= 16 for e in access)
    assert not any("/healthz" in line or "/readyz" in line for line in lines)
    assert "SECRET-TITLE" not in "\n".join(lines)
    assert any(e["message"] == "model loaded" for e in entries)


def in_flight(server) -> float:
    return families(server.metrics_text())["http_requests_in_flight"].samples[0].value


def test_sigterm_drains_in_flight_requests_and_exits_0(serve_registry) -> None:
    server = serve_registry(BATCH_MAX_SIZE="8", SHUTDOWN_TIMEOUT_SECONDS="60")
    body = {"products": PRODUCTS * 2}  # 400 products: each request keeps the model busy a while

    with ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(server.post, "/v1/predict", body, 120) for _ in range(16)]
        deadline = time.monotonic() + 20
        while in_flight(server) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        waiting = in_flight(server)  # /metrics itself is kept out of the request metrics
        server.process.send_signal(signal.SIGTERM)
        results = [future.result() for future in futures]

    assert waiting >= 3, "the requests finished before SIGTERM: nothing was in flight"
    assert [status for status, _ in results] == [200] * 16
    assert all(len(answer["predictions"]) == 400 for _, answer in results)
    assert server.process.wait(timeout=60) == 0
    with pytest.raises(OSError):
        server.get("/healthz", timeout=2)


def test_starts_without_mlflow_and_becomes_ready_when_it_appears(
    registry, start_server, tmp_path
) -> None:
    port = free_port()
    server = start_server(
        MLFLOW_TRACKING_URI=f"http://127.0.0.1:{port}", MODEL_NAME=registry.model_name
    )
    server.wait_live()
    deadline = time.monotonic() + 30
    while server.get("/readyz")[1]["reason"] == "loading" and time.monotonic() < deadline:
        time.sleep(0.1)
    status, body = server.get("/readyz")
    assert status == 503 and body["reason"] == "the model registry is unreachable", body
    assert str(port) not in str(body)  # no internal address for clients
    assert server.post("/v1/predict", {"products": PRODUCTS[:1]})[0] == 503

    # A second tracking server on the same store appears on the expected port.
    mlflow = start_mlflow_server(registry.root, port)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health", timeout=120, process=mlflow)
        server.wait_ready(timeout=120)
        assert server.post("/v1/predict", {"products": PRODUCTS[:1]})[0] == 200
        failures = families(server.metrics_text())["model_load_failures"].samples[0].value
        assert failures >= 1
    finally:
        stop_process(mlflow)


def test_several_workers_share_one_metrics_view(registry, serve_registry) -> None:
    server = serve_registry(WORKERS="2")
    with ThreadPoolExecutor(8) as pool:
        statuses = list(
            pool.map(lambda p: server.post("/v1/predict", {"products": [p]})[0], PRODUCTS[:40])
        )
    assert statuses == [200] * 40
    found = families(server.metrics_text())
    answered = sum(
        s.value
        for s in found["http_requests"].samples
        if s.name == "http_requests_total" and s.labels["route"] == "/v1/predict"
    )
    assert answered == 40  # summed over both workers, whichever answers the scrape
    rows = next(s for s in found["prediction_batch_size"].samples if s.name.endswith("_sum"))
    assert rows.value == 40
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=60) == 0


def test_bad_setting_exits_2_with_one_message() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "serving"],
        env={"PATH": "/usr/bin:/bin", "MAX_BODY_BYTES": "lots"},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip().startswith("invalid setting MAX_BODY_BYTES")
    assert "Traceback" not in done.stderr
