"""Plain Prometheus (k8s/plain-prometheus/prometheus.yml): its scrape job gives the serving pods'
series the labels that the alert rules, the dashboard and `product-monitor` select and group by
(job="product-classifier", namespace, pod), and scrapes nothing else.

Debian's Prometheus is built without Kubernetes discovery, so promtool cannot parse the job's
`kubernetes_sd_configs` here: the checks replace it with static targets that carry the labels
Prometheus' pod discovery gives the rendered pods, then run promtool and a real Prometheus that
scrapes the server's own metrics through them."""

from __future__ import annotations

import copy
import json
import re
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from serving.metrics import ServingMetrics
from tests.integration.test_serving_prometheus import PROMETHEUS, promql, wait_for_value
from tests.platform.kube import K8S, find, pod_spec, require, run
from tests.support import metrics_exposed, require_binary, start_prometheus, stop_process
from training.monitor_options import DEFAULT_SELECTOR

pytestmark = pytest.mark.platform

EXAMPLE = K8S / "plain-prometheus" / "prometheus.yml"
COMPONENT = K8S / "components" / "prometheus-operator"
RULES = COMPONENT / "rules" / "product-classifier.rules.yaml"
DASHBOARD = COMPONENT / "dashboards" / "product-classifier.json"
JOB = "product-classifier"
# Debian's promtool on a kubernetes_sd_configs section: the only failure the example may give.
NO_KUBERNETES_DISCOVERY = "field kubernetes_sd_configs not found"


def _promtool() -> str:
    return require("promtool", "install Debian's prometheus package (apt-get install prometheus)")


def _example() -> dict[str, Any]:
    return yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))


def _job(config: dict[str, Any], name: str = JOB) -> dict[str, Any]:
    return next(job for job in config["scrape_configs"] if job["job_name"] == name)


def _discovered(obj: dict[str, Any], pod: str, phase: str, address: str) -> dict[str, Any]:
    """The static target Prometheus' pod discovery makes of the first container port of one pod
    of the workload `obj` (a rendered Deployment), scraped at `address`."""
    container = pod_spec(obj)["containers"][0]
    port = container["ports"][0]
    labels = obj["spec"]["template"]["metadata"]["labels"]
    meta = {
        f"__meta_kubernetes_pod_label_{re.sub(r'[^a-zA-Z0-9_]', '_', key)}": value
        for key, value in labels.items()
    }
    meta |= {
        "__meta_kubernetes_namespace": obj["metadata"]["namespace"],
        "__meta_kubernetes_pod_name": pod,
        "__meta_kubernetes_pod_phase": phase,
        "__meta_kubernetes_pod_container_name": container["name"],
        "__meta_kubernetes_pod_container_port_name": port["name"],
        "__meta_kubernetes_pod_container_port_number": str(port["containerPort"]),
    }
    return {"targets": [address], "labels": meta}


def _without_discovery(targets: list[dict[str, Any]], interval: str = "30s") -> dict[str, Any]:
    """The example with the serving job's pod discovery replaced by `targets`, only that job,
    the rule file by its absolute path, scraping every `interval`."""
    config = copy.deepcopy(_example())
    job = _job(config)
    del job["kubernetes_sd_configs"]
    job["static_configs"] = targets
    job["scrape_interval"] = job["scrape_timeout"] = interval
    config["global"] = {"scrape_interval": interval, "evaluation_interval": interval}
    config["scrape_configs"] = [job]
    config["rule_files"] = [str(RULES)]
    return config


def _rule_count() -> int:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return sum(len(group["rules"]) for group in groups)


def _pods(objects: list[dict[str, Any]], address: str) -> list[dict[str, Any]]:
    """A running serving pod, one that has ended, and a running MLflow pod (its port is also
    named http), all at `address`."""
    serving = find(objects, "Deployment", "product-classifier")
    mlflow = find(objects, "Deployment", "mlflow")
    return [
        _discovered(serving, "product-classifier-7d9c-a", "Running", address),
        _discovered(serving, "product-classifier-7d9c-b", "Succeeded", address),
        _discovered(mlflow, "mlflow-5f6d-a", "Running", address),
    ]


def test_the_job_is_the_one_the_rules_the_dashboard_and_the_monitor_select() -> None:
    assert _job(_example())["job_name"] == JOB
    selected = set(re.findall(r'job="([^"]+)"', RULES.read_text(encoding="utf-8")))
    selected |= set(re.findall(r'job=\\"([^"\\]+)\\"', DASHBOARD.read_text(encoding="utf-8")))
    assert selected == {JOB}
    assert f'job="{JOB}"' == DEFAULT_SELECTOR


def test_the_job_discovers_the_pods_of_the_namespace_the_overlays_deploy_to(
    manifests: dict[str, list[dict[str, Any]]],
) -> None:
    namespaces = {
        find(objects, "Deployment", "product-classifier")["metadata"]["namespace"]
        for objects in manifests.values()
    }
    assert _job(_example())["kubernetes_sd_configs"] == [
        {"role": "pod", "namespaces": {"names": sorted(namespaces)}}
    ]


def test_promtool_checks_the_example_and_its_rule_file(
    manifests: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    result = run([_promtool(), "check", "config", EXAMPLE.name], cwd=EXAMPLE.parent)
    output = result.stdout + result.stderr
    assert result.returncode == 0 or NO_KUBERNETES_DISCOVERY in output, output
    # Beside a link to k8s/components, so that the example's relative rule file is found.
    (tmp_path / "components").symlink_to(K8S / "components")
    static = tmp_path / EXAMPLE.parent.name / EXAMPLE.name
    static.parent.mkdir()
    config = _without_discovery(_pods(manifests["dev"], "127.0.0.1:8000"))
    config["rule_files"] = _example()["rule_files"]
    static.write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
    result = run([_promtool(), "check", "config", str(static)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {_rule_count()} rules found" in result.stdout


@pytest.mark.integration
def test_prometheus_scrapes_the_serving_pods_only_with_the_labels_the_rules_use(
    manifests: dict[str, list[dict[str, Any]]], tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    binary = require_binary(PROMETHEUS, "prometheus")
    metrics = ServingMetrics()
    metrics.model_loaded((JOB, "3", "champion"), ["games", "devel"], 1.0, 0.0)
    server = metrics_exposed(metrics)
    address = f"127.0.0.1:{server.server_address[1]}"
    config = tmp_path / "prometheus.yml"
    config.write_text(json.dumps(_without_discovery(_pods(manifests["prod"], address), "1s")))
    process, base = start_prometheus(binary, config, tmp_path)
    try:
        wait_for_value(base, f"sum(model_info{{{DEFAULT_SELECTOR}}})", 1)
        targets = _get(f"{base}/api/v1/targets")["data"]
        rules = _get(f"{base}/api/v1/rules")["data"]["groups"]
        series = promql(base, f"model_info{{{DEFAULT_SELECTOR}}}")
    finally:
        stop_process(process)
        server.shutdown()
    assert [target["labels"]["pod"] for target in targets["activeTargets"]] == [
        "product-classifier-7d9c-a"
    ]
    assert len(targets["droppedTargets"]) == 2
    assert [s["metric"] for s in series] == [
        {
            "__name__": "model_info",
            "job": JOB,
            "instance": address,
            "namespace": "product-classifier",
            "pod": "product-classifier-7d9c-a",
            "container": "serve",
            "name": JOB,
            "version": "3",
            "alias": "champion",
        }
    ]
    assert sum(len(group["rules"]) for group in rules) == _rule_count()


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())
