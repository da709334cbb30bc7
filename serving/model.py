"""The model layer: find which model to serve, load it, predict with it.

`ModelLocator.resolve()` answers "which model should be served now?" (a `ModelRef`);
`ServedModel.load(ref)` loads it (through `serving.loading`, which leaves nothing on disk) and warms
it; `ServedModel.predict_proba()` is the fast path the service calls from its model threads
(MODEL_THREADS; each call is independent). MLflow is imported lazily, in the loading thread, so
importing this module stays cheap and the HTTP server answers /healthz while MLflow loads.
"""

from __future__ import annotations

import functools
import inspect
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from serving.contract_types import CHECKERS
from serving.errors import (
    ARTIFACT_MISSING,
    LOAD_ERROR,
    REGISTRY_MISS,
    REGISTRY_REFUSED,
    UNREACHABLE,
    ModelLoadError,
)
from serving.loading import (
    SavedEnvironment,
    load_python_model,
    looks_refused,
    looks_unreachable,
    short,
)
from serving.settings import REGISTRY_URI, Settings, sqlite_file
from serving.store_drivers import is_database
from serving.validation import RequestContract


@dataclass(frozen=True)
class ModelRef:
    """Which model: registry name, version (or the model id for a folder), alias, MLflow URI."""

    name: str
    version: str
    uri: str
    alias: str | None = None
    run_id: str | None = None


@dataclass
class ServedModel:
    """A loaded, warmed model and what /v1/model tells about it."""

    ref: ModelRef
    classes: np.ndarray
    metrics: dict[str, Any]
    predictor: Any = field(repr=False)
    contract: RequestContract = field(default_factory=lambda: RequestContract.from_metadata({}))
    loaded_at: float = 0.0
    saved_environment: SavedEnvironment = field(default_factory=SavedEnvironment, repr=False)

    @classmethod
    def load(cls, ref: ModelRef) -> ServedModel:
        """Load `ref` with MLflow and run a warm-up prediction; `ModelLoadError` on failure.
        The warm-up runs after the downloaded folder is gone: a model that still needed a file
        from it fails here, not on a client's request. A model that can answer before its
        forest walk is compiled does so (see `compile_fast_path`); older models compile it in
        the warm-up."""
        wrapper, saved_environment = load_python_model(ref.uri)
        answer_before_compiled = getattr(wrapper, "answer_before_compiled", None)
        if answer_before_compiled is not None:
            answer_before_compiled()
        if not hasattr(wrapper, "predict_proba") or not hasattr(wrapper, "classes"):
            raise ModelLoadError(LOAD_ERROR, f"{ref.uri} is not a product classifier")
        metadata = getattr(wrapper, "metadata", None) or {}
        contract = RequestContract.from_metadata(metadata)
        if not contract.text_fields:
            raise ModelLoadError(LOAD_ERROR, f"{ref.uri} declares no text field to classify by")
        unknown = sorted({f.type for f in contract.fields} - CHECKERS.keys())
        if unknown:
            raise ModelLoadError(
                LOAD_ERROR,
                f"{ref.uri} declares input types this server does not know ({', '.join(unknown)}):"
                " the model was trained by a newer version; serve it with that version's image",
            )
        model = cls(
            ref,
            np.asarray(wrapper.classes),
            scalar_metrics(metadata),
            wrapper,
            contract,
            saved_environment=saved_environment,
        )
        model.warm_up()
        model.loaded_at = time.time()
        return model

    def warm_up(self) -> None:
        """One prediction through every feature path; a model that fails it is never served."""
        products = self.contract.warm_up_products()
        try:
            proba = self.predict_proba(products)
        except Exception as exc:
            raise ModelLoadError(LOAD_ERROR, f"warm-up prediction failed: {short(exc)}") from exc
        expected = (len(products), len(self.classes))
        if proba.shape != expected or not np.isfinite(proba).all():
            raise ModelLoadError(
                LOAD_ERROR, f"warm-up gave probabilities of shape {proba.shape}, not {expected}"
            )

    def compile_fast_path(self) -> bool:
        """Compile the model's fast forest walk (about a second of CPU, run once the model is
        served); until then it answers with an exact NumPy walk, the same probabilities bit for
        bit. False if the model has nothing to compile (older models compiled it in the warm-up)."""
        compile_walk = getattr(self.predictor, "compile_walk", None)
        if compile_walk is None:
            return False
        compile_walk()
        return True

    def predict_proba(
        self, products: list[dict[str, Any]], before_walk: Callable[[], None] | None = None
    ) -> np.ndarray:
        """Class probabilities, one row per product, columns in the order of `classes`.
        `before_walk()` is called when the rest of the call runs without the GIL, if the model
        says when (models saved before this change do not: it is never called)."""
        if before_walk is not None and self.tells_before_walk:
            proba = self.predictor.predict_proba(products, before_walk=before_walk)
        else:
            proba = self.predictor.predict_proba(products)
        return np.asarray(proba, dtype=np.float64)

    @functools.cached_property
    def tells_before_walk(self) -> bool:
        """Whether the model's `predict_proba` takes `before_walk`."""
        try:
            parameters = inspect.signature(self.predictor.predict_proba).parameters
        except (TypeError, ValueError):
            return False
        return "before_walk" in parameters

    def answers(self, proba: np.ndarray) -> list[list[tuple[str, float]]] | None:
        """A multilabel model's tags above their thresholds, or a path model's levels, per
        product (see the model's `product_model.tags`); None for a single-label model."""
        if self.contract.task == "single_label" or not hasattr(self.predictor, "answers"):
            return None
        return list(self.predictor.answers(proba))

    @property
    def path_separator(self) -> str:
        decoder = getattr(self.predictor, "decoder", None)
        return str(getattr(decoder, "separator", " > "))


class ModelLocator:
    """Answers which model the settings ask for: the alias's version, a pinned one, or a folder."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: Any = None

    @property
    def can_change(self) -> bool:
        """A pinned version never changes; an alias or a folder may."""
        return self.settings.model_version is None

    def resolve(self) -> ModelRef:
        """The model to serve now; `ModelLoadError` with a readable reason if it can't be found."""
        try:
            if self.settings.model_uri is not None:
                return self._folder_ref(self.settings.model_uri)
            return self._registry_ref()
        except ModelLoadError:
            raise
        except Exception as exc:
            raise resolve_error(exc, self.settings) from exc

    def _registry_ref(self) -> ModelRef:
        client = self._mlflow_client()
        name, alias = self.settings.model_name, self.settings.model_alias
        if self.settings.model_version is not None:
            version = client.get_model_version(name, self.settings.model_version)
            return ModelRef(
                name,
                str(version.version),
                f"models:/{name}/{version.version}",
                None,
                version.run_id,
            )
        version = client.get_model_version_by_alias(name, alias)
        uri = f"models:/{name}/{version.version}"
        return ModelRef(name, str(version.version), uri, alias, version.run_id)

    def _folder_ref(self, uri: str) -> ModelRef:
        name = self.settings.model_name
        path = Path(uri.removeprefix("file://"))
        if not (path / "MLmodel").is_file():
            if "://" not in uri and ":/" not in uri:
                raise ModelLoadError(ARTIFACT_MISSING, f"no MLflow model at {uri} (no MLmodel)")
            if registered := REGISTRY_URI.fullmatch(uri):
                return self._registry_uri_ref(*registered.groups())
            return ModelRef(name, "uri", uri)
        from mlflow.models import Model

        info = Model.load(str(path))
        version = info.model_uuid or f"mtime-{(path / 'MLmodel').stat().st_mtime_ns}"
        return ModelRef(name, version, str(path), None, info.run_id)

    def _registry_uri_ref(self, name: str, version: str | None, alias: str | None) -> ModelRef:
        """`models:/NAME/VERSION` or `models:/NAME@ALIAS` as the registered version it names,
        served under its own name and version (an alias is followed as it moves)."""
        client = self._mlflow_client()
        if alias is not None:
            found = client.get_model_version_by_alias(name, alias)
        else:
            found = client.get_model_version(name, version)
        uri = f"models:/{name}/{found.version}"
        return ModelRef(name, str(found.version), uri, alias, found.run_id)

    def _mlflow_client(self) -> Any:
        if self._client is None:
            import mlflow
            from mlflow import MlflowClient

            uri = self.settings.mlflow_tracking_uri
            check_store_exists(uri, "MLFLOW_TRACKING_URI")
            registry = os.environ.get("MLFLOW_REGISTRY_URI", "").strip()  # read by MLflow itself
            if registry and registry != uri:
                check_store_exists(registry, "MLFLOW_REGISTRY_URI")
            one_database_try(uri, registry)
            mlflow.set_tracking_uri(uri)  # `models:/` URIs in load_model resolve through it
            self._client = MlflowClient(tracking_uri=uri)
        return self._client


def one_database_try(*uris: str) -> None:
    """MLflow tries to open a database store ten times over about 100 s, a warning block each,
    before a load attempt can fail; the keeper retries with its own back-off, and /readyz said
    "loading" all that while. Its only setting is this module constant, read at each try. Only
    for a database store: MLflow's database module needs SQLAlchemy, which the serving image
    (talking to a tracking server) does not install."""
    if not any(is_database(uri) for uri in uris):
        return
    try:
        from mlflow.store.db import utils as db_utils
    except ImportError:  # no SQLAlchemy: MLflow cannot open the store either, and will say so
        return
    if isinstance(getattr(db_utils, "MAX_RETRY_COUNT", None), int):
        db_utils.MAX_RETRY_COUNT = 1


def check_store_exists(uri: str, variable: str) -> None:
    """`ModelLoadError` when `uri` names a `sqlite:///` file that does not exist: MLflow would
    create an empty store there and find no model in it."""
    store = sqlite_file(uri)
    if store is not None and not store.is_file():
        raise ModelLoadError(
            REGISTRY_MISS,
            f"no MLflow store at {store.absolute()} ({variable}={uri}); train a model there "
            f"first, or point {variable} at the store",
        )


def scalar_metrics(metadata: dict[str, Any]) -> dict[str, Any]:
    """The training metrics that are plain numbers or strings; NaN and infinities become None."""
    metrics = metadata.get("metrics") or {}
    clean: dict[str, Any] = {}
    for key, value in metrics.items():
        if isinstance(value, bool | int | str) or value is None:
            clean[str(key)] = value
        elif isinstance(value, float | np.floating):
            clean[str(key)] = float(value) if math.isfinite(value) else None
    return clean


def resolve_error(exc: BaseException, settings: Settings) -> ModelLoadError:
    """Why the registry could not say which version to serve: unreachable, or no such model."""
    wanted = settings.model_uri or f"{settings.model_name}@{settings.model_alias}"
    if settings.model_version is not None:
        wanted = f"{settings.model_name}/{settings.model_version}"
    if looks_refused(exc):
        return ModelLoadError(REGISTRY_REFUSED, f"the registry refused {wanted}: {short(exc)}")
    if looks_unreachable(exc):
        return ModelLoadError(UNREACHABLE, f"cannot ask the registry for {wanted}: {short(exc)}")
    code = getattr(exc, "error_code", "")
    text = short(exc)
    if code == "RESOURCE_DOES_NOT_EXIST" or "not found" in text.lower():
        return ModelLoadError(REGISTRY_MISS, f"{wanted} is not in the registry: {text}")
    return ModelLoadError(UNREACHABLE, f"the registry failed to answer for {wanted}: {text}")
