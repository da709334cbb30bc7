"""Helpers of the platform checks: rendering the overlays, finding objects, running tools.

A missing tool fails the test that needs it with the command that installs it: these checks are
part of `make test` and must never pass by skipping.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support import REPO

K8S = REPO / "k8s"
OVERLAYS = sorted(path.parent.name for path in (K8S / "overlays").glob("*/kustomization.yaml"))
TOOLS_BIN = REPO / ".venv-tools" / "bin"
# The oldest versions the docs promise: kubectl's kustomize renders k8s/ from 1.31 on (the
# Makefile checks it), and API servers accept every object from 1.29 on.
KUBECTL_MIN = "1.31"
KUBERNETES_MIN = "1.29"


def require(command: str, install_hint: str) -> str:
    """The path of `command`, or a test failure telling how to install it."""
    path = shutil.which(command)
    if path is None:
        pytest.fail(f"{command} not found on PATH; {install_hint}", pytrace=False)
    return path


def run(
    args: list[str], cwd: Path = REPO, timeout: float = 600, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run a command, capturing its output as text (never raises on a non-zero exit); in
    exactly the environment `env` when given, else in this process's."""
    return subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False, env=env
    )


def render(kustomization: Path) -> str:
    """`kubectl kustomize` of a directory, or a test failure with kubectl's message."""
    kubectl = require(
        "kubectl", f"install kubectl {KUBECTL_MIN} or newer (its kustomize renders k8s/)"
    )
    result = run([kubectl, "kustomize", str(kustomization)])
    if result.returncode != 0:
        pytest.fail(f"kubectl kustomize {kustomization} failed:\n{result.stderr}", pytrace=False)
    return result.stdout


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """The object of that kind and name; a test failure if the overlay has none."""
    for obj in objects:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    pytest.fail(f"no {kind} named {name}", pytrace=False)


def pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The pod spec of a workload (Deployment, StatefulSet, Job, CronJob), else None."""
    spec = obj.get("spec", {})
    if obj["kind"] == "CronJob":
        spec = spec.get("jobTemplate", {}).get("spec", {})
    template = spec.get("template")
    return template.get("spec") if template else None


def workloads(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [obj for obj in objects if pod_spec(obj) is not None]
