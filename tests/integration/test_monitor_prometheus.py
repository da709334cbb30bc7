"""`product-monitor`'s queries on Debian's real Prometheus across a hot swap: the new champion is
judged on its own answers only, never on the previous version's (no model, no MLflow: the
server's own metrics on a stand-in model, exposed over HTTP)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import pytest

from serving.metrics import ServingMetrics
from tests.integration.test_serving_prometheus import PROMETHEUS, wait_for_value
from tests.support import (
    metrics_exposed,
    require_binary,
    scrape_config,
    start_prometheus,
    stop_process,
)
from tests.unit.training.test_drift_report import serve
from training.drift_report import Prometheus
from training.monitor import no_traffic
from training.retrain_decision import Champion

pytestmark = pytest.mark.integration

SELECTOR = 'job="swap"'


@pytest.fixture
def scraped(tmp_path: Path, monkeypatch) -> Iterator[tuple[str, ServingMetrics]]:
    """A Prometheus scraping, every second, the metrics of a server that serves v2."""
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    binary = require_binary(PROMETHEUS, "prometheus")
    _, metrics, _ = serve("single_label", 0, version="2")
    server = metrics_exposed(metrics)
    config = scrape_config(tmp_path, "swap", f"127.0.0.1:{server.server_address[1]}")
    process, base = start_prometheus(binary, config, tmp_path)
    try:
        yield base, metrics
    finally:
        stop_process(process)
        server.shutdown()


def judged(base: str, version: str) -> Prometheus:
    return Prometheus(base, SELECTOR, "5m", ("m", version))


def test_after_a_swap_the_champion_is_judged_on_its_own_answers(scraped) -> None:
    base, metrics = scraped
    counted = 'sum(prediction_confidence_count{job="swap",version="%s"})'
    wait_for_value(base, counted % "2", 0)  # the series' first sample, at 0
    serve("single_label", 600, metrics, version="2")
    wait_for_value(base, counted % "2", 600)
    assert wait_for_value(base, 'sum(prediction_drift_window_size{job="swap"})', 600) == 600

    metrics.model_retired(("m", "2", "champion"))  # the swap, as the keeper does it
    _, metrics, _ = serve("single_label", 0, metrics, version="6")
    wait_for_value(base, 'count(model_info{job="swap",version="6"})', 1)
    wait_for_value(base, counted % "6", 0)
    assert judged(base, "6").live_profile()["rows"] == 0
    assert judged(base, "6").server_scores() == {}
    # v2's answers are still there to judge v2 (increase() extrapolates a short series' edges)
    assert judged(base, "2").live_profile()["rows"] >= 600
    args = argparse.Namespace(prometheus=base, selector=SELECTOR, window="5m", model_name="m")
    message = no_traffic(args, Champion("6", "run", None, None))
    assert message.startswith("champion m v6 has answered no predictions yet")
    assert "the answers of m v2 in that time are not the champion's" in message

    reference, _, _ = serve("single_label", 40, metrics, version="6")
    wait_for_value(base, counted % "6", 40)
    wait_for_value(base, 'count(prediction_drift_score{job="swap",version="6"})', 2)
    live = judged(base, "6").live_profile()
    assert 40 <= live["rows"] <= 80 and set(live["labels"]) <= set(reference["labels"])
    assert set(judged(base, "6").server_scores()) >= {"label", "confidence"}
