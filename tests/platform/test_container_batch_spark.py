"""The Spark batch image (`make smoke-batch-spark`, not part of `make smoke`: building it adds a
Java runtime and a 456 MB PySpark download, several minutes on top of the smoke test).

Built by the Makefile's targets on the training image, as the smoke test builds its images; or,
with SMOKE_BATCH_SPARK_IMAGE=NAME:TAG, an image built before is checked instead. The image then
runs `product-classify --engine spark` (local[2]) as the pods run, non-root on a read-only root
filesystem, against the session's tracking server on loopback, and must label every product of
the bundled sample as the local engine on this machine does.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from tests.platform.kube import run
from tests.platform.test_container_smoke import (
    BASE_IMAGE,
    CA_BUNDLE,
    PODMAN_GLOBAL,
    RESTRICTED,
    ULIMITS,
    podman,
)
from tests.support import REPO, train_tiny

pytestmark = [pytest.mark.container, pytest.mark.spark_image, pytest.mark.timeout(3600)]

TAG = "smoke"
SAMPLE = "/opt/venv/lib/python3.11/site-packages/training/data/sample_catalog.jsonl.gz"


def make_image(name: str) -> None:
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
        timeout=3000,
    )
    assert build.returncode == 0, f"make image-{name}:\n{build.stdout[-3000:]}\n{build.stderr}"


@pytest.fixture(scope="module")
def image() -> str:
    given = os.environ.get("SMOKE_BATCH_SPARK_IMAGE")
    if given:
        return given
    base = run(["scripts/containers/base-image.sh", BASE_IMAGE], timeout=1200)
    assert base.returncode == 0, f"base image:\n{base.stdout}\n{base.stderr}"
    make_image("train")
    make_image("batch-spark")
    return f"localhost/product-classifier-batch-spark:{TAG}"


@pytest.fixture(scope="module")
def model(tracking_server: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    train_tiny(tracking_server, "batch-spark-smoke", tmp_path_factory.mktemp("model"))
    return "models:/batch-spark-smoke@champion"


def classify_in_image(
    image: str, tracking_uri: str, model: str, output: Path
) -> subprocess.CompletedProcess:
    output.mkdir(mode=0o777)
    output.chmod(0o777)  # the container's user (10001) writes here
    return podman(
        "run",
        "--rm",
        "--network",
        "host",
        *ULIMITS,
        *RESTRICTED,
        "--env",
        f"MLFLOW_TRACKING_URI={tracking_uri}",
        "--volume",
        f"{output}:/out:rw",
        image,
        "product-classify",
        "--engine",
        "spark",
        "--spark-master",
        "local[2]",
        "--model",
        model,
        "--data",
        SAMPLE,
        "--output",
        "/out/labels.parquet",
        "--no-progress",
        timeout=1800,
    )


def test_spark_engine_in_the_image_labels_like_the_local_engine(
    image: str, model: str, tracking_server: str, tmp_path: Path
) -> None:
    result = classify_in_image(image, tracking_server, model, tmp_path / "out")
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    spark = pd.read_parquet(tmp_path / "out" / "labels.parquet")
    local_output = tmp_path / "local.parquet"
    local = run(
        [
            str(REPO / ".venv" / "bin" / "product-classify"),
            "--model",
            model,
            "--tracking-uri",
            tracking_server,
            "--data",
            str(REPO / "training" / "data" / "sample_catalog.jsonl.gz"),
            "--output",
            str(local_output),
            "--no-progress",
        ],
        timeout=900,
    )
    assert local.returncode == 0, local.stderr[-3000:]
    expected = pd.read_parquet(local_output)
    assert len(spark) == len(expected) > 6000
    merged = expected.merge(spark, on="product_id", suffixes=("_local", "_spark"))
    assert len(merged) == len(expected)
    assert (merged["label_local"] == merged["label_spark"]).all()


def test_image_runs_as_non_root_with_java_and_the_spark_entrypoint(image: str) -> None:
    user = podman("image", "inspect", "--format", "{{.Config.User}}", image).stdout.strip()
    assert user == "10001:10001"
    java = podman("run", "--rm", *ULIMITS, *RESTRICTED, image, "java", "-version")
    assert java.returncode == 0 and "17." in java.stderr, java.stderr
    usage = podman("run", "--rm", *ULIMITS, *RESTRICTED, image, "")
    assert usage.returncode == 2 and "driver/executor" in usage.stderr
