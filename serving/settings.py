"""Serving settings, read from environment variables (field name = lowercased variable name).

Nothing here touches network or MLflow: `Settings()` only reads and validates the environment
(and, for a tracking URI scheme MLflow does not know itself, the installed packages' entry points;
for a database store, loads SQLAlchemy's driver for it, as MLflow will; for a PREDICTION_LOG file,
opens it for appending, as the server will).
"""

from __future__ import annotations

import importlib.metadata
import os
import re
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlparse

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from serving.prediction_log import open_for_appending
from serving.registry_names import check_alias, check_registered_name, check_registry_model_uri
from serving.store_drivers import MLFLOW_DATABASES, check_database_driver

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
# A MODEL_URI naming a registered version: models:/NAME/VERSION or models:/NAME@ALIAS.
REGISTRY_URI = re.compile(r"models:/([^/@]+)(?:/(\d+)|@([^/@]+))")
# The schemes of the tracking URIs MLflow's own stores (tracking and model registry) take: ""
# for a local folder; a database's, which may name a driver (postgresql+psycopg2). A tracking
# URI of any other scheme fails on every attempt: it is refused at start-up instead.
MLFLOW_SCHEMES = frozenset({"", "file", "http", "https", "databricks", "databricks-uc", "uc"})
# Where plugin packages register the stores of more schemes.
MLFLOW_STORE_PLUGINS = ("mlflow.tracking_store", "mlflow.model_registry_store")
# MODEL_URI schemes that resolve through the tracking store (a folder or s3:// path does not).
TRACKED_MODEL_SCHEMES = frozenset({"models", "runs"})
# Schemes MLflow takes written alone, without `://` (`databricks`).
BARE_SCHEMES = frozenset({"databricks", "databricks-uc", "uc"})
DEFAULT_ALIAS = "champion"


class Settings(BaseSettings):
    """Every knob of the prediction server; see the README's configuration table."""

    model_config = SettingsConfigDict(
        case_sensitive=False, extra="ignore", protected_namespaces=(), frozen=True
    )

    mlflow_tracking_uri: str = Field(
        "sqlite:///mlflow.db",
        min_length=1,
        description="MLflow tracking and registry URI (MLflow's own default: SQLite in the cwd).",
    )
    model_name: str = Field("product-classifier", min_length=1, description="Registered model.")
    model_alias: str = Field(DEFAULT_ALIAS, min_length=1, description="Alias to serve and follow.")
    model_version: str | None = Field(None, description="Pin one registered version (no reload).")
    model_uri: str | None = Field(
        None, description="Serve a model folder on disk (or any MLflow model URI) instead."
    )
    host: str = Field("0.0.0.0", min_length=1, description="Address to listen on.")
    port: int = Field(8000, ge=1, le=65535, description="TCP port to listen on.")
    workers: int = Field(1, ge=1, le=64, description="Worker processes.")
    reload_interval_seconds: float = Field(
        30.0, ge=0, description="How often to check the alias for a new version; 0 disables."
    )
    failed_load_retry_seconds: float = Field(
        600.0,
        ge=0,
        description="A version that failed to load is tried again only after this long (or when"
        " the alias moves).",
    )
    max_products_per_request: int = Field(1000, ge=1, description="Products in one request.")
    max_text_chars: int = Field(20_000, ge=1, description="Characters in one product field.")
    max_body_bytes: int = Field(10 * 1024 * 1024, ge=1024, description="Request body size.")
    batch_max_size: int = Field(100, ge=1, le=4096, description="Rows per model call (batching).")
    model_threads: int | None = Field(
        None,
        ge=1,
        le=64,
        description="Model calls that may run at once; beyond the first, only for full batches."
        " Unset: one per usable core (CPU quota and affinity).",
    )
    batch_max_wait_ms: float = Field(
        2.0, ge=0, le=1000, description="How long a request waits for others to batch with."
    )
    request_timeout_seconds: float = Field(
        60.0,
        ge=0,
        description="A prediction still unanswered after this long gets a 504; 0 disables.",
    )
    shutdown_timeout_seconds: float = Field(
        20.0, ge=0, description="Grace period for in-flight requests on SIGTERM."
    )
    drift_window_size: int = Field(
        2000, ge=10, le=1_000_000, description="Recent predictions the drift scores compare."
    )
    drift_window_seconds: float = Field(
        3600.0, ge=0, description="Oldest prediction the drift window keeps; 0: no age limit."
    )
    prediction_log: str | None = Field(
        None,
        description="Log each prediction as a JSON line to `stdout` or append it to this file"
        " (checked at start-up, reopened when renamed); unset: off.",
    )
    prediction_log_fields: bool = Field(
        False, description="Include the product's fields in the prediction log."
    )
    log_level: LogLevel = Field("INFO", description="Python log level.")
    log_product_text: bool = Field(False, description="Log product text of failed requests.")
    prometheus_multiproc_dir: Path | None = Field(
        None, description="prometheus-client multiprocess directory (several workers)."
    )

    @field_validator("mlflow_tracking_uri")
    @classmethod
    def _mlflow_has_a_store_for(cls, value: str) -> str:
        check_store_scheme(value)
        return value

    @field_validator("model_name")
    @classmethod
    def _registrable_name(cls, value: str) -> str:
        check_registered_name(value)
        return value

    @field_validator("model_alias")
    @classmethod
    def _settable_alias(cls, value: str) -> str:
        check_alias(value)
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("model_version", "model_uri", "prometheus_multiproc_dir", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("model_version")
    @classmethod
    def _version_is_a_number(cls, value: str | None) -> str | None:
        if value is not None and not (value.isdigit() and int(value) > 0):
            raise ValueError("must be a registered version number such as 3")
        return value

    @field_validator("model_uri")
    @classmethod
    def _registry_uri_names_a_version(cls, value: str | None) -> str | None:
        if value is not None:
            check_registry_model_uri(value)
        return value

    @field_validator("prediction_log", mode="before")
    @classmethod
    def _blank_log_is_off(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("prediction_log")
    @classmethod
    def _log_file_can_be_appended(cls, value: str | None) -> str | None:
        if value is not None and value != "stdout":
            check_appendable(Path(value))
        return value

    @model_validator(mode="after")
    def _one_model_source(self) -> Settings:
        if self.model_version is not None and self.model_uri is not None:
            raise ValueError("set MODEL_VERSION or MODEL_URI, not both")
        if self.model_uri is not None and self.model_alias != DEFAULT_ALIAS:
            raise ValueError(  # MODEL_URI names what to serve: the alias would be ignored
                f"set MODEL_URI or MODEL_ALIAS, not both: MODEL_URI names what to serve (an "
                f"alias in it, models:/NAME@{self.model_alias}, is followed as it moves); unset "
                "MODEL_ALIAS"
            )
        if self.model_version is not None and self.model_alias != DEFAULT_ALIAS:
            raise ValueError(  # the pinned version would win, and the alias be ignored
                f"set MODEL_VERSION or MODEL_ALIAS, not both: MODEL_VERSION={self.model_version} "
                f"pins that version, MODEL_ALIAS={self.model_alias} follows the alias as it "
                "moves; unset one of them"
            )
        return self

    @model_validator(mode="after")
    def _mlflow_opens_the_store(self) -> Settings:
        needs_store = self.model_uri is None or urlparse(self.model_uri).scheme in (
            TRACKED_MODEL_SCHEMES
        )
        if needs_store and is_folder_store(self.mlflow_tracking_uri):
            check_file_store_allowed(self.mlflow_tracking_uri)
        if needs_store:
            check_database_driver(self.mlflow_tracking_uri, "MLFLOW_TRACKING_URI")
        registry = os.environ.get("MLFLOW_REGISTRY_URI", "").strip()  # read by MLflow itself
        if needs_store and registry and registry != self.mlflow_tracking_uri:
            check_registry_uri(registry)
        return self

    @property
    def served_name(self) -> str:
        """The model's name in answers, metrics and v2 paths: the registered name a
        `models:/` MODEL_URI gives, else MODEL_NAME."""
        registered = REGISTRY_URI.fullmatch(self.model_uri or "")
        return registered.group(1) if registered else self.model_name

    @property
    def follows_alias(self) -> bool:
        """Whether the served model comes from the alias (and so may change while running)."""
        return self.model_uri is None and self.model_version is None


def is_folder_store(tracking_uri: str) -> bool:
    """Whether MLflow reads `tracking_uri` as a local folder (./mlruns, file:/path, C:\\mlruns)."""
    scheme = _scheme(tracking_uri)
    return scheme in ("", "file") or len(scheme) == 1


def _scheme(uri: str) -> str:
    """The scheme MLflow picks a store by: a bare `databricks` (no `://`) is that scheme."""
    return uri if uri in BARE_SCHEMES else urlparse(uri).scheme  # lowercased


def check_store_scheme(uri: str, variable: str = "") -> None:
    """ValueError unless MLflow (or an installed plugin) has a store for `uri`'s scheme: one it
    has not fails on every attempt. `variable` names the setting when the message must."""
    scheme = _scheme(uri)
    if len(scheme) == 1:  # a Windows drive (C:\mlruns): a local folder, as MLflow reads it
        return
    database, _, driver = scheme.partition("+")
    if scheme in MLFLOW_SCHEMES or (database in MLFLOW_DATABASES and "+" not in driver):
        return
    if scheme not in plugin_schemes():
        named = f"{variable}={uri!r}: " if variable else ""
        raise ValueError(
            f"{named}MLflow has no store for the scheme {scheme!r}: use a tracking server "
            "(http:// or https://), a database (sqlite:///mlflow.db, "
            "postgresql+psycopg2://USER@HOST:PORT/DB), a local folder, or databricks"
            + (f", or unset {variable}" if variable == "MLFLOW_REGISTRY_URI" else "")
        )


def check_registry_uri(registry_uri: str) -> None:
    """ValueError unless MLflow opens the registry store MLFLOW_REGISTRY_URI names apart from
    the tracking URI: a scheme it has a store for, a folder only if MLFLOW_ALLOW_FILE_STORE."""
    check_store_scheme(registry_uri, "MLFLOW_REGISTRY_URI")
    if is_folder_store(registry_uri):
        check_file_store_allowed(registry_uri, "MLFLOW_REGISTRY_URI")
    check_database_driver(registry_uri, "MLFLOW_REGISTRY_URI")


def check_file_store_allowed(tracking_uri: str, variable: str = "MLFLOW_TRACKING_URI") -> None:
    """ValueError unless MLFLOW_ALLOW_FILE_STORE lets MLflow open a folder store: MLflow 3 keeps
    its file backend in maintenance mode and refuses it otherwise (read as MLflow reads it)."""
    value = os.environ.get("MLFLOW_ALLOW_FILE_STORE")
    if value is not None and value.lower() not in ("true", "false", "1", "0"):
        raise ValueError(f"MLFLOW_ALLOW_FILE_STORE must be true or false, got {value!r}")
    if value is None or value.lower() not in ("true", "1"):
        unset = (
            ", unset MLFLOW_REGISTRY_URI to keep the registry in the tracking store"
            if variable == "MLFLOW_REGISTRY_URI"
            else ""
        )
        raise ValueError(
            f"{variable}={tracking_uri!r} is a folder store, which MLflow refuses (its file "
            "backend is in maintenance mode): use a database such as sqlite:///mlflow.db"
            f"{unset}, or set MLFLOW_ALLOW_FILE_STORE=true to keep the folder"
        )


def sqlite_file(uri: str) -> Path | None:
    """The database file a `sqlite:///` URI names, as SQLAlchemy reads it (a driver such as
    `sqlite+pysqlite` allowed, percent-decoded, its `?query` dropped, a relative path relative to
    the working directory), or None for any other URI and for an in-memory or `file:` URI
    database. (`training/tracking_uri.py` has the same rule; the serve image ships only
    `serving/`.)"""
    scheme, separator, rest = uri.partition("://")
    if not separator or scheme.lower().partition("+")[0] != "sqlite":
        return None
    database = unquote(rest.partition("?")[0].partition("/")[2])  # what follows `sqlite://HOST/`
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def plugin_schemes() -> frozenset[str]:
    """The tracking URI schemes installed MLflow plugins add."""
    return frozenset(
        entry.name
        for group in MLFLOW_STORE_PLUGINS
        for entry in importlib.metadata.entry_points(group=group)
    )


def check_appendable(path: Path) -> None:
    """ValueError unless the prediction log file `path` can be opened for appending (created,
    with its folder, if missing): otherwise every request would log an error and lose its lines,
    which `product-monitor --prediction-log` needs."""
    try:
        open_for_appending(path).close()
    except OSError as error:
        reason = error.strerror or str(error)
        where = f": {error.filename}" if error.filename and error.filename != str(path) else ""
        raise ValueError(
            f"cannot be opened for appending ({reason}{where}); give a file in a writable "
            "folder (the Deployment's root filesystem is read-only: /tmp is writable), or stdout"
        ) from None


def describe_settings_error(error: ValidationError) -> str:
    """One readable line per bad setting, named by its environment variable."""
    lines = []
    for item in error.errors():
        name = ".".join(str(part) for part in item["loc"]).upper()
        given = f" (got {item['input']!r})" if item["type"] != "missing" and item["loc"] else ""
        message = item["msg"].removeprefix("Value error, ")
        # a rule across settings names them in its message
        lines.append(
            f"invalid setting {name}: {message}{given}" if name else f"invalid settings: {message}"
        )
    return "\n".join(lines)
