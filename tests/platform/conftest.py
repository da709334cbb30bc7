"""Fixtures of the platform checks: rendered overlays, the tools venv, external commands.

A missing tool fails the test that needs it with the command that installs it: these checks are
part of `make test` and must never pass by skipping.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.platform.kube import K8S, OVERLAYS, TOOLS_BIN, render, require, run


@pytest.fixture(scope="session")
def tools_bin() -> Path:
    """.venv-tools/bin with checkov, kubernetes-validate and hadolint (`make tools`)."""
    make = require("make", "install GNU make")
    result = run([make, "--no-print-directory", "tools"], timeout=1200)
    if result.returncode != 0:
        pytest.fail(f"`make tools` failed:\n{result.stdout}\n{result.stderr}", pytrace=False)
    return TOOLS_BIN


@pytest.fixture(scope="session")
def rendered_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each overlay rendered to a file, by overlay name."""
    directory = tmp_path_factory.mktemp("rendered")
    files = {}
    for overlay in OVERLAYS:
        path = directory / f"{overlay}.yaml"
        path.write_text(render(K8S / "overlays" / overlay), encoding="utf-8")
        files[overlay] = path
    return files


@pytest.fixture(scope="session")
def manifests(rendered_files: dict[str, Path]) -> dict[str, list[dict[str, Any]]]:
    """Each overlay's objects, parsed, by overlay name."""
    return {
        overlay: [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]
        for overlay, path in rendered_files.items()
    }
