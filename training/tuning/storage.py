"""The study's storage: a SQLite file or a PostgreSQL database, checked, waited for and opened.

A PostgreSQL server may start after the tuning Job (they are deployed together), so it is waited
for within the tracking timeout; a login or a database it refuses is final (exit 5).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import optuna
import sqlalchemy
from optuna.trial import FrozenTrial

from training.errors import ConfigError, TrainingError
from training.store_database import LoginRefusedError, reach_and_log_in

# On PostgreSQL the study tables live in their own schema: MLflow's database already has an
# `alembic_version` table, which Optuna's schema migrations would otherwise read as their own.
POSTGRES_SCHEMA = "optuna"

StaleTrialCallback = Callable[[optuna.Study, FrozenTrial], None]


class StudyStorageError(TrainingError):
    """The study's storage cannot be reached or failed a request."""

    exit_code = 4


class StudyStorageRefusedError(StudyStorageError):
    """The study storage's server refused the login or the database."""

    exit_code = 5


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:
        return url


def engine_options(url: sqlalchemy.engine.URL) -> dict[str, Any]:
    if url.get_backend_name() == "sqlite":
        # Several local workers write to one file: wait for the lock instead of failing.
        return {"connect_args": {"timeout": 60}}
    if url.get_backend_name() == "postgresql":
        engine = sqlalchemy.create_engine(url)
        create = sqlalchemy.text(f"CREATE SCHEMA IF NOT EXISTS {POSTGRES_SCHEMA}")
        try:
            with engine.begin() as connection:
                connection.execute(create)
        finally:
            engine.dispose()
        return {"connect_args": {"options": f"-csearch_path={POSTGRES_SCHEMA}"}}
    return {}


STORAGE_SCHEMES = (
    "use sqlite:///PATH (local file) or postgresql://USER@HOST:PORT/DB (password from PGPASSWORD)"
)


def check_storage_url(url: str) -> sqlalchemy.engine.URL:
    """The parsed `--storage` URL: a SQLite file or PostgreSQL, the two storages documented and
    tested (a ConfigError, exit 2, for anything else)."""
    try:
        parsed = sqlalchemy.engine.make_url(url)
    except sqlalchemy.exc.ArgumentError:
        raise ConfigError(
            f"--storage {redact(url)!r} is not a database URL; {STORAGE_SCHEMES}"
        ) from None
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"--storage {redact(url)!r}: the scheme {parsed.drivername!r} is not supported; "
            f"{STORAGE_SCHEMES}"
        )
    if parsed.drivername == "postgresql":
        # SQLAlchemy 2.1 defaults to psycopg 3; the image ships psycopg2 (as MLflow's does).
        parsed = parsed.set(drivername="postgresql+psycopg2")
    return parsed


def open_storage(
    url: str,
    heartbeat_seconds: int = 10,
    on_stale: StaleTrialCallback | None = None,
    wait_seconds: float = 60.0,
) -> optuna.storages.RDBStorage:
    """The study storage at `url` (SQLite file or PostgreSQL), with worker heartbeats:
    a trial whose worker stops beating for 3 intervals is marked failed by the next worker.
    A PostgreSQL server is waited for up to `wait_seconds` (a Job may start before it)."""
    parsed = check_storage_url(url)
    if parsed.get_backend_name() == "postgresql":
        wait_for_storage(parsed, url, wait_seconds)
    try:
        return optuna.storages.RDBStorage(
            parsed.render_as_string(hide_password=False),
            engine_kwargs=engine_options(parsed),
            heartbeat_interval=heartbeat_seconds,
            grace_period=3 * heartbeat_seconds,
            heartbeat_stale_trial_callback=on_stale,
        )
    except (sqlalchemy.exc.SQLAlchemyError, ModuleNotFoundError) as error:
        raise StudyStorageError(
            f"cannot open the study storage {redact(url)}: {str(error).splitlines()[0][:300]}"
        ) from None


def wait_for_storage(parsed: sqlalchemy.engine.URL, url: str, wait_seconds: float) -> None:
    """Wait for the storage's server to take a connection and a login: StudyStorageError (exit 4)
    if it never does in `wait_seconds`, StudyStorageRefusedError (exit 5) at once if it refuses."""
    try:
        failure = reach_and_log_in(parsed.render_as_string(hide_password=False), wait_seconds)
    except LoginRefusedError as refused:
        raise StudyStorageRefusedError(f"the study storage {redact(url)}: {refused}") from None
    if failure is not None:
        raise StudyStorageError(f"cannot open the study storage {redact(url)}: {failure}")
