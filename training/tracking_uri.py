"""The tracking URI as the commands resolve it, shown without its password, and whether MLflow
will open it: nothing here imports MLflow, so a command checks its options before MLflow (and its
logging set-up) is loaded.
"""

from __future__ import annotations

import importlib.metadata
import os
import tempfile
from pathlib import Path
from typing import NamedTuple
from urllib.parse import unquote, urlsplit, urlunsplit

from training.errors import ConfigError
from training.store_database import check_driver

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
# The schemes MLflow's own tracking and registry stores take (as `serving/settings.py`, which the
# serve image ships without `training/`): "" for a folder; a database's, which may name a driver.
MLFLOW_SCHEMES = frozenset({"", "file", "http", "https", "databricks", "databricks-uc", "uc"})
MLFLOW_DATABASES = frozenset({"sqlite", "postgresql", "mysql", "mssql"})
MLFLOW_STORE_PLUGINS = ("mlflow.tracking_store", "mlflow.model_registry_store")
BARE_SCHEMES = frozenset({"databricks", "databricks-uc", "uc"})


def resolve_tracking_uri(configured: str | None) -> str:
    return configured or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def check_store_allowed(configured: str | None) -> None:
    """`ConfigError` (exit 2) at start-up when the tracking URI, or a registry URI given apart in
    MLFLOW_REGISTRY_URI, has a scheme MLflow has no store for, is a folder (`./mlruns`,
    `file:/path`) that MLflow would refuse (MLflow 3 keeps its file store in maintenance mode and
    only opens one with MLFLOW_ALLOW_FILE_STORE=true), is a database whose driver is not
    installed, or is a `sqlite:///` file in a folder that cannot be created or written (for the
    commands that write a store: product-train, product-tune). Otherwise every command would fail
    later, after reading its data, with MLflow's long message or a bare ModuleNotFoundError."""
    stores = _stores(configured)
    for store in stores:
        _check_store(store.uri, store.what, store.given_by, store.other_fix)
    for store in stores:
        _check_sqlite_folder(store.uri, store.what, store.given_by)


def check_store_exists(configured: str | None) -> None:
    """The checks of `check_store_allowed` but the folder's, and a `ConfigError` (exit 2) when the
    tracking or registry URI is a `sqlite:///` file that does not exist, for commands that only
    read a store: MLflow would create an empty store there and the command would then report a
    missing model (or, asking whether to retrain, "no champion yet") instead of the mistyped path.
    Only looks: creates nothing."""
    stores = _stores(configured)
    for store in stores:
        _check_store(store.uri, store.what, store.given_by, store.other_fix)
    for store in stores:
        _check_sqlite_file(store.uri, store.what, store.given_by)


class _Store(NamedTuple):
    uri: str
    what: str
    given_by: str
    other_fix: str  # one more way out of a refusal


def _stores(configured: str | None) -> list[_Store]:
    """The tracking URI, and MLFLOW_REGISTRY_URI when it names another store."""
    uri = resolve_tracking_uri(configured)
    stores = [_Store(uri, "the tracking URI", "--tracking-uri / MLFLOW_TRACKING_URI", "")]
    registry = os.environ.get("MLFLOW_REGISTRY_URI", "").strip()
    if registry and registry != uri:
        unset = ", unset MLFLOW_REGISTRY_URI to keep the registry in the tracking store"
        stores.append(_Store(registry, "the registry URI", "MLFLOW_REGISTRY_URI", unset))
    return stores


def _check_sqlite_file(uri: str, what: str, given_by: str) -> None:
    """Refuse `uri` (`what`, set by `given_by`) if it names a SQLite file that is not there."""
    store = sqlite_file(uri)
    if store is not None and not store.is_file():
        raise ConfigError(
            f"no MLflow store at {store.absolute()} ({what} {redact(uri)!r}, {given_by}): "
            "check the path, or train a model there first (product-train creates the store)"
        )


def _check_sqlite_folder(uri: str, what: str, given_by: str) -> None:
    """Refuse `uri` (`what`, set by `given_by`) if it names a SQLite file whose folder MLflow can
    neither create nor write in (it creates missing folders; SQLite writes its journal beside the
    database). Leaves nothing behind."""
    store = sqlite_file(uri)
    if store is None:
        return
    problem = folder_problem(store.absolute().parent)
    if problem:
        raise ConfigError(
            f"cannot create the MLflow store at {store.absolute()} ({what} {redact(uri)!r}, "
            f"{given_by}): {problem}; give a path in a folder you can write, e.g. "
            "sqlite:///mlflow.db in the working directory"
        )


def folder_problem(folder: Path) -> str | None:
    """Why MLflow could not create files in `folder` (after creating it and its missing parents,
    as it does), or None when it could. Tries a temporary file, gone when closed, in the nearest
    folder that exists: permission bits alone do not tell (root, read-only mounts, /proc)."""
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    try:
        with tempfile.TemporaryFile(dir=existing):
            return None
    except OSError as error:
        if existing == folder:
            return f"cannot write in the folder {folder} ({error.strerror})"
        return (
            f"the folder {folder} does not exist and cannot be created in {existing} "
            f"({error.strerror})"
        )


def sqlite_file(uri: str) -> Path | None:
    """The database file a `sqlite:///` URI names, as SQLAlchemy reads it (percent-decoded, its
    `?query` dropped; a relative path is relative to the working directory), or None for any other
    URI and for an in-memory or `file:` URI database."""
    scheme, separator, rest = uri.partition("://")
    if not separator or scheme.lower().partition("+")[0] != "sqlite":
        return None
    database = unquote(rest.partition("?")[0].partition("/")[2])  # what follows `sqlite://HOST/`
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _check_store(uri: str, what: str, given_by: str, other_fix: str) -> None:
    """Refuse `uri` (`what`, set by `given_by`) if MLflow cannot open it; `other_fix` is one more
    way out, said with the others."""
    # MLflow reads a bare `databricks` (no `://`) as that scheme, not as a folder of that name
    scheme = uri if uri in BARE_SCHEMES else urlsplit(uri).scheme.lower()
    named = f"{what} {redact(uri)!r} ({given_by})"
    store = sqlite_file(uri)
    if store is not None and not is_sqlite_database(store):
        raise ConfigError(
            f"{store.absolute()} is not an SQLite database, so not an MLflow store ({named}): "
            "give the store's file, e.g. sqlite:///mlflow.db"
        )
    if len(scheme) == 1 or scheme in ("", "file"):  # one letter: a Windows drive, C:\mlruns
        if not _file_store_allowed():
            raise ConfigError(
                f"{named} is a folder store, which MLflow refuses (its file backend is in "
                f"maintenance mode): use a database such as sqlite:///mlflow.db{other_fix}, or "
                "set MLFLOW_ALLOW_FILE_STORE=true to keep the folder"
            )
        return
    database, _, driver = scheme.partition("+")
    known = scheme in MLFLOW_SCHEMES or (database in MLFLOW_DATABASES and "+" not in driver)
    if not known and scheme not in _plugin_schemes():
        raise ConfigError(
            f"{named}: MLflow has no store for the scheme {scheme!r}: use a database "
            "(sqlite:///mlflow.db, postgresql+psycopg2://...), a tracking server (http:// or "
            f"https://), a local folder, or databricks{other_fix}"
        )
    check_driver(uri, named)


SQLITE_HEADER = b"SQLite format 3\x00"


def is_sqlite_database(file: Path) -> bool:
    """Whether `file` starts as an SQLite database does; True when it is missing, empty (MLflow
    sets a new store up in it) or unreadable: other checks, or MLflow, say what is wrong then.
    SQLAlchemy's own "file is not a database" would come later, as a traceback."""
    try:
        with file.open("rb") as opened:
            head = opened.read(len(SQLITE_HEADER))
    except OSError:
        return True
    return not head or head == SQLITE_HEADER


def _file_store_allowed() -> bool:
    """Whether MLFLOW_ALLOW_FILE_STORE lets MLflow open a folder store, read as MLflow reads its
    boolean settings."""
    value = os.environ.get("MLFLOW_ALLOW_FILE_STORE", "false")
    if value.lower() not in ("true", "false", "1", "0"):
        raise ConfigError(f"MLFLOW_ALLOW_FILE_STORE must be true or false, got {value!r}")
    return value.lower() in ("true", "1")


def _plugin_schemes() -> frozenset[str]:
    """The tracking and registry URI schemes installed MLflow plugins add."""
    return frozenset(
        entry.name
        for group in MLFLOW_STORE_PLUGINS
        for entry in importlib.metadata.entry_points(group=group)
    )


def redact(uri: str) -> str:
    """`uri` with its password replaced by `***` (`http://alice:***@host`), for logs, messages and
    run parameters: a tracking URI may carry credentials (`postgresql://user:password@db/mlflow`)."""
    return _password_shown_as(uri, "***")


def without_password(uri: str) -> str:
    """`uri` without its password (`http://alice@host`), for a file that others read: the
    password comes from the environment instead (MLFLOW_TRACKING_PASSWORD, PGPASSWORD)."""
    return _password_shown_as(uri, None)


def _password_shown_as(uri: str, shown: str | None) -> str:
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    userinfo, _, host = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    credentials = user if shown is None else f"{user}:{shown}"
    return urlunsplit(parts._replace(netloc=f"{credentials}@{host}" if credentials else host))
