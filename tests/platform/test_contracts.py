"""The manifests, the Makefile and the code agree: probe paths are routes of the app, every
serving variable is a setting, the Job's command line and config parse with the training CLI, and
image names are the ones the Makefile builds."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from serving.api import create_app
from serving.settings import Settings
from tests.platform.kube import K8S, OVERLAYS, find, pod_spec, render, run
from training.cli import build_parser, parse_config
from training.config import TrainConfig
from training.config_files import make_config, read_config_file

pytestmark = pytest.mark.platform

# Read by libraries rather than by Settings: the MLflow client and prometheus-client.
LIBRARY_VARIABLES = {"MLFLOW_TRACKING_URI", "PROMETHEUS_MULTIPROC_DIR"}
IMAGES = ("product-classifier-train", "product-classifier-serve", "product-classifier-mlflow")
BATCH_SPARK_IMAGE = "product-classifier-batch-spark"  # in the batch component, not the base
TRAINING_CONFIG = K8S / "base" / "training" / "training.yaml"


def _serving_container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return find(objects, "Deployment", "product-classifier")["spec"]["template"]["spec"][
        "containers"
    ][0]


def _env(container: dict[str, Any]) -> dict[str, str | None]:
    return {item["name"]: item.get("value") for item in container.get("env", [])}


@pytest.fixture(scope="module")
def app_paths() -> set[str]:
    app = create_app(Settings(model_uri="/nonexistent", reload_interval_seconds=0))
    return set(route_paths(app.routes))


def route_paths(routes: list[Any]) -> list[str]:
    """Every route's path, those of included routers (the v2 protocol's) too."""
    paths = []
    for route in routes:
        if hasattr(route, "path"):
            paths.append(route.path)
        elif hasattr(route, "original_router"):
            paths += route_paths(route.original_router.routes)
    return paths


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probe_paths_are_served_by_the_app(
    overlay: str, manifests: dict[str, list[dict[str, Any]]], app_paths: set[str]
) -> None:
    container = _serving_container(manifests[overlay])
    probed = {
        container[probe]["httpGet"]["path"]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe")
    }
    assert probed == {"/readyz", "/healthz"}
    assert probed | {"/metrics", "/v1/predict"} <= app_paths


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_serving_variables_are_settings(
    overlay: str, manifests: dict[str, list[dict[str, Any]]]
) -> None:
    known = {name.upper() for name in Settings.model_fields} | LIBRARY_VARIABLES
    container = _serving_container(manifests[overlay])
    unknown = set(_env(container)) - known
    assert not unknown, f"the server reads no such variable: {sorted(unknown)}"
    settings = Settings(**{k.lower(): v for k, v in _env(container).items()})
    assert settings.port == container["ports"][0]["containerPort"]
    assert settings.model_alias == "champion"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_training_command_parses_with_the_training_cli(
    overlay: str, manifests: dict[str, list[dict[str, Any]]]
) -> None:
    job = find(manifests[overlay], "Job", "product-classifier-train")
    container = pod_spec(job)["containers"][0]
    assert container["command"] == ["product-train"]
    args = build_parser().parse_args(container["args"])
    mount = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}["config"]
    assert args.config == Path(mount) / TRAINING_CONFIG.name


def test_training_config_holds_only_known_options() -> None:
    values = read_config_file(TRAINING_CONFIG)
    assert set(values) <= set(TrainConfig.model_fields)
    assert set(values) == {
        "model_name",
        "experiment_name",
        "n_estimators",
        "min_class_size",
        "test_size",
        "seed",
    }
    config = make_config(values)
    assert config.data is None, "the Job trains on the bundled sample by default"
    parsed, _ = parse_config(["--config", str(TRAINING_CONFIG)])
    assert parsed == config


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_training_config_map_is_the_config_file(
    overlay: str, manifests: dict[str, list[dict[str, Any]]]
) -> None:
    maps = [
        obj
        for obj in manifests[overlay]
        if obj["kind"] == "ConfigMap"
        and obj["metadata"]["name"].startswith("product-classifier-training-")
    ]
    assert len(maps) == 1
    assert maps[0]["data"] == {TRAINING_CONFIG.name: TRAINING_CONFIG.read_text(encoding="utf-8")}
    job = find(manifests[overlay], "Job", "product-classifier-train")
    volumes = {v["name"]: v for v in pod_spec(job)["volumes"]}
    assert volumes["config"]["configMap"]["name"] == maps[0]["metadata"]["name"]


def test_makefile_builds_the_images_the_manifests_run() -> None:
    result = run(
        ["make", "--no-print-directory", "-s", "print-images", "REGISTRY=r.example/x", "TAG=t1"]
    )
    assert result.returncode == 0, result.stderr
    built = (*IMAGES, BATCH_SPARK_IMAGE)
    assert result.stdout.split() == [f"r.example/x/{name}:t1" for name in built]
    base = render(K8S / "base")
    for name in IMAGES:  # tagged with the project's version (k8s/components/version)
        assert re.search(rf"^ +image: {name}:\S+$", base, re.M), name
    dev = run(["make", "--no-print-directory", "-s", "print-images", "TAG=t1"]).stdout.split()
    assert dev == [f"localhost/{name}:t1" for name in built]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_spark_application_runs_the_batch_spark_image_of_this_version(
    overlay: str, manifests: dict[str, list[dict[str, Any]]]
) -> None:
    """Tagged with the project's version like every image (`make render` swaps in its TAG), on
    the Spark the image installs, against the cluster (not a `local[*]` Spark in the driver)."""
    app = find(manifests[overlay], "SparkApplication", "product-classifier-batch-spark")
    version = find(manifests[overlay], "Job", "product-classifier-train")["metadata"]["labels"][
        "app.kubernetes.io/version"
    ]
    name, tag = app["spec"]["image"].rsplit(":", 1)
    assert name.rsplit("/", 1)[-1] == BATCH_SPARK_IMAGE and tag == version
    constraints = (K8S.parent / "constraints.txt").read_text(encoding="utf-8")
    pinned = re.search(r"^pyspark==(\S+)$", constraints, re.M)
    assert pinned and app["spec"]["sparkVersion"] == pinned.group(1)
    assert any(arg.startswith("--spark-master=k8s://") for arg in app["spec"]["arguments"])


def test_make_render_retags_the_batch_spark_image() -> None:
    makefile = (K8S.parent / "Makefile").read_text(encoding="utf-8")
    rule = re.search(r"product-classifier-\(([a-z|-]+)\)", makefile)
    assert rule and "batch-spark" in rule.group(1).split("|")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlays_run_the_project_images(
    overlay: str, manifests: dict[str, list[dict[str, Any]]]
) -> None:
    images = {
        container["image"].rsplit(":", 1)[0].rsplit("/", 1)[-1]
        for obj in manifests[overlay]
        if pod_spec(obj)
        for container in pod_spec(obj)["containers"]
    }
    assert set(IMAGES) <= images
    if overlay == "dev":
        dev = _serving_container(manifests["dev"])["image"]
        assert dev.startswith("localhost/product-classifier-serve:")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_mlflow_accepts_the_host_its_clients_use(
    overlay: str, manifests: dict[str, list[dict[str, Any]]]
) -> None:
    objects = manifests[overlay]
    mlflow = find(objects, "Deployment", "mlflow")["spec"]["template"]["spec"]["containers"][0]
    service = find(objects, "Service", "mlflow")
    port = service["spec"]["ports"][0]["port"]
    allowed = _env(mlflow)["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")
    assert f"mlflow:{port}" in allowed
    assert _env(_serving_container(objects))["MLFLOW_TRACKING_URI"] == f"http://mlflow:{port}"
    assert mlflow["readinessProbe"]["httpGet"]["path"] == "/health"


def _makefile_selectors() -> dict[str, str]:
    text = (K8S.parent / "Makefile").read_text(encoding="utf-8")
    return dict(re.findall(r"^SELECT_(\w+) := (.+)$", text, flags=re.M))


def _matches(selector: str, labels: dict[str, str]) -> bool:
    """kubectl's label selectors, in the three forms the Makefile uses."""
    if match := re.fullmatch(r"([\w./-]+) (in|notin) \(([^)]*)\)", selector):
        key, operator, values = match.groups()
        inside = labels.get(key) in {value.strip() for value in values.split(",")}
        return inside if operator == "in" else not inside
    key, _, value = selector.partition("=")
    return labels.get(key) == value


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_deploy_steps_apply_every_object_exactly_once(
    overlay: str, manifests: dict[str, list[dict[str, Any]]]
) -> None:
    selectors = _makefile_selectors()
    assert set(selectors) == {
        "PLATFORM",
        "TRAINING",
        "RETRAINING",
        "SERVING",
        "TUNING",
        "BATCH",
        "BATCH_SPARK",
    }
    steps: dict[str, set[str]] = {step: set() for step in selectors}
    for obj in manifests[overlay]:
        labels = obj["metadata"]["labels"]
        chosen = [step for step, selector in selectors.items() if _matches(selector, labels)]
        assert len(chosen) == 1, f"{obj['kind']}/{obj['metadata']['name']}: {chosen}"
        steps[chosen[0]].add(f"{obj['kind']}/{obj['metadata']['name']}")
    assert {
        "Namespace/product-classifier",
        "Deployment/mlflow",
        "StatefulSet/mlflow-postgresql",
    } <= steps["PLATFORM"]
    assert "Job/product-classifier-train" in steps["TRAINING"]
    assert {
        "Deployment/product-classifier",
        "HorizontalPodAutoscaler/product-classifier",
        "PodDisruptionBudget/product-classifier",
    } <= steps["SERVING"]
    has_cronjob = any(obj["kind"] == "CronJob" for obj in manifests[overlay])
    retraining = {
        "CronJob/product-classifier-retrain",
        "NetworkPolicy/product-classifier-retraining-prometheus",  # product-monitor asks it
    }
    assert steps["RETRAINING"] == (retraining if has_cronjob else set())
