"""Which model scores the catalog, and which catalog columns it reads.

The model is pinned to one version before scoring starts (an alias that moves mid-run must not
mix two models in one output). Its columns come from the input contract in its metadata when it
has one, else from its MLflow signature, with training's default text and id columns. A model
without an id column (or a run given `--id-column ''`) identifies rows by their position.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.config import TrainConfig
from training.errors import ConfigError, TrackingError, TrackingRefusedError

DEFAULT_TEXT_COLUMNS = tuple(TrainConfig.model_fields["text_columns"].default)
DEFAULT_ID_COLUMN = TrainConfig.model_fields["id_column"].default


@dataclass(frozen=True)
class ModelRef:
    """A model pinned for one run: the URI to load, and the name and version to report."""

    uri: str
    name: str
    version: str


@dataclass(frozen=True)
class ModelInputs:
    """The catalog columns the model reads, those of them that carry text, the id column (None:
    rows are identified by their position in the catalog), the columns the model reads as
    numbers (its signature types them `double`, so they are parsed before predicting), and those
    its signature types `string` (MLflow refuses a number there: read as text first)."""

    columns: tuple[str, ...]
    text_columns: tuple[str, ...]
    id_column: str | None
    numeric_columns: tuple[str, ...] = ()
    id_fields: tuple[str, ...] = ()  # the model's own id fields, even when another is chosen
    string_columns: tuple[str, ...] = ()

    @property
    def feature_columns(self) -> tuple[str, ...]:
        """The columns the model predicts from: its inputs but the ids."""
        ids = {*self.id_fields, self.id_column}
        return tuple(column for column in self.columns if column not in ids)

    @property
    def text_valued_columns(self) -> tuple[str, ...]:
        """The columns read by the text rule (`batch.text_values`): text fields and those the
        signature types `string`, but the id (read as an id) and numbers."""
        named = dict.fromkeys((*self.text_columns, *self.string_columns))
        skip = {self.id_column, *self.numeric_columns}
        return tuple(column for column in named if column not in skip)


@dataclass
class ScoringModel:
    """A loaded pyfunc model and what the output says about it."""

    ref: ModelRef
    inputs: ModelInputs
    pyfunc: Any
    classes: tuple[str, ...]
    task: str = "single_label"  # multilabel and path models add their tags (or path) columns


def resolve(spec: str, tracking_uri: str | None, timeout: float = 30.0) -> ModelRef:
    """Pin `spec` (registry URI, folder or other MLflow URI) to one model version."""
    if spec.startswith("models:/"):
        return _registry_ref(spec, tracking_uri, timeout)
    path = Path(spec.removeprefix("file://"))
    if (path / "MLmodel").is_file():
        return ModelRef(str(path.resolve()), "", "")
    if "://" in spec or ":/" in spec:
        _connect(tracking_uri, timeout)
        return ModelRef(spec, "", "")
    raise ConfigError(
        f"--model {spec}: no MLflow model there (MLmodel file missing); pass "
        "models:/NAME@ALIAS, models:/NAME/VERSION or a model folder"
    )


def _registry_ref(spec: str, tracking_uri: str | None, timeout: float) -> ModelRef:
    from mlflow.exceptions import MlflowException

    client = _connect(tracking_uri, timeout)
    target = spec.removeprefix("models:/")
    name, at, alias = target.partition("@")
    try:
        if at:
            version = client.get_model_version_by_alias(name, alias).version
        elif "/" in target:
            name, version = target.split("/", 1)
            version = client.get_model_version(name, version).version
        else:
            _check_logged_model_id(client, spec, target)
            return ModelRef(spec, target, "")  # a logged model id, not a registered name
    except MlflowException as error:
        from training.tracking import as_tracking_error

        raise as_tracking_error(error, f"--model {spec}") from None
    return ModelRef(f"models:/{name}/{version}", name, str(version))


def _check_logged_model_id(client: Any, spec: str, target: str) -> None:
    """`models:/NAME` is a logged model's ID to MLflow, which answers "Logged model with ID
    'NAME' not found" for a registered name: say to add the version or alias instead."""
    from mlflow.exceptions import MlflowException

    try:
        registered = client.get_registered_model(target)
    except MlflowException as error:
        if error.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        if target.startswith("m-"):  # MLflow's logged model IDs: load it, or say it is not there
            return
        raise TrackingRefusedError(
            f"--model {spec}: no registered model '{target}'; pass models:/NAME@ALIAS or "
            "models:/NAME/VERSION (or models:/m-... for a logged model)"
        ) from None
    aliases = dict(registered.aliases or {})
    alias = "champion" if "champion" in aliases else next(iter(sorted(aliases)), None)
    versions = [int(v.version) for v in registered.latest_versions or []]
    example = f"@{alias}" if alias else f"/{max(versions)}" if versions else "@champion"
    raise ConfigError(
        f"--model {spec}: a registered model needs a version or an alias: add @ALIAS or "
        f"/VERSION, e.g. models:/{target}{example}"
    )


def _connect(tracking_uri: str | None, timeout: float) -> Any:
    """A client of the tracking server, MLflow's retries bounded by `timeout` (as training's)."""
    from training import tracking

    tracking.bound_retries(timeout)
    return tracking.connect(tracking.resolve_tracking_uri(tracking_uri))


def load(ref: ModelRef, id_column: str | None) -> ScoringModel:
    """Load the pinned model; name and version fall back to its metadata for folders."""
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException

    from training.tracking import as_tracking_error

    try:
        with own_model_code():
            pyfunc = mlflow.pyfunc.load_model(ref.uri)
    except MlflowException as error:
        raise as_tracking_error(error, f"--model {ref.uri}") from None
    except ModuleNotFoundError as error:  # a set-up error: retrying it cannot help (not exit 4)
        raise ConfigError(f"--model {ref.uri}: {_missing_package(error)}") from None
    except Exception as error:  # a broken model folder raises many types
        raise TrackingError(f"--model {ref.uri}: cannot load it: {_first_line(error)}") from None
    wrapper = pyfunc.unwrap_python_model()
    metadata: dict[str, Any] = dict(getattr(wrapper, "metadata", None) or {})
    name = ref.name or str(metadata.get("model_name", ""))
    version = ref.version or str(pyfunc.metadata.model_uuid or "")
    names, numbers, strings = _signature_columns(pyfunc)
    inputs = model_inputs(metadata, names, id_column, numbers, strings)
    classes = tuple(str(c) for c in getattr(wrapper, "classes", ()))
    task = str((metadata.get("contract") or {}).get("task", "single_label"))
    return ScoringModel(ModelRef(ref.uri, name, version), inputs, pyfunc, classes, task)


# Top-level packages a model's code folder may hold (`training` in the 0.1.x layout).
MODEL_CODE_PACKAGES = ("product_model", "training")


@contextmanager
def own_model_code() -> Iterator[None]:
    """The model's pickles resolve its packages from its own code folder (which MLflow puts on
    `sys.path`), not from this process's copies, imported by `training` before the load: a model
    saved by another version of the code loads as it was saved. Afterwards `sys.path` and
    `sys.modules` are as before; the model keeps references to its own modules. (The serving app
    does the same in `serving.loading`, which the batch image does not install.)"""
    path_before = list(sys.path)
    ours = _take_modules()
    importlib.invalidate_caches()
    try:
        yield
    finally:
        sys.path[:] = path_before
        _take_modules()
        sys.modules.update(ours)


def _take_modules() -> dict[str, Any]:
    names = [
        name
        for name in list(sys.modules)
        if any(name == top or name.startswith(top + ".") for top in MODEL_CODE_PACKAGES)
    ]
    return {name: sys.modules.pop(name) for name in names}


def _signature_columns(pyfunc: Any) -> tuple[list[str], list[str], list[str]]:
    """The signature's column names, those it types as floating-point numbers, and those it
    types as strings."""
    from mlflow.types import DataType

    schema = pyfunc.metadata.get_input_schema()
    if schema is None:
        return [], [], []
    types = schema.input_types_dict().items()
    numbers = [str(name) for name, kind in types if kind in (DataType.double, DataType.float)]
    strings = [str(name) for name, kind in types if kind == DataType.string]
    return list(schema.input_names()), numbers, strings


def model_inputs(
    metadata: dict[str, Any],
    signature_names: list[str],
    id_column: str | None,
    signature_numbers: list[str] | tuple[str, ...] = (),
    signature_strings: list[str] | tuple[str, ...] = (),
) -> ModelInputs:
    """The contract's columns and roles; without one, the signature's names and training's
    default text and id columns. `id_column` (from the command line) wins over both; `""`
    means no id column (rows are identified by their position). Numeric columns are the
    contract's `number` fields and the signature's floating-point columns; string columns the
    signature's `string` ones."""
    contract = metadata.get("contract")
    if contract and contract.get("fields"):
        fields = [(str(f["name"]), str(f.get("role", ""))) for f in contract["fields"]]
        columns = tuple(name for name, _ in fields)
        text = tuple(name for name, role in fields if role == "text")
        ids = tuple(name for name, role in fields if role == "id")
        default_id = ids[0] if ids else None
        numbers = {str(f["name"]) for f in contract["fields"] if f.get("type") == "number"}
    else:
        columns = tuple(signature_names or metadata.get("input_fields", []))
        text = tuple(c for c in DEFAULT_TEXT_COLUMNS if c in columns)
        default_id = DEFAULT_ID_COLUMN if DEFAULT_ID_COLUMN in columns else None
        ids = (default_id,) if default_id else ()
        numbers = set()
    if not columns:
        raise ConfigError("the model names no input columns (no contract and no signature)")
    numeric = tuple(c for c in columns if c in numbers or c in signature_numbers)
    chosen_id = default_id if id_column is None else (id_column or None)
    strings = tuple(c for c in columns if c in signature_strings)
    return ModelInputs(columns, text or columns, chosen_id, numeric, ids, strings)


# Python modules MLflow imports for a model URI's storage, and the pip packages that hold them.
PIP_PACKAGES = {
    "boto3": "boto3",
    "botocore": "boto3",
    "google": "google-cloud-storage",
    "azure.identity": "azure-identity",
    "azure": "azure-storage-blob azure-identity",
}


def _missing_package(error: ModuleNotFoundError) -> str:
    """What to install for a module that is missing (the model's storage client, or a library
    the model's own code imports)."""
    module = error.name or _first_line(error).rpartition(" ")[2].strip("'")
    packages = (pip for name, pip in PIP_PACKAGES.items() if f"{module}.".startswith(f"{name}."))
    package = next(packages, module.split(".")[0].replace("_", "-"))
    return (
        f"loading it needs the Python module '{module}', which is not installed: "
        f"pip install {package}"
    )


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:300]
