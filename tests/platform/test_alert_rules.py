"""Monitoring: the alert rules pass promtool's checks and unit tests (each alert fires in one),
the PrometheusRule is the rule file, every series they and the dashboard use is one the app or
kube-state-metrics exports, and the ServiceMonitor finds the serving Service."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from serving.metrics import ServingMetrics
from tests.platform.kube import K8S, find, require, run
from tests.support import REPO

pytestmark = pytest.mark.platform

COMPONENT = K8S / "components" / "prometheus-operator"
RULES = COMPONENT / "rules" / "product-classifier.rules.yaml"
RULE_TESTS = COMPONENT / "rules" / "product-classifier.tests.yaml"
DASHBOARD = COMPONENT / "dashboards" / "product-classifier.json"
KUBE_STATE_METRICS = {
    "kube_deployment_status_replicas_available",
    "kube_job_status_failed",
    "kube_job_status_succeeded",
    "kube_job_status_active",
}
SERIES = re.compile(r"([a-zA-Z_:][\w:]*)\{")


def _promtool() -> str:
    return require("promtool", "install Debian's prometheus package (apt-get install prometheus)")


def _alerts() -> dict[str, dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"] if "alert" in rule}


def _exported_series() -> set[str]:
    """Every series name the serving app exports, from its own metric definitions."""
    suffixes = {
        "counter": ("_total",),
        "histogram": ("_bucket", "_sum", "_count"),
        "gauge": ("",),
        "info": ("_info",),
    }
    names = set()
    for metric in ServingMetrics().registry.collect():
        names.update(metric.name + suffix for suffix in suffixes.get(metric.type, ("",)))
    return names


def test_promtool_checks_the_rules() -> None:
    result = run([_promtool(), "check", "rules", str(RULES)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass() -> None:
    result = run([_promtool(), "test", "rules", RULE_TESTS.name], cwd=RULE_TESTS.parent)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_unit_tested_firing() -> None:
    tests = yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))["tests"]
    fired = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert fired == set(_alerts())


def test_alerts_have_severity_and_summary() -> None:
    for name, rule in _alerts().items():
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name


def test_rules_cover_the_promised_signals() -> None:
    expressions = " ".join(rule["expr"] for rule in _alerts().values())
    for series in (
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "kube_deployment_status_replicas_available",
        "model_load_failures_total",
        "kube_job_status_failed",
        "prediction_drift_score",
        "prediction_window_mean",
        "prediction_reference_mean",
    ):
        assert series in expressions, series


def test_rules_and_dashboard_use_only_exported_series() -> None:
    known = _exported_series() | KUBE_STATE_METRICS
    expressions = [rule["expr"] for rule in _alerts().values()]
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    expressions += [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    used = {name for expr in expressions for name in SERIES.findall(expr)}
    assert used <= known, f"no such series: {sorted(used - known)}"


def test_prometheus_rule_is_generated_from_the_rule_file() -> None:
    result = run(
        [
            str(REPO / ".venv" / "bin" / "python"),
            "scripts/containers/prometheus_rule.py",
            "--check",
            str(RULES),
            str(COMPONENT / "prometheus-rule.yaml"),
        ]
    )
    assert result.returncode == 0, result.stderr
    rule = yaml.safe_load((COMPONENT / "prometheus-rule.yaml").read_text(encoding="utf-8"))
    assert rule["spec"] == yaml.safe_load(RULES.read_text(encoding="utf-8"))


def test_dashboard_shows_traffic_latency_errors_predictions_confidence_and_model() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    by_series: dict[str, list[str]] = {}
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            for name in SERIES.findall(target["expr"]):
                by_series.setdefault(name, []).append(panel["title"])
    for series in (
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "predictions_total",
        "prediction_confidence_bucket",
        "model_info",
        "prediction_drift_score",
        "prediction_drift_window_size",
        "prediction_oov_share_bucket",
        "prediction_input_missing_total",
    ):
        assert series in by_series, series
    assert any(
        'status=~"5.."' in t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])
    )
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_dashboard_config_map_is_generated_from_the_json(
    manifests: dict[str, list[dict[str, Any]]],
) -> None:
    config_map = find(manifests["prod"], "ConfigMap", "product-classifier-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["data"] == {DASHBOARD.name: DASHBOARD.read_text(encoding="utf-8")}


def test_service_monitor_scrapes_the_serving_service(
    manifests: dict[str, list[dict[str, Any]]],
) -> None:
    objects = manifests["prod"]
    monitor = find(objects, "ServiceMonitor", "product-classifier")
    service = find(objects, "Service", "product-classifier")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    endpoint = monitor["spec"]["endpoints"][0]
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    # The rules select job="product-classifier": the job label is the Service's name.
    assert 'job="product-classifier"' in _alerts()["ProductClassifierHighErrorRatio"]["expr"]
    assert service["metadata"]["name"] == "product-classifier" and "jobLabel" not in monitor["spec"]


def test_rule_files_are_plain_prometheus_format() -> None:
    assert "apiVersion" not in yaml.safe_load(RULES.read_text(encoding="utf-8"))
    assert Path(RULE_TESTS).exists()


def test_the_platform_docs_list_every_alert() -> None:
    docs = (REPO / "docs" / "platform.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `(ProductClassifier\w+)` \|", docs, flags=re.M))
    assert listed == set(_alerts())
