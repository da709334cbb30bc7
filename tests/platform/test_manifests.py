"""The Kubernetes manifests: every overlay renders, validates against the Kubernetes API schemas,
passes checkov, and keeps the rules the platform promises (restricted pods, pinned images,
recommended labels, network isolation)."""

from __future__ import annotations

import copy as copy_module
import re
from pathlib import Path
from typing import Any

import pytest

from tests.platform.kube import (
    K8S,
    KUBERNETES_MIN,
    OVERLAYS,
    find,
    pod_spec,
    render,
    run,
    workloads,
)
from tests.support import REPO

pytestmark = pytest.mark.platform

# No schema in kubernetes-validate: checked below.
CRD_KINDS = {"ServiceMonitor", "PrometheusRule", "SparkApplication"}
RECOMMENDED_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
)
SKIP_ANNOTATION = re.compile(r"^CKV_K8S_\d+=\S.{30,}$")


def test_there_are_dev_and_prod_overlays() -> None:
    assert {"dev", "prod"} <= set(OVERLAYS)


def test_base_renders_on_its_own() -> None:
    assert "kind: Deployment" in render(K8S / "base")


@pytest.mark.parametrize("kubernetes", [None, KUBERNETES_MIN], ids=["latest", "oldest"])
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_objects_validate_against_kubernetes_schemas(
    overlay: str, kubernetes: str | None, rendered_files: dict[str, Path], tools_bin: Path
) -> None:
    """Against the newest schemas kubernetes-validate has, and the oldest the docs promise."""
    version = ["--kubernetes-version", f"{kubernetes}.0"] if kubernetes else []
    result = run(
        [
            str(tools_bin / "kubernetes-validate"),
            "--strict",
            "--quiet",
            *version,
            str(rendered_files[overlay]),
        ]
    )
    assert result.returncode == 0, result.stdout + result.stderr
    unchecked = re.findall(r"Couldn't find schema for kind (\w+)", result.stdout + result.stderr)
    assert set(unchecked) <= CRD_KINDS, f"objects left unvalidated: {unchecked}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_checkov_passes(overlay: str, rendered_files: dict[str, Path], tools_bin: Path) -> None:
    result = run(
        [
            str(tools_bin / "checkov"),
            "--quiet",
            "--compact",
            "--skip-download",
            "--framework",
            "kubernetes",
            "--file",
            str(rendered_files[overlay]),
        ]
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_checkov_skip_gives_its_reason(
    overlay: str, manifests: dict[str, list[dict[str, Any]]]
) -> None:
    for obj in manifests[overlay]:
        for key, value in obj["metadata"].get("annotations", {}).items():
            if key.startswith("checkov.io/skip"):
                assert SKIP_ANNOTATION.match(value), f"{obj['metadata']['name']}: {key}: {value}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_carries_the_recommended_labels(
    overlay: str, manifests: dict[str, list[dict[str, Any]]]
) -> None:
    for obj in manifests[overlay]:
        labels = obj["metadata"].get("labels", {})
        missing = [label for label in RECOMMENDED_LABELS if label not in labels]
        assert not missing, f"{obj['kind']}/{obj['metadata']['name']} lacks {missing}"
        assert labels["app.kubernetes.io/part-of"] == "product-categorization"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pod_templates_carry_the_selector_labels(
    overlay: str, manifests: dict[str, list[dict[str, Any]]]
) -> None:
    for obj in workloads(manifests[overlay]):
        spec = obj["spec"]["jobTemplate"]["spec"] if obj["kind"] == "CronJob" else obj["spec"]
        labels = spec["template"]["metadata"]["labels"]
        for label in ("app.kubernetes.io/name", "app.kubernetes.io/component"):
            assert label in labels, f"{obj['metadata']['name']}: pod template lacks {label}"
        selector = spec.get("selector", {}).get("matchLabels", {})
        assert selector.items() <= labels.items(), obj["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_app_version_label_is_the_project_version(
    overlay: str, manifests: dict[str, list[dict[str, Any]]]
) -> None:
    version = re.search(r'^version = "(.+)"', (REPO / "pyproject.toml").read_text(), re.M)
    assert version
    for obj in manifests[overlay]:
        labels = obj["metadata"]["labels"]
        if labels["app.kubernetes.io/name"] in ("product-classifier", "product-categorization"):
            assert labels["app.kubernetes.io/version"] == version.group(1), obj["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_images_are_pinned(overlay: str, manifests: dict[str, list[dict[str, Any]]]) -> None:
    for obj in workloads(manifests[overlay]):
        for container in pod_spec(obj)["containers"]:
            image = container["image"]
            assert "@sha256:" in image or re.search(r":[\w][\w.-]*$", image), image
            assert not image.endswith(":latest"), image


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_meets_the_restricted_pod_security_standard(
    overlay: str, manifests: dict[str, list[dict[str, Any]]]
) -> None:
    for obj in workloads(manifests[overlay]):
        name = obj["metadata"]["name"]
        spec = pod_spec(obj)
        pod_context = spec["securityContext"]
        assert pod_context["runAsNonRoot"] is True, name
        assert pod_context["seccompProfile"]["type"] == "RuntimeDefault", name
        assert spec["automountServiceAccountToken"] is False, name
        assert not spec.get("hostNetwork") and not spec.get("hostPID"), name
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert "add" not in context["capabilities"], name
            resources = container["resources"]
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= resources[kind].keys(), f"{name}: {kind}"


def test_namespace_enforces_the_restricted_standard(
    manifests: dict[str, list[dict[str, Any]]],
) -> None:
    for objects in manifests.values():
        namespace = find(objects, "Namespace", "product-classifier")
        assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_target_named_container_ports(
    overlay: str, manifests: dict[str, list[dict[str, Any]]]
) -> None:
    for obj in workloads(manifests[overlay]):
        for container in pod_spec(obj)["containers"]:
            ports = {port["name"] for port in container.get("ports", [])}
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                http = container.get(probe, {}).get("httpGet")
                if http:
                    assert http["port"] in ports, f"{obj['metadata']['name']} {probe}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_serving_rolls_out_without_dropping_requests(
    overlay: str, manifests: dict[str, list[dict[str, Any]]]
) -> None:
    deployment = find(manifests[overlay], "Deployment", "product-classifier")
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    spec = deployment["spec"]["template"]["spec"]
    container = spec["containers"][0]
    env = {item["name"]: item.get("value") for item in container["env"]}
    drain = float(env.get("SHUTDOWN_TIMEOUT_SECONDS", 20))
    pause = container["lifecycle"]["preStop"]["exec"]["command"]
    pause_seconds = float(re.search(r"sleep\((\d+(?:\.\d+)?)\)", pause[-1]).group(1))
    assert spec["terminationGracePeriodSeconds"] > pause_seconds + drain
    assert container["startupProbe"]["httpGet"]["path"] == "/readyz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    memory_limit = container["resources"]["limits"]["memory"]
    assert memory_limit.endswith(("Mi", "Gi")), memory_limit


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_autoscaler_and_disruption_budget_cover_the_serving_pods(
    overlay: str, manifests: dict[str, list[dict[str, Any]]]
) -> None:
    objects = manifests[overlay]
    deployment = find(objects, "Deployment", "product-classifier")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    hpa = find(objects, "HorizontalPodAutoscaler", "product-classifier")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "product-classifier",
    }
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    pdb = find(objects, "PodDisruptionBudget", "product-classifier")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    service = find(objects, "Service", "product-classifier")
    assert service["spec"]["selector"].items() <= pod_labels.items()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_serving_pods_are_annotated_for_prometheus(
    overlay: str, manifests: dict[str, list[dict[str, Any]]]
) -> None:
    deployment = find(manifests[overlay], "Deployment", "product-classifier")
    template = deployment["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    port = template["spec"]["containers"][0]["ports"][0]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(port["containerPort"])
    assert annotations["prometheus.io/path"] == "/metrics"


def test_dev_loads_local_images_and_generates_its_own_secret(
    manifests: dict[str, list[dict[str, Any]]],
) -> None:
    objects = manifests["dev"]
    for obj in workloads(objects):
        for container in pod_spec(obj)["containers"]:
            assert container["imagePullPolicy"] == "IfNotPresent", obj["metadata"]["name"]
    hpa = find(objects, "HorizontalPodAutoscaler", "product-classifier")
    assert hpa["spec"]["minReplicas"] == 1
    secrets = [obj for obj in objects if obj["kind"] == "Secret"]
    assert [s["metadata"]["name"].rsplit("-", 1)[0] for s in secrets] == ["mlflow-postgresql"]


def test_prod_keeps_secrets_out_and_artifacts_in_object_storage(
    manifests: dict[str, list[dict[str, Any]]],
) -> None:
    objects = manifests["prod"]
    assert not [obj for obj in objects if obj["kind"] == "Secret"]
    assert not [obj for obj in objects if obj["kind"] == "PersistentVolumeClaim"]
    mlflow = find(objects, "Deployment", "mlflow")["spec"]["template"]["spec"]["containers"][0]
    env = {item["name"]: item for item in mlflow["env"]}
    assert env["MLFLOW_ARTIFACTS_DESTINATION"]["value"].startswith("s3://")
    assert "MLFLOW_S3_ENDPOINT_URL" in env
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert env[key]["valueFrom"]["secretKeyRef"]["name"] == "mlflow-s3"
    assert not [m for m in mlflow.get("volumeMounts", []) if m["mountPath"] == "/mlartifacts"]
    serving = find(objects, "HorizontalPodAutoscaler", "product-classifier")
    assert serving["spec"]["minReplicas"] >= 2
    kinds = {obj["kind"] for obj in objects}
    assert {"ServiceMonitor", "PrometheusRule", "CronJob"} <= kinds


def test_retraining_cronjob_runs_the_training_job_spec(
    manifests: dict[str, list[dict[str, Any]]],
) -> None:
    objects = manifests["prod"]
    job = find(objects, "Job", "product-classifier-train")
    cronjob = find(objects, "CronJob", "product-classifier-retrain")
    copy = copy_module.deepcopy(cronjob["spec"]["jobTemplate"]["spec"])
    container = copy["template"]["spec"]["containers"][0]
    script = container["args"][0]
    assert container.pop("command") == ["/bin/sh", "-c"]
    assert "product-monitor should-retrain" in script and "exec product-train" in script
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["ALWAYS_TRAIN"] == "false" and env["PROMETHEUS_URL"].startswith("http://")
    container["env"] = [
        e for e in container["env"] if e["name"] not in env.keys() - {"MLFLOW_TRACKING_URI"}
    ]
    container.pop("args")
    assert copy["template"]["metadata"]["labels"].pop("product-classifier/retraining") == "true"
    trained = copy_module.deepcopy(job["spec"])
    trained["template"]["spec"]["containers"][0].pop("command")
    trained["template"]["spec"]["containers"][0].pop("args")
    assert copy == trained
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_training_job_is_bounded(overlay: str, manifests: dict[str, list[dict[str, Any]]]) -> None:
    job = find(manifests[overlay], "Job", "product-classifier-train")
    spec = job["spec"]
    assert spec["backoffLimit"] <= 3
    assert spec["activeDeadlineSeconds"] > 0
    assert spec["ttlSecondsAfterFinished"] > 0
    container = spec["template"]["spec"]["containers"][0]
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
    assert {"/tmp", "/etc/product-classifier"} <= mounts


# ---- network isolation: who may open a connection to whom ----------------------------------


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return selector.get("matchLabels", {}).items() <= labels.items()


def _ingress_sources(objects: list[dict[str, Any]], target: dict[str, str], port: int) -> set:
    """Components of the pods allowed to open `port` on pods labelled `target` ('*': anyone)."""
    policies = [
        obj
        for obj in objects
        if obj["kind"] == "NetworkPolicy"
        and "Ingress" in obj["spec"]["policyTypes"]
        and _selects(obj["spec"]["podSelector"], target)
    ]
    assert policies, f"no ingress policy selects {target}: default deny is missing"
    sources: set[str] = set()
    for policy in policies:
        for rule in policy["spec"].get("ingress", []):
            ports = {item["port"] for item in rule.get("ports", [])}
            if ports and port not in ports:
                continue
            if "from" not in rule:
                sources.add("*")
            for peer in rule.get("from", []):
                labels = peer["podSelector"]["matchLabels"]
                sources.add(labels["app.kubernetes.io/component"])
    return sources


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_isolate_the_components(
    overlay: str, manifests: dict[str, list[dict[str, Any]]]
) -> None:
    objects = manifests[overlay]
    deny = find(objects, "NetworkPolicy", "default-deny")["spec"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    postgres = {"app.kubernetes.io/name": "postgresql", "app.kubernetes.io/component": "database"}
    mlflow = {"app.kubernetes.io/name": "mlflow", "app.kubernetes.io/component": "tracking-server"}
    serving = {
        "app.kubernetes.io/name": "product-classifier",
        "app.kubernetes.io/component": "serving",
    }
    # Tuning pods share their study through MLflow's PostgreSQL (components/tuning).
    assert _ingress_sources(objects, postgres, 5432) == {"tracking-server", "tuning"}
    has_batch = any(obj["kind"] == "SparkApplication" for obj in objects)
    batch = {"batch", "batch-spark"} if has_batch else set()
    assert _ingress_sources(objects, mlflow, 5000) == {"training", "serving", "tuning"} | batch
    assert _ingress_sources(objects, serving, 8000) == {"*"}
    assert _ingress_sources(objects, postgres, 5000) == set()
