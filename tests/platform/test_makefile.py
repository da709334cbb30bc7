"""The Makefile's deploy path checks its preconditions before it builds anything: `make all-*`
with a missing tool, no registry, an unknown overlay or no cluster stops within seconds with one
line naming the variable or tool, before the first image build (which takes minutes).

make runs for real, on a PATH made for each test: the tools the Makefile needs from the system,
plus stand-ins where the real one cannot run here (a container engine that only records what it
was asked, kind, a kubectl that reports its version or reaches a cluster)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.platform.kube import KUBECTL_MIN, KUBERNETES_MIN, require, run
from tests.support import REPO, refused_port

pytestmark = pytest.mark.platform

ALL_TARGETS = ("all-training", "all-serving", "all-tuning")
SYSTEM_TOOLS = ("sed", "head", "grep", "mkdir", "git", "date", "rm")
# Far below one image build; the checks themselves take well under a second.
FAST_SECONDS = 15


def _stub(folder: Path, name: str, script: str) -> Path:
    path = folder / name
    path.write_text("#!/bin/sh\n" + script, encoding="utf-8")
    path.chmod(0o755)
    return path


def _bin(tmp_path: Path, kubectl: bool = True) -> Path:
    """A folder for PATH with the system tools the Makefile runs, the real kubectl if asked,
    and nothing else (no kind, docker or podman, whatever this machine has)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    tools = SYSTEM_TOOLS + (("kubectl",) if kubectl else ())
    for tool in tools:
        (folder / tool).symlink_to(require(tool, f"install {tool}"))
    return folder


def _engine(tmp_path: Path, build_exit: int = 0) -> tuple[Path, Path]:
    """A container engine that writes each call to a log (and fails `build` if asked)."""
    log = tmp_path / "engine.log"
    script = f'echo "$*" >> {log}\n[ "$1" != build ] || exit {build_exit}\n'
    return _stub(tmp_path, "engine", script), log


def _make(
    tmp_path: Path, path: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[int, str, float]:
    """`make ARGS` on that PATH; its exit code, its stderr and how long it took."""
    make = require("make", "install GNU make")
    environment = {
        "HOME": str(tmp_path),
        "PATH": str(path),
        # Not this machine's kubeconfig: a test that gets to the cluster check brings its own.
        "KUBECONFIG": str(tmp_path / "no-kubeconfig"),
    } | (env or {})
    started = time.monotonic()
    result = run([make, "--no-print-directory", *args], timeout=120, env=environment)
    return result.returncode, result.stderr, time.monotonic() - started


def _kubeconfig(tmp_path: Path, port: int) -> Path:
    """A kubeconfig whose current context is a cluster on a loopback port that refuses."""
    path = tmp_path / "kubeconfig"
    path.write_text(
        f"""apiVersion: v1
kind: Config
clusters: [{{name: gone, cluster: {{server: "https://127.0.0.1:{port}"}}}}]
users: [{{name: gone, user: {{token: x}}}}]
contexts: [{{name: gone, context: {{cluster: gone, user: gone}}}}]
current-context: gone
""",
        encoding="utf-8",
    )
    return path


def _rendered(tmp_path: Path) -> str:
    """Where `render` writes, outside the checkout."""
    return f"K8S_RENDERED={tmp_path / 'rendered.yaml'}"


@pytest.mark.parametrize("target", ALL_TARGETS)
def test_load_kind_without_kind_stops_before_building(target: str, tmp_path: Path) -> None:
    engine, log = _engine(tmp_path)
    code, stderr, seconds = _make(
        tmp_path, _bin(tmp_path), target, "LOAD=kind", f"CONTAINER_TOOL={engine}"
    )
    assert code != 0
    assert "error: LOAD=kind but kind is not installed" in stderr
    assert "unset LOAD and set REGISTRY" in stderr
    assert seconds < FAST_SECONDS
    assert not log.exists(), log.read_text()


@pytest.mark.parametrize("target", ALL_TARGETS)
def test_no_registry_and_no_load_stops_before_building(target: str, tmp_path: Path) -> None:
    engine, log = _engine(tmp_path)
    code, stderr, seconds = _make(tmp_path, _bin(tmp_path), target, f"CONTAINER_TOOL={engine}")
    assert code != 0
    assert "error: REGISTRY is localhost: set REGISTRY=" in stderr
    assert seconds < FAST_SECONDS and not log.exists()


def test_an_unreachable_cluster_stops_before_building_or_pushing(tmp_path: Path) -> None:
    engine, log = _engine(tmp_path)
    with refused_port() as port:
        code, stderr, seconds = _make(
            tmp_path,
            _bin(tmp_path),
            "all-training",
            "REGISTRY=r.example/ml",
            f"CONTAINER_TOOL={engine}",
            _rendered(tmp_path),
            env={"KUBECONFIG": str(_kubeconfig(tmp_path, port))},
        )
    assert code != 0
    assert "error: no Kubernetes cluster reachable through kubectl (current context: gone)" in (
        stderr
    )
    assert seconds < FAST_SECONDS
    assert not log.exists(), log.read_text()  # neither built nor pushed


def test_without_kubectl_nothing_is_built(tmp_path: Path) -> None:
    engine, log = _engine(tmp_path)
    code, stderr, _ = _make(
        tmp_path,
        _bin(tmp_path, kubectl=False),
        "all-serving",
        "REGISTRY=r.example/ml",
        f"CONTAINER_TOOL={engine}",
    )
    assert code != 0
    assert "error: kubectl not found; install kubectl 1.31 or newer" in stderr
    assert not log.exists()


def test_a_kubectl_too_old_to_render_the_overlays_is_named(tmp_path: Path) -> None:
    """kubectl 1.30's kustomize fails on k8s/ with "unable to parse SM or JSON patch"."""
    path = _bin(tmp_path, kubectl=False)
    _stub(path, "kubectl", 'echo \'{"clientVersion": {"major": "1", "minor": "30"}}\'\n')
    code, stderr, _ = _make(tmp_path, path, "render", _rendered(tmp_path))
    assert code != 0
    assert (
        "error: kubectl 1.30 is too old to render k8s/ (its kustomize); install kubectl 1.31"
        in (stderr)
    )


def test_an_unknown_overlay_is_named_with_the_ones_there_are(tmp_path: Path) -> None:
    engine, log = _engine(tmp_path)
    code, stderr, _ = _make(
        tmp_path,
        _bin(tmp_path),
        "all-training",
        "OVERLAY=prd",
        "REGISTRY=r.example/ml",
        f"CONTAINER_TOOL={engine}",
    )
    assert code != 0
    assert "error: OVERLAY=prd: no such overlay; use one of: dev prod" in stderr
    assert not log.exists()


def test_a_missing_container_tool_is_named(tmp_path: Path) -> None:
    code, stderr, _ = _make(tmp_path, _bin(tmp_path), "all-serving", "REGISTRY=r.example/ml")
    assert code != 0
    assert "error: podman not found; install docker or podman, or set CONTAINER_TOOL" in stderr


def test_load_kind_without_the_kind_cluster_stops_before_building(tmp_path: Path) -> None:
    path = _bin(tmp_path)
    _stub(path, "kind", '[ "$1 $2" = "get clusters" ] && echo other\n')
    engine, log = _engine(tmp_path)
    code, stderr, _ = _make(tmp_path, path, "all-serving", "LOAD=kind", f"CONTAINER_TOOL={engine}")
    assert code != 0
    assert "error: kind has no cluster named kind; create it (kind create cluster" in stderr
    assert not log.exists()


def test_with_every_precondition_met_the_build_starts(tmp_path: Path) -> None:
    """A kind cluster and a cluster that answers: the checks pass, the overlay is rendered, and
    only then the first image is built (the engine fails it, so make stops there)."""
    path = _bin(tmp_path, kubectl=False)
    real = require("kubectl", "install kubectl 1.31 or newer")
    _stub(path, "kubectl", f'[ "$1" = cluster-info ] && exit 0\nexec {real} "$@"\n')
    _stub(path, "kind", '[ "$1 $2" = "get clusters" ] && echo kind\n')
    engine, log = _engine(tmp_path, build_exit=1)
    code, stderr, _ = _make(
        tmp_path, path, "all-training", "LOAD=kind", f"CONTAINER_TOOL={engine}", _rendered(tmp_path)
    )
    assert code != 0 and "error:" not in stderr, stderr
    assert (tmp_path / "rendered.yaml").read_text(encoding="utf-8").count("kind: Job") >= 1
    calls = log.read_text(encoding="utf-8").splitlines()
    assert len(calls) == 1 and calls[0].startswith("build ") and "Dockerfile.train" in calls[0]


def test_dry_run_lists_the_checks_before_the_builds() -> None:
    result = run(["make", "--no-print-directory", "-n", "all-training", "REGISTRY=r.example/ml"])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    first_build = next(i for i, line in enumerate(lines) if " build " in line)
    for check in ("REGISTRY is localhost", "kubectl version --client", "cluster-info"):
        assert any(check in line for line in lines[:first_build]), check


def test_the_docs_promise_the_versions_the_checks_use() -> None:
    """kubectl 1.30 fails on k8s/ (test_manifests checks the API servers' side)."""
    minor = re.search(r"^KUBECTL_MIN_MINOR := (\d+)$", (REPO / "Makefile").read_text(), re.M)
    assert minor and f"1.{minor.group(1)}" == KUBECTL_MIN
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    deploying = readme.split("\n## Deploying to Kubernetes\n", 1)[1].split("\n## ", 1)[0]
    platform = (REPO / "docs" / "platform.md").read_text(encoding="utf-8")
    for text in (deploying, platform):
        words = " ".join(text.split())
        assert f"`kubectl` {KUBECTL_MIN} or newer" in words
        assert f"Kubernetes {KUBERNETES_MIN} or newer" in words
