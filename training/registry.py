"""The MLflow model: logging the fitted pipeline as a self-contained pyfunc, registering it, and
moving the aliases.

The logged model carries the whole `product_model` package (`code_paths`), its input contract
(metadata and signature) and its split definition, so serving, batch scoring and a later gate need
nothing from this project to use it.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from importlib import metadata as package_metadata
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature, infer_signature, validate_schema
from mlflow.tracking import MlflowClient
from mlflow.types.schema import AnyType, ColSpec, Schema, TensorSpec

import product_model
from product_model.contract import InputContract
from product_model.pyfunc import (
    DEFAULT_TOP_K,
    METADATA_ARTIFACT,
    PIPELINE_ARTIFACT,
    PIPELINE_FILE,
    ProductClassifierModel,
    save_pipeline,
)
from training.errors import TrackingRefusedError, TrainingError
from training.retries import DEFAULT_POLICY, RetryPolicy

CHAMPION = "champion"
CHALLENGER = "challenger"
MODEL_ARTIFACT = "model"
SERVING_REQUIREMENTS = (
    "mlflow-skinny",
    "scikit-learn",
    "imbalanced-learn",
    "nltk",
    "numpy",
    "scipy",
    "pandas",
    "joblib",
    "numba",  # the compact forest's walk (compiled in memory at load)
    "regex",  # the text cleaner's tokenizer
)
_COLUMN_TYPES: dict[str, Any] = {"string": "string", "number": "double"}
EXAMPLE_MISMATCH = "Input example does not match the model signature."


def input_signature(
    contract: InputContract, example: pd.DataFrame, output: pd.DataFrame
) -> ModelSignature:
    """One optional column per contract field (catalog records miss fields all the time): strings
    and numbers typed, fields that may be lists or objects typed Any."""
    columns: list[ColSpec | TensorSpec] = [
        ColSpec(_COLUMN_TYPES.get(f.type, AnyType()), f.name, required=False)
        for f in contract.fields
    ]
    inferred = infer_signature(example, output, params={"top_k": DEFAULT_TOP_K})
    return ModelSignature(inputs=Schema(columns), outputs=inferred.outputs, params=inferred.params)


def copy_model_code(target: Path) -> Path:
    """The whole `product_model` package, which the saved model imports and nothing else."""
    package = Path(product_model.__file__).parent
    code = target / "product_model"
    shutil.copytree(package, code, ignore=shutil.ignore_patterns("__pycache__", "*.py[co]"))
    return code


def pinned(names: tuple[str, ...]) -> list[str]:
    """`name==installed version` for each package (just the name when it is not installed)."""
    pins = []
    for name in names:
        try:
            pins.append(f"{name}=={package_metadata.version(name)}")
        except package_metadata.PackageNotFoundError:
            pins.append(name)
    return pins


def log_model(
    pipeline: Any,
    model_metadata: dict[str, Any],
    input_example: pd.DataFrame,
    policy: RetryPolicy = DEFAULT_POLICY,
) -> str:
    """Log the fitted pipeline as a self-contained pyfunc model; return its model URI.
    `model_metadata` must hold the input contract under "contract". A retried attempt logs a
    new MLflow model (an attempt that failed leaves its own, which nothing registers)."""
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        pipeline_path = folder / PIPELINE_FILE
        save_pipeline(pipeline, pipeline_path)
        metadata_path = folder / "metadata.json"
        metadata_path.write_text(json.dumps(model_metadata, indent=1, default=str))
        wrapper = ProductClassifierModel()
        wrapper.load(pipeline_path, metadata_path)
        example = wrapper.contract.coerce_frame(input_example)
        output = wrapper.predict(None, example)
        signature = checked_signature(wrapper.contract, example, output)
        try:
            info = policy.call(
                "logging the model",
                mlflow.pyfunc.log_model,
                name=MODEL_ARTIFACT,
                python_model=ProductClassifierModel(),
                artifacts={
                    PIPELINE_ARTIFACT: str(pipeline_path),
                    METADATA_ARTIFACT: str(metadata_path),
                },
                code_paths=[str(copy_model_code(folder / "code"))],
                signature=signature,
                input_example=example,
                pip_requirements=pinned(SERVING_REQUIREMENTS),
            )
        except TrackingRefusedError as error:
            if EXAMPLE_MISMATCH in str(error):  # its local check, should it differ from ours
                raise example_mismatch(str(error).split(EXAMPLE_MISMATCH, 1)[1]) from None
            raise
    return str(info.model_uri)


def checked_signature(
    contract: InputContract, example: pd.DataFrame, output: pd.DataFrame
) -> ModelSignature:
    """The model's signature, and the check MLflow makes of the input example against it while
    logging the model, made here first: both run on this machine, so their failure is this run's
    own data or code, not a refusal by the tracking server (exit 5), and is not reported as one."""
    try:
        signature = input_signature(contract, example, output)
        validate_schema(example, signature.inputs)
    except MlflowException as error:
        raise example_mismatch(str(error)) from None
    return signature


def example_mismatch(detail: str) -> TrainingError:
    """The error for an input example that does not fit the model's own signature."""
    return TrainingError(
        "logging the model: MLflow's check of the model's signature against its input example "
        f"(the first holdout rows) failed: {' '.join(detail.split())}. The check runs on this "
        "machine, not on the tracking server: a bug in product-train (a catalog column was not "
        "converted as the model's input contract types it); please report it with the type of "
        "the column named there"
    )


def register(
    client: MlflowClient,
    model_uri: str,
    run_id: str,
    name: str,
    policy: RetryPolicy = DEFAULT_POLICY,
) -> ModelVersion:
    """Register the logged model once and wait until its version is READY; no alias moves here
    (`RunChanges.publish` moves them once the gate has decided). Retried calls cannot register
    it twice: each attempt first looks for this run's version."""

    def find_or_register() -> ModelVersion:
        existing = runs_versions(client, name, run_id)
        if existing:
            return min(existing, key=lambda found: int(found.version))
        return mlflow.register_model(
            model_uri, name, await_registration_for=0, tags={"run_id": run_id}
        )

    version = policy.call(f"registering {name}", find_or_register)
    policy.call(f"waiting for {name}/{version.version}", wait_until_ready, client, version)
    return version


def runs_versions(client: MlflowClient, name: str, run_id: str) -> list[ModelVersion]:
    """The versions of `name` that the run `run_id` registered (deleted ones are not listed)."""
    return list(client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'"))


def wait_until_ready(client: MlflowClient, version: ModelVersion, timeout: float = 300) -> None:
    """Poll the version until MLflow finished registering it; anything but READY is refused."""
    deadline = time.monotonic() + timeout
    status = client.get_model_version(version.name, version.version).status
    while status == "PENDING_REGISTRATION" and time.monotonic() < deadline:
        time.sleep(1)
        status = client.get_model_version(version.name, version.version).status
    if status != "READY":
        raise TrackingRefusedError(
            f"model version {version.name}/{version.version} ended in status {status}"
        )


def current_champion(client: MlflowClient, name: str) -> ModelVersion | None:
    """The version the `champion` alias points to, or None (no such model or alias yet)."""
    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise


def promote(
    client: MlflowClient, name: str, version: str, policy: RetryPolicy = DEFAULT_POLICY
) -> None:
    """Point `champion` at `version` (setting an alias is idempotent: retried freely)."""
    policy.call(
        f"setting {name}@{CHAMPION}", client.set_registered_model_alias, name, CHAMPION, version
    )


def training_record(
    client: MlflowClient, version: ModelVersion
) -> tuple[dict[str, str], dict[str, str]]:
    """The parameters and tags of the run that trained `version`; empty for a version registered
    without a run, or whose run was deleted."""
    if not version.run_id:
        return {}, {}
    try:
        run = client.get_run(version.run_id)
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
            return {}, {}
        raise
    return dict(run.data.params), dict(run.data.tags)
