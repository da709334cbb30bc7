"""Every query of the Grafana dashboard returns data from Debian's real Prometheus after it has
scraped a server that served traffic (the model-health row included)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_serving_prometheus import PROMETHEUS, promql, wait_for_value
from tests.support import (
    REPO,
    require_binary,
    sample_records,
    scrape_config,
    start_prometheus,
    stop_process,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("mlflow_uri_restored")]

DASHBOARD = REPO / "k8s/components/prometheus-operator/dashboards/product-classifier.json"
NAMESPACE = "it"
# kube-state-metrics is not part of this test; panels reading only its series are left out.
KUBE_STATE_ONLY = re.compile(r"^\s*kube_\w+\{[^}]*\}\s*$")


def dashboard_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if not KUBE_STATE_ONLY.match(target["expr"])
    ]


def as_sent(expr: str) -> str:
    """The query as Grafana sends it, with the dashboard's variables filled in."""
    return expr.replace("$namespace", NAMESPACE).replace("$__rate_interval", "30s")


@pytest.fixture
def prometheus(tmp_path: Path, serve_registry) -> Iterator[tuple[str, object]]:
    """A served model and a Prometheus scraping it every second as the operator would label it."""
    binary = require_binary(PROMETHEUS, "prometheus")
    server = serve_registry()
    target = server.url.removeprefix("http://")
    labels = {"namespace": NAMESPACE, "pod": "serving-0"}
    config = scrape_config(tmp_path, "product-classifier", target, labels)
    process, base = start_prometheus(binary, config, tmp_path)
    try:
        yield base, server
    finally:
        stop_process(process)


def product_monitor(*args: str, tracking_uri: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "training.monitor", *args]
    env = os.environ | {"MLFLOW_TRACKING_URI": tracking_uri}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)


def test_every_dashboard_query_returns_data(prometheus, registry, tmp_path: Path) -> None:
    base, server = prometheus
    # Scraped once before the traffic: increase() counts from a series' first sample.
    wait_for_value(base, 'up{job="product-classifier"}', 1)
    fields = ("title", "description", "brand", "category", "price")
    products = [{k: r[k] for k in fields if r.get(k)} for r in sample_records()[1600:1720]]
    for start in range(0, len(products), 10):
        status, _ = server.post("/v1/predict", {"products": products[start : start + 10]})
        assert status == 200
    window = f'sum(prediction_drift_window_size{{namespace="{NAMESPACE}"}})'
    assert wait_for_value(base, window, len(products)) == len(products)
    time.sleep(3)  # a few more scrapes, so every rate() has two samples after the traffic
    empty = [
        (title, expr) for title, expr in dashboard_queries() if not promql(base, as_sent(expr))
    ]
    assert not empty, f"dashboard queries without data: {empty}"
    scores = promql(base, f'prediction_drift_score{{namespace="{NAMESPACE}"}}')
    assert {s["metric"]["kind"] for s in scores} == {"label", "confidence", "oov"}

    report = product_monitor(
        "report",
        "--model-name",
        registry.model_name,
        "--prometheus",
        base,
        "--window",
        "5m",
        "--out",
        str(tmp_path / "report"),
        tracking_uri=registry.tracking_uri,
    )
    assert report.returncode == 0, report.stderr
    assert f"champion v{registry.version}" in report.stdout
    written = json.loads((tmp_path / "report" / "drift_report.json").read_text())
    # increase() extrapolates to the whole range, so the count is close, not exact.
    assert abs(written["live"]["rows"] - len(products)) <= 0.2 * len(products)
    # Fields never sent are counted missing from the start (their counters exist at 0).
    assert written["live"]["fill_rate"]["also_view"] < 0.05
    assert written["live"]["fill_rate"]["title"] > 0.95
    assert written["level"] == "unknown" and set(written["scores"]) == {
        "label",
        "confidence",
        "oov",
    }
    assert (tmp_path / "report" / "drift_report.png").stat().st_size > 10_000

    changed = tmp_path / "newer.jsonl"
    changed.write_text('{"title": "x"}\n')
    retrain = product_monitor(
        "should-retrain",
        "--model-name",
        registry.model_name,
        "--prometheus",
        base,
        "--window",
        "5m",
        "--data",
        str(changed),
        tracking_uri=registry.tracking_uri,
    )
    assert retrain.returncode == 0, retrain.stderr
    assert "decision: retrain: the catalog changed and no drift verdict" in retrain.stderr

    trained_on = registry.root / "tiny-slice.jsonl.gz"
    same = product_monitor(
        "should-retrain",
        "--model-name",
        registry.model_name,
        "--data",
        str(trained_on),
        tracking_uri=registry.tracking_uri,
    )
    assert same.returncode == 1, same.stderr
    assert "retraining would reproduce it" in same.stderr
