"""The version is defined once, in pyproject.toml; the app and the image report that one."""

from __future__ import annotations

import re
import tomllib

import pytest

from serving.api import create_app
from serving.settings import Settings
from serving.version import app_version
from tests.support import REPO

PROJECT_VERSION = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))["project"]["version"]


def test_installed_project_reports_the_pyproject_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("APP_VERSION", raising=False)
    assert app_version() == PROJECT_VERSION


def test_the_image_version_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_VERSION", "9.8.7")
    assert app_version() == "9.8.7"
    assert create_app(Settings(model_name="m")).version == "9.8.7"


def test_app_reports_the_project_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("APP_VERSION", raising=False)
    assert create_app(Settings(model_name="m")).version == PROJECT_VERSION


def test_serving_image_bakes_in_the_build_version() -> None:
    dockerfile = (REPO / "Dockerfile.serve").read_text("utf-8")
    assert re.search(r'^ENV APP_VERSION="\$\{VERSION\}"$', dockerfile, re.M)
    makefile = (REPO / "Makefile").read_text("utf-8")
    assert "--build-arg VERSION=$(PROJECT_VERSION)" in makefile


def test_kubernetes_manifests_state_the_version_once() -> None:
    files = [p for p in (REPO / "k8s").rglob("*.yaml") if PROJECT_VERSION in p.read_text("utf-8")]
    assert [p.relative_to(REPO).as_posix() for p in files] == [
        "k8s/components/version/kustomization.yaml"
    ]
