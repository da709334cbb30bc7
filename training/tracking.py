"""MLflow: connecting with bounded retries, logging the model, registering it, and the gate that
moves the `champion` alias only to a version at least as good as the current one."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata as package_metadata
from pathlib import Path
from typing import Any, TypeVar

import joblib
import mlflow
import pandas as pd
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature, infer_signature
from mlflow.tracking import MlflowClient
from mlflow.types.schema import AnyType, ColSpec, Schema, TensorSpec

import product_model
from product_model.pyfunc import METADATA_ARTIFACT, PIPELINE_ARTIFACT, ProductClassifierModel
from training.errors import TrackingError
from training.evaluate import macro_f1

log = logging.getLogger(__name__)
T = TypeVar("T")

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
)
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
STRING_FIELDS = frozenset({"asin", "title", "brand"})


def input_signature(example: pd.DataFrame, output: pd.DataFrame, numeric: tuple[str, ...]) -> Any:
    """Every input field optional (catalog records miss fields all the time); list-or-string
    fields typed Any, since the Amazon data has both shapes."""
    columns: list[ColSpec | TensorSpec] = []
    for name in example.columns:
        kind: Any = (
            "double" if name in numeric else "string" if name in STRING_FIELDS else AnyType()
        )
        columns.append(ColSpec(kind, name, required=False))
    inferred = infer_signature(example, output, params={"top_k": 3})
    return ModelSignature(inputs=Schema(columns), outputs=inferred.outputs, params=inferred.params)


def resolve_tracking_uri(configured: str | None) -> str:
    return configured or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def connect(tracking_uri: str, timeout_seconds: float) -> MlflowClient:
    """Point MLflow at the server and wait (bounded) until it answers."""
    # MLflow's own HTTP retries would otherwise outlast our bound by minutes.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(max(5, int(timeout_seconds / 2))))
    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri)
    with_retries(
        lambda: client.search_experiments(max_results=1),
        timeout_seconds,
        f"MLflow tracking server at {tracking_uri}",
    )
    return client


def with_retries(call: Callable[[], T], timeout_seconds: float, what: str) -> T:
    """Call until it succeeds or `timeout_seconds` pass, backing off between tries."""
    deadline = time.monotonic() + timeout_seconds
    delay = 1.0
    while True:
        try:
            return call()
        except MlflowException as error:
            if time.monotonic() + delay > deadline:
                raise TrackingError(
                    f"{what} did not answer within {timeout_seconds:.0f}s: "
                    f"{str(error).splitlines()[0][:300]}; check MLFLOW_TRACKING_URI and that "
                    "the server is up"
                ) from None
            log.warning("%s not reachable yet, retrying in %.0fs", what, delay)
            time.sleep(delay)
            delay = min(delay * 2, 10.0)


def _copy_model_code(target: Path) -> Path:
    """The whole `product_model` package, which the saved model imports and nothing else."""
    package = Path(product_model.__file__).parent
    code = target / "product_model"
    shutil.copytree(package, code, ignore=shutil.ignore_patterns("__pycache__", "*.py[co]"))
    return code


def _pinned(names: tuple[str, ...]) -> list[str]:
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
    numeric_columns: tuple[str, ...] = (),
) -> str:
    """Log the fitted pipeline as a self-contained pyfunc model; return its model URI."""
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        pipeline_path = folder / "pipeline.joblib"
        joblib.dump(pipeline, pipeline_path, compress=("zlib", 3))
        metadata_path = folder / "metadata.json"
        metadata_path.write_text(json.dumps(model_metadata, indent=1, default=str))
        wrapper = ProductClassifierModel()
        wrapper.load(pipeline_path, metadata_path)
        output = wrapper.predict(None, input_example)
        info = mlflow.pyfunc.log_model(
            name=MODEL_ARTIFACT,
            python_model=ProductClassifierModel(),
            artifacts={
                PIPELINE_ARTIFACT: str(pipeline_path),
                METADATA_ARTIFACT: str(metadata_path),
            },
            code_paths=[str(_copy_model_code(folder / "code"))],
            signature=input_signature(input_example, output, numeric_columns),
            input_example=input_example,
            pip_requirements=_pinned(SERVING_REQUIREMENTS),
        )
    return str(info.model_uri)


def register(client: MlflowClient, model_uri: str, run_id: str, name: str) -> ModelVersion:
    """Register the logged model and wait until its version is READY, then tag it challenger."""
    version = mlflow.register_model(
        model_uri, name, await_registration_for=300, tags={"run_id": run_id}
    )
    status = client.get_model_version(name, version.version).status
    if status != "READY":
        raise TrackingError(f"model version {name}/{version.version} ended in status {status}")
    client.set_registered_model_alias(name, CHALLENGER, version.version)
    return version


@dataclass
class GateDecision:
    promote: bool
    reason: str
    challenger_f1: float
    champion_f1: float | None
    champion_version: str | None


def current_champion(client: MlflowClient, name: str) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise


def score_champion(name: str, eval_frame: pd.DataFrame, y_true: Any) -> float:
    """The current champion's macro-F1, re-scored on this run's evaluation split."""
    champion = mlflow.pyfunc.load_model(f"models:/{name}@{CHAMPION}").unwrap_python_model()
    proba = champion.predict_proba(eval_frame)
    return macro_f1(y_true, champion.classes[proba.argmax(axis=1)])


def decide(
    client: MlflowClient,
    name: str,
    challenger_f1: float,
    eval_frame: pd.DataFrame,
    y_true: Any,
    force: bool,
) -> GateDecision:
    champion = current_champion(client, name)
    if champion is None:
        return GateDecision(True, "no champion yet", challenger_f1, None, None)
    try:
        champion_f1 = score_champion(name, eval_frame, y_true)
    except Exception as error:  # a champion from another schema or a broken artifact
        log.warning("could not re-score champion v%s: %s", champion.version, error)
        champion_f1 = float("nan")
    old = champion.version
    if force:
        return GateDecision(True, "forced with --force-promote", challenger_f1, champion_f1, old)
    if champion_f1 != champion_f1:  # NaN: the champion could not be scored on this split
        reason = f"champion v{old} could not be re-scored on this split; kept (force to override)"
        return GateDecision(False, reason, challenger_f1, None, old)
    if challenger_f1 >= champion_f1:
        reason = f"macro-F1 {challenger_f1:.4f} >= champion v{old}'s {champion_f1:.4f}"
        return GateDecision(True, reason, challenger_f1, champion_f1, old)
    reason = f"macro-F1 {challenger_f1:.4f} < champion v{old}'s {champion_f1:.4f}; champion kept"
    return GateDecision(False, reason, challenger_f1, champion_f1, old)


def promote(client: MlflowClient, name: str, version: str) -> None:
    client.set_registered_model_alias(name, CHAMPION, version)
