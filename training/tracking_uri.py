"""The tracking URI as the commands resolve it, shown without its password, and whether MLflow
will open it: nothing here imports MLflow, so a command checks its options before MLflow (and its
logging set-up) is loaded.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

from training.errors import ConfigError

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"


def resolve_tracking_uri(configured: str | None) -> str:
    return configured or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def check_store_allowed(configured: str | None) -> None:
    """`ConfigError` (exit 2) at start-up when the tracking URI is a folder (`./mlruns`,
    `file:/path`) and MLflow would refuse it: MLflow 3 keeps its file store in maintenance mode and
    only opens one with MLFLOW_ALLOW_FILE_STORE=true. Otherwise every command would fail later,
    after reading its data, with MLflow's long message."""
    uri = resolve_tracking_uri(configured)
    scheme = urlsplit(uri).scheme.lower()
    if scheme not in ("", "file") and len(scheme) != 1:  # one letter: a Windows drive, C:\mlruns
        return
    value = os.environ.get("MLFLOW_ALLOW_FILE_STORE", "false")
    if value.lower() not in ("true", "false", "1", "0"):  # as MLflow reads its boolean settings
        raise ConfigError(f"MLFLOW_ALLOW_FILE_STORE must be true or false, got {value!r}")
    allowed = value.lower() in ("true", "1")
    if not allowed:
        raise ConfigError(
            f"the tracking URI {redact(uri)!r} (--tracking-uri / MLFLOW_TRACKING_URI) is a folder "
            "store, which MLflow refuses (its file backend is in maintenance mode): use a "
            "database such as sqlite:///mlflow.db, or set MLFLOW_ALLOW_FILE_STORE=true to keep "
            "the folder"
        )


def redact(uri: str) -> str:
    """`uri` with its password replaced by `***` (`http://alice:***@host`), for logs, messages and
    run parameters: a tracking URI may carry credentials (`postgresql://user:password@db/mlflow`)."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    userinfo, _, host = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
