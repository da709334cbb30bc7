"""Debian's Prometheus scrapes the server and answers PromQL over its HTTP API."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request

import pytest

from tests.support import require_binary, scrape_config, start_prometheus, stop_process

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("mlflow_uri_restored")]

PROMETHEUS = "/usr/bin/prometheus"


def promql(base: str, query: str) -> list[dict]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=10) as response:
        answer = json.loads(response.read())
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def wait_for_value(base: str, query: str, at_least: float, timeout: float = 60) -> float:
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        result = promql(base, query)
        if result:
            value = float(result[0]["value"][1])
            if value >= at_least:
                return value
        time.sleep(0.5)
    raise AssertionError(f"{query} = {value}, expected >= {at_least} within {timeout}s")


def test_prometheus_scrapes_and_answers_promql(registry, serve_registry, tmp_path) -> None:
    binary = require_binary(PROMETHEUS, "prometheus")
    server = serve_registry()
    target = server.url.removeprefix("http://")
    config = scrape_config(tmp_path, "product-serving", target)
    process, base = start_prometheus(binary, config, tmp_path)
    try:
        for i in range(12):
            status, _ = server.post("/v1/predict", {"products": [{"title": f"Perl module {i}"}]})
            assert status == 200
        assert server.post("/v1/predict", {"products": []})[0] == 422

        assert wait_for_value(base, 'up{job="product-serving"}', 1) == 1
        answered = 'sum(http_requests_total{route="/v1/predict",status="200"})'
        assert wait_for_value(base, answered, 12) == 12
        assert wait_for_value(base, 'sum(http_requests_total{status="422"})', 1) == 1
        assert wait_for_value(base, "sum(predictions_total)", 12) == 12
        info = promql(base, f'model_info{{name="{registry.model_name}"}}')
        assert info and info[0]["metric"]["version"] == registry.version
        p99 = promql(
            base,
            "histogram_quantile(0.99, sum by (le) "
            '(http_request_duration_seconds_bucket{route="/v1/predict"}))',
        )
        assert 0 < float(p99[0]["value"][1]) < 10
        probes = promql(base, 'http_requests_total{route=~"/healthz|/readyz|/metrics"}')
        assert probes == []
    finally:
        stop_process(process)
