"""The Dockerfiles: hadolint-clean, multi-stage on a slim base chosen by a build argument,
dependencies in a layer before the source, a non-root final stage with OCI labels, and a serving
image with only the serving dependencies. The Spark batch image is built on the training image
instead, and adds only a Java runtime and PySpark."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from tests.platform.kube import run
from tests.support import REPO

pytestmark = pytest.mark.platform

DOCKERFILES = ("Dockerfile.train", "Dockerfile.serve", "Dockerfile.mlflow")
SPARK_DOCKERFILE = "Dockerfile.batch-spark"
ALL_DOCKERFILES = (*DOCKERFILES, SPARK_DOCKERFILE)
OCI_LABELS = ("title", "description", "version", "revision", "created", "licenses", "source")


def _instructions(name: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = (REPO / name).read_text(encoding="utf-8")
    text = re.sub(r"^\s*#.*\n", "", text, flags=re.M).replace("\\\n", " ")
    pairs = []
    for line in text.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def _final_stage(name: str) -> list[tuple[str, str]]:
    instructions = _instructions(name)
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def test_hadolint_passes(tools_bin: Path) -> None:
    result = run([str(tools_bin / "hadolint"), *ALL_DOCKERFILES])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", DOCKERFILES)
def test_multi_stage_on_a_slim_base_chosen_by_build_argument(name: str) -> None:
    instructions = _instructions(name)
    assert instructions[0] == ("ARG", "PYTHON_IMAGE=python:3.11-slim-bookworm")
    froms = [rest for keyword, rest in instructions if keyword == "FROM"]
    assert len(froms) >= 2
    assert all(rest.startswith("${PYTHON_IMAGE}") for rest in froms)


@pytest.mark.parametrize("name", DOCKERFILES)
def test_final_stage_runs_as_a_numeric_non_root_user_without_build_tools(name: str) -> None:
    final = _final_stage(name)
    users = [rest for keyword, rest in final if keyword == "USER"]
    assert users and users[-1].split(":")[0].isdigit() and users[-1].split(":")[0] != "0"
    runs = " ".join(rest for keyword, rest in final if keyword == "RUN")
    assert "pip install" not in runs and "apt-get" not in runs
    assert ("COPY", "--from=builder /opt/venv /opt/venv") in final


@pytest.mark.parametrize("name", ALL_DOCKERFILES)
def test_oci_labels(name: str) -> None:
    labels = " ".join(rest for keyword, rest in _final_stage(name) if keyword == "LABEL")
    for label in OCI_LABELS:
        assert f"org.opencontainers.image.{label}=" in labels, label


@pytest.mark.parametrize("name", ALL_DOCKERFILES)
def test_pip_can_use_a_proxy_ca_given_as_a_build_secret(name: str) -> None:
    for keyword, rest in _instructions(name):
        if keyword == "RUN" and "pip install" in rest:
            assert "--mount=type=secret,id=ca,required=false" in rest
            assert "PIP_CERT=/run/secrets/ca" in rest


@pytest.mark.parametrize(
    ("name", "extra", "source"),
    [("Dockerfile.train", "train", "product_model/"), ("Dockerfile.serve", "serve", "serving/")],
)
def test_dependencies_are_installed_before_the_source_is_copied(
    name: str, extra: str, source: str
) -> None:
    instructions = _instructions(name)
    install = next(
        i
        for i, (k, rest) in enumerate(instructions)
        if k == "RUN" and f"project_requirements.py {extra}" in rest
    )
    assert "-c constraints.txt" in instructions[install][1]
    copy_source = next(
        i for i, (k, rest) in enumerate(instructions) if k == "COPY" and rest.startswith(source)
    )
    assert install < copy_source


def test_serving_image_carries_neither_training_nor_the_model_package() -> None:
    """A registered model brings its own `product_model`; the server needs only `serving/`."""
    copied = [rest for keyword, rest in _instructions("Dockerfile.serve") if keyword == "COPY"]
    sources = " ".join(rest.split()[0] for rest in copied if not rest.startswith("--from"))
    assert "serving/" in sources
    assert "training" not in sources and "product_model" not in sources


def test_serving_image_has_a_healthcheck_on_healthz() -> None:
    final = _final_stage("Dockerfile.serve")
    healthchecks = [rest for keyword, rest in final if keyword == "HEALTHCHECK"]
    assert len(healthchecks) == 1 and "/healthz" in healthchecks[0]
    assert "curl" not in healthchecks[0] and "python" in healthchecks[0]


def test_serving_image_installs_only_the_serving_dependencies() -> None:
    sys.path.insert(0, str(REPO / "scripts" / "containers"))
    try:
        from project_requirements import project_requirements
    finally:
        sys.path.pop(0)
    names = {
        re.split(r"[\[<>=!~ ;]", requirement, maxsplit=1)[0].lower()
        for requirement in project_requirements(REPO / "pyproject.toml", ["serve"])
    }
    assert {"mlflow-skinny", "fastapi", "uvicorn", "prometheus-client", "scikit-learn"} <= names
    assert not names & {"mlflow", "seaborn", "matplotlib", "pyarrow"}


def test_build_context_is_an_allow_list() -> None:
    lines = (REPO / ".dockerignore").read_text(encoding="utf-8").split("\n")
    patterns = [line for line in lines if line and not line.startswith("#")]
    assert patterns[0] == "*"
    allowed = {pattern[1:] for pattern in patterns if pattern.startswith("!")}
    for name in ALL_DOCKERFILES:
        for keyword, rest in _instructions(name):
            if keyword == "COPY" and not rest.startswith("--from"):
                for source in rest.split()[:-1]:
                    assert source.rstrip("/") in allowed, f"{name}: {source} is not in the context"


def test_spark_image_is_built_on_the_training_image_chosen_by_build_argument() -> None:
    instructions = _instructions(SPARK_DOCKERFILE)
    assert instructions[0][0] == "ARG" and instructions[0][1].startswith("TRAIN_IMAGE=")
    froms = [rest for keyword, rest in instructions if keyword == "FROM"]
    assert len(froms) == 2 and all(rest.startswith("${TRAIN_IMAGE}") for rest in froms)
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert "--build-arg TRAIN_IMAGE=$(IMAGE_TRAIN):$(TAG)" in makefile


def test_spark_image_adds_only_java_and_pyspark_and_runs_as_non_root() -> None:
    final = _final_stage(SPARK_DOCKERFILE)
    users = [rest for keyword, rest in final if keyword == "USER"]
    assert users[-1] == "10001:10001"
    runs = " ".join(rest for keyword, rest in final if keyword == "RUN")
    assert "pip install" not in runs  # PySpark comes from the builder stage, pinned
    assert re.search(r"--no-install-recommends +default-jre-headless", runs)
    assert "rm -rf /var/lib/apt/lists/*" in runs
    copies = [rest for keyword, rest in final if keyword == "COPY"]
    assert "--from=builder /tmp/pyspark /opt/pyspark" in copies
    assert not any("/opt/venv" in rest.split()[-1] for rest in copies)  # no second venv layer
    builder = _instructions(SPARK_DOCKERFILE)[: len(_instructions(SPARK_DOCKERFILE)) - len(final)]
    install = next(rest for keyword, rest in builder if keyword == "RUN" and "pip" in rest)
    assert "project_requirements.py spark" in install and "-c constraints.txt" in install


def test_spark_image_entrypoint_starts_drivers_executors_and_commands() -> None:
    final = _final_stage(SPARK_DOCKERFILE)
    assert ("ENTRYPOINT", '["/opt/spark-entrypoint.sh"]') in final
    script = (REPO / "scripts" / "containers" / "spark-entrypoint.sh").read_text(encoding="utf-8")
    assert "driver)" in script and "executor)" in script and 'exec "$@"' in script
    assert "KubernetesExecutorBackend" in script
    syntax = run(["bash", "-n", str(REPO / "scripts" / "containers" / "spark-entrypoint.sh")])
    assert syntax.returncode == 0, syntax.stderr
