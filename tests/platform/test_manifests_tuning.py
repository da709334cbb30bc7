"""The tuning component: W worker pods as an Indexed Job sharing the study in MLflow's PostgreSQL,
secured like training, and a final training Job from the best config; its ConfigMap holds options
and a search space that the real code accepts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.platform.kube import OVERLAYS, find
from training.config_files import make_config, read_config_file
from training.tuning.space import load_space

pytestmark = pytest.mark.platform


def _config_map(objects: list[dict[str, Any]]) -> dict[str, str]:
    maps = [
        obj
        for obj in objects
        if obj["kind"] == "ConfigMap"
        and obj["metadata"]["name"].startswith("product-classifier-tuning-")
    ]
    assert len(maps) == 1
    return maps[0]["data"]


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {item["name"]: item for item in container["env"]}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_workers_are_an_indexed_job_of_tune_workers_pods(
    overlay: str, manifests: dict[str, list[dict[str, Any]]]
) -> None:
    objects = manifests[overlay]
    job = find(objects, "Job", "product-classifier-tune")["spec"]
    workers = int(_config_map(objects)["TUNE_WORKERS"])
    assert job["completionMode"] == "Indexed"
    assert job["parallelism"] == job["completions"] == workers
    container = job["template"]["spec"]["containers"][0]
    assert container["command"] == ["product-tune"]
    assert "--role=worker" in container["args"]
    assert job["podFailurePolicy"]["rules"][0]["onExitCodes"]["values"] == [2, 3]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_tuning_pods_are_secured_like_training(
    overlay: str, manifests: dict[str, list[dict[str, Any]]]
) -> None:
    objects = manifests[overlay]
    training = find(objects, "Job", "product-classifier-train")["spec"]["template"]["spec"]
    for name in ("product-classifier-tune", "product-classifier-train-best"):
        pod = find(objects, "Job", name)["spec"]["template"]["spec"]
        assert pod["securityContext"] == training["securityContext"], name
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"] + pod.get("initContainers", []):
            expected = training["containers"][0]["securityContext"]
            assert container["securityContext"] == expected, (name, container["name"])
            assert {"cpu", "memory"} <= container["resources"]["limits"].keys()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_study_is_shared_through_postgresql_with_the_secret_password(
    overlay: str, manifests: dict[str, list[dict[str, Any]]]
) -> None:
    objects = manifests[overlay]
    storage = _config_map(objects)["TUNE_STORAGE"]
    assert storage.startswith("postgresql://mlflow@mlflow-postgresql:5432/")
    assert ":" not in storage.split("@")[0].removeprefix("postgresql://")  # no password inline
    mlflow = find(objects, "Deployment", "mlflow")["spec"]["template"]["spec"]["containers"][0]
    secret = _env(mlflow)["PGPASSWORD"]["valueFrom"]["secretKeyRef"]
    for name in ("product-classifier-tune", "product-classifier-train-best"):
        pod = find(objects, "Job", name)["spec"]["template"]["spec"]
        tuner = (pod.get("initContainers") or pod["containers"])[0]
        env = _env(tuner)
        assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"] == secret
        assert env["MLFLOW_TRACKING_URI"]["value"] == "http://mlflow:5000"
        assert "--storage=$(TUNE_STORAGE)" in tuner["args"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_final_job_trains_from_the_best_config_after_the_search(
    overlay: str, manifests: dict[str, list[dict[str, Any]]]
) -> None:
    pod = find(manifests[overlay], "Job", "product-classifier-train-best")["spec"]["template"]
    spec = pod["spec"]
    init, train = spec["initContainers"][0], spec["containers"][0]
    assert init["command"] == ["product-tune"]
    assert {"--role=best", "--output=/work/best.yaml"} <= set(init["args"])
    assert train["command"] == ["product-train"]
    assert train["args"] == ["--config", "/work/best.yaml"]
    shared = {m["name"] for m in init["volumeMounts"]} & {m["name"] for m in train["volumeMounts"]}
    assert "work" in shared
    # Same study options for the workers and the final step.
    workers = find(manifests[overlay], "Job", "product-classifier-tune")["spec"]["template"]
    worker_args = set(workers["spec"]["containers"][0]["args"]) - {"--role=worker"}
    assert worker_args <= set(init["args"])


def test_the_config_map_holds_options_and_a_space_the_code_accepts(
    manifests: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    data = _config_map(manifests[OVERLAYS[0]])
    options = tmp_path / "training.yaml"
    options.write_text(data["training.yaml"])
    base = make_config(read_config_file(options))
    space = tmp_path / "search-space.yaml"
    space.write_text(data["search-space.yaml"])
    assert load_space(space, base).root
