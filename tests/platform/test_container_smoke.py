"""Container smoke test (`make smoke`): build the training and serving images with podman, run
the training image as the Kubernetes Job runs it against an MLflow server on loopback, then the
serving image as the Deployment runs it, and talk to it over HTTP.

Both containers run as the manifests' pods do: UID 10001, read-only root filesystem with a
writable /tmp, every capability dropped, no privilege escalation. They use the host's network
to reach the loopback MLflow server. The base image is built locally with debootstrap
(scripts/containers/base-image.sh) where no registry is reachable; the image sizes and timings
land in .smoke/results.json for the README.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.platform.kube import K8S, find, render, require, run
from tests.support import REPO, free_port

# Building both images cold takes about 6 minutes here: more than pytest-timeout's default.
pytestmark = [pytest.mark.container, pytest.mark.timeout(2400)]

BASE_IMAGE = os.environ.get("SMOKE_BASE_IMAGE", "localhost/python:3.11-slim-bookworm")
TAG = "smoke"
TRAIN_IMAGE = f"localhost/product-classifier-train:{TAG}"
SERVE_IMAGE = f"localhost/product-classifier-serve:{TAG}"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
RESULTS = REPO / ".smoke" / "results.json"
# What this machine's podman needs (no systemd, tight default rlimits); harmless elsewhere.
PODMAN_GLOBAL = ["--runtime", "runc", "--cgroup-manager", "cgroupfs"]
ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"]
# The pods' securityContext, in podman's words.
RESTRICTED = [
    "--user",
    "10001:10001",
    "--read-only",
    "--tmpfs",
    "/tmp:rw,mode=1777,size=1g",
    "--cap-drop",
    "ALL",
    "--security-opt",
    "no-new-privileges",
]
# Fewer trees than the Job's config: this checks the wiring, not the model.
SMOKE_TRAIN_OVERRIDES = ["--n-estimators", "40"]
PRODUCT = {
    "title": "Python library for parsing YAML",
    "description": "A fast YAML parser and emitter for Python, with full Unicode support.",
}

timings: dict[str, float] = {}


def podman(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return run(
        [require("podman", "apt-get install podman runc"), *PODMAN_GLOBAL, *args], timeout=timeout
    )


def container_logs(name: str) -> str:
    """What the container wrote to stdout and stderr (the app logs JSON lines to stderr)."""
    result = podman("logs", name)
    return result.stdout + result.stderr


def _dev_objects() -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(render(K8S / "overlays" / "dev")) if doc]


@pytest.fixture(scope="module")
def images() -> dict[str, str]:
    """Both images, built by the Makefile's own targets on the local base image."""
    require("podman", "apt-get install podman runc")
    started = time.monotonic()
    base = run(["scripts/containers/base-image.sh", BASE_IMAGE], timeout=1200)
    assert base.returncode == 0, f"base image:\n{base.stdout}\n{base.stderr}"
    timings["base_image_seconds"] = round(time.monotonic() - started, 1)
    for name in ("train", "serve"):
        started = time.monotonic()
        build = run(
            [
                "make",
                "--no-print-directory",
                f"image-{name}",
                f"TAG={TAG}",
                "REGISTRY=localhost",
                f"CONTAINER_TOOL=podman {shlex.join(PODMAN_GLOBAL)}",
                f"PYTHON_IMAGE={BASE_IMAGE}",
                f"CA_BUNDLE={CA_BUNDLE if CA_BUNDLE.exists() else ''}",
                f"BUILD_OPTS={shlex.join(ULIMITS)}",
            ],
            timeout=2400,
        )
        assert build.returncode == 0, f"make image-{name}:\n{build.stdout[-3000:]}\n{build.stderr}"
        timings[f"build_{name}_seconds"] = round(time.monotonic() - started, 1)
    return {"train": TRAIN_IMAGE, "serve": SERVE_IMAGE}


@pytest.fixture(scope="module")
def mlflow_url(tracking_server: str) -> str:
    """The session's `mlflow server` on loopback (tests/conftest.py); containers reach it through
    the host network."""
    return tracking_server


@pytest.fixture(scope="module")
def training_run(images: dict[str, str], mlflow_url: str) -> subprocess.CompletedProcess:
    """The training image run with the Job's command, args and config file."""
    job = find(_dev_objects(), "Job", "product-classifier-train")
    container = job["spec"]["template"]["spec"]["containers"][0]
    config_dir = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}["config"]
    config = K8S / "base" / "training" / "training.yaml"
    started = time.monotonic()
    result = podman(
        "run",
        "--rm",
        "--network",
        "host",
        *ULIMITS,
        *RESTRICTED,
        "--env",
        f"MLFLOW_TRACKING_URI={mlflow_url}",
        "--volume",
        f"{config}:{config_dir}/{config.name}:ro",
        "--entrypoint",
        container["command"][0],
        images["train"],
        *container["args"],
        *SMOKE_TRAIN_OVERRIDES,
        timeout=1800,
    )
    timings["training_run_seconds"] = round(time.monotonic() - started, 1)
    return result


@pytest.fixture(scope="module")
def server(
    images: dict[str, str], mlflow_url: str, training_run: subprocess.CompletedProcess
) -> Iterator[tuple[str, str]]:
    """The serving image with the Deployment's environment; yields (URL, container name)."""
    assert training_run.returncode == 0, training_run.stdout + training_run.stderr
    deployment = find(_dev_objects(), "Deployment", "product-classifier")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    port = free_port()
    env = {item["name"]: item["value"] for item in container["env"]}
    env.update(MLFLOW_TRACKING_URI=mlflow_url, PORT=str(port))
    name = f"product-classifier-smoke-{os.getpid()}"
    started = time.monotonic()
    result = podman(
        "run",
        "--detach",
        "--name",
        name,
        "--network",
        "host",
        *ULIMITS,
        *RESTRICTED,
        *[arg for key, value in env.items() for arg in ("--env", f"{key}={value}")],
        "--entrypoint",
        container["command"][0],
        images["serve"],
    )
    assert result.returncode == 0, result.stderr
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_ready(url, name, timeout=240)
        timings["serving_ready_seconds"] = round(time.monotonic() - started, 1)
        yield url, name
    finally:
        logs = container_logs(name)
        podman("rm", "--force", "--time", "5", name)
        (REPO / ".smoke").mkdir(exist_ok=True)
        (REPO / ".smoke" / "serve.log").write_text(logs, encoding="utf-8")


def _wait_until_ready(url: str, name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = podman("inspect", "--format", "{{.State.Running}}", name).stdout.strip()
        if state != "true":
            pytest.fail(f"serving container stopped:\n{container_logs(name)[-4000:]}")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=3) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1)
    pytest.fail(f"/readyz not 200 within {timeout}s:\n{container_logs(name)[-4000:]}")


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read().decode()


def test_training_image_registers_a_champion(training_run: subprocess.CompletedProcess) -> None:
    output = training_run.stdout + training_run.stderr
    assert training_run.returncode == 0, output[-4000:]
    assert "training summary" in training_run.stdout
    assert "promoted:        yes" in training_run.stdout, training_run.stdout


def test_serving_predicts_a_label(server: tuple[str, str]) -> None:
    url, _ = server
    request = urllib.request.Request(
        f"{url}/v1/predict",
        data=json.dumps({"products": [PRODUCT]}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.loads(response.read())
    assert response.status == 200
    prediction = body["predictions"][0]
    assert prediction["label"] and 0 < prediction["probability"] <= 1
    assert body["model_name"] == "product-classifier" and body["model_version"] == "1"


def test_liveness_and_metrics(server: tuple[str, str]) -> None:
    url, _ = server
    assert _get(f"{url}/healthz")[0] == 200
    status, text = _get(f"{url}/metrics")
    assert status == 200
    families = {family.name: family for family in text_string_to_metric_families(text)}
    assert {
        "http_requests",
        "http_request_duration_seconds",
        "predictions",
        "model_info",
        "model_load_failures",
    } <= families.keys()
    (info,) = families["model_info"].samples
    assert info.labels == {"name": "product-classifier", "version": "1", "alias": "champion"}


def test_image_healthcheck_passes(server: tuple[str, str]) -> None:
    _, name = server
    result = podman("healthcheck", "run", name)
    assert result.returncode == 0, result.stdout + result.stderr


def test_sigterm_drains_and_exits_cleanly(server: tuple[str, str]) -> None:
    _, name = server
    started = time.monotonic()
    stop = podman("stop", "--time", "40", name)
    assert stop.returncode == 0, stop.stderr
    assert time.monotonic() - started < 30, "did not stop within SHUTDOWN_TIMEOUT_SECONDS"
    code = podman("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
    assert code == "0", container_logs(name)[-3000:]


def test_images_run_as_non_root_and_serving_carries_no_training_stack(
    images: dict[str, str],
) -> None:
    for image in images.values():
        user = podman("image", "inspect", "--format", "{{.Config.User}}", image).stdout.strip()
        assert user == "10001:10001", image
    check = podman(
        "run",
        "--rm",
        *ULIMITS,
        *RESTRICTED,
        "--entrypoint",
        "python",
        images["serve"],
        "-c",
        "import importlib.metadata as m, importlib.util as u\n"
        "present = [n for n in ('mlflow', 'seaborn', 'matplotlib', 'pyarrow') if u.find_spec(n)"
        " and n != 'mlflow' or n == 'mlflow' and any(d.metadata['Name'] == 'mlflow'"
        " for d in m.distributions())]\n"
        "assert not present, present",
    )
    assert check.returncode == 0, check.stderr


def test_record_sizes_and_timings(images: dict[str, str]) -> None:
    sizes = {}
    for name, image in images.items():
        size = podman("image", "inspect", "--format", "{{.Size}}", image).stdout.strip()
        sizes[f"{name}_image_mb"] = round(int(size) / 1e6)
    assert sizes["serve_image_mb"] < sizes["train_image_mb"]
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({**sizes, **timings}, indent=2) + "\n", encoding="utf-8")
