"""Reaching MLflow: the tracking URI, MLflow's own HTTP retries (and the wait for a database
store's server) bounded by the configured timeout, telling "unreachable" from "refused", starting
and ending a run so that a retried call cannot create a second one, and failing runs that a dead
process left RUNNING.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
from sqlalchemy.exc import SQLAlchemyError

from training.errors import TrackingError, TrackingRefusedError
from training.logs import run_links_not_printed
from training.retries import DEFAULT_POLICY, RetryPolicy, is_transient
from training.store_database import LoginRefusedError, database_of, reach_and_log_in
from training.tracking_uri import (  # noqa: F401  re-exported: the CLIs' callers use them here
    DEFAULT_TRACKING_URI,
    check_store_allowed,
    redact,
    resolve_tracking_uri,
    sqlite_file,
)

log = logging.getLogger(__name__)

OWNER_HOST_TAG = "product.host"
OWNER_PID_TAG = "product.pid"
RUN_TOKEN_TAG = "product.run_token"
_UNREACHABLE = ("max retries exceeded", "connection", "timed out", "temporarily unavailable")


def retry_settings(timeout_seconds: float) -> dict[str, str]:
    """MLflow's HTTP retry settings so that every request of a run keeps retrying an unreachable
    server for about `timeout_seconds`: with a backoff factor of 1, urllib3 sleeps 0, 2, 4, 8 ...
    seconds between tries, so n retries wait about 2**n - 2 seconds in all."""
    retries = 1
    while 2**retries - 2 < timeout_seconds and retries < 12:
        retries += 1
    return {
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(retries),
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
        "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(int(min(120, max(10, timeout_seconds)))),
    }


def bound_retries(timeout_seconds: float) -> None:
    """Every MLflow request of this process retries an unreachable server for about
    `timeout_seconds` (`retry_settings`), unless the environment already sets those variables;
    so does `connect` a database server (`wait_for_databases`)."""
    global _timeout_seconds
    _timeout_seconds = timeout_seconds
    for name, value in retry_settings(timeout_seconds).items():
        os.environ.setdefault(name, value)


_timeout_seconds = DEFAULT_POLICY.timeout_seconds  # set by bound_retries


def wait_for_databases(tracking_uri: str, timeout_seconds: float, what: str) -> None:
    """Wait up to `timeout_seconds` for the database server of the tracking URI (and of a
    registry URI given apart) to accept a connection, else a TrackingError (exit 4): MLflow's own
    wait is ten tries over about 100 s whatever the timeout, and a host that drops packets can
    hold each try for minutes. MLflow's tries are bounded too, for a server that answers and
    refuses (a password, a database missing)."""
    registry = os.environ.get("MLFLOW_REGISTRY_URI", "").strip()
    for uri in dict.fromkeys(uri for uri in (tracking_uri, registry) if uri):
        if database_of(uri) is None:
            continue
        bound_engine_tries(timeout_seconds)
        wait_for_database(uri, timeout_seconds, what)


def wait_for_database(uri: str, timeout_seconds: float, what: str) -> None:
    """Wait up to `timeout_seconds` for the database server of `uri` to take a connection and a
    login: exit 4 if it never does, exit 5 at once if it refuses the login or the database."""
    try:
        failure = reach_and_log_in(uri, timeout_seconds)
    except LoginRefusedError as refused:
        raise TrackingRefusedError(f"{what}: {refused}") from None
    if failure is not None:
        raise as_tracking_error(ConnectionError(failure), what)


def engine_tries(timeout_seconds: float) -> int:
    """How many times MLflow may try to open a database store (it sleeps 0.1 * (2**n - 1) s after
    its n-th failure, ten tries at most) for its sleeps to stay within `timeout_seconds`."""
    tries, slept = 1, 0.0
    while tries < MLFLOW_ENGINE_TRIES and slept + 0.1 * (2**tries - 1) <= timeout_seconds:
        slept += 0.1 * (2**tries - 1)
        tries += 1
    return tries


MLFLOW_ENGINE_TRIES = 10  # mlflow.store.db.utils.MAX_RETRY_COUNT as MLflow ships it


def bound_engine_tries(timeout_seconds: float) -> None:
    """Set MLflow's count of tries to open a database store (`engine_tries`): a module constant,
    its only setting, read at each try."""
    from mlflow.store.db import utils as db_utils

    if isinstance(getattr(db_utils, "MAX_RETRY_COUNT", None), int):
        db_utils.MAX_RETRY_COUNT = engine_tries(timeout_seconds)


def unpooled_sqlite_connections() -> None:
    """A local SQLite file store's connections are closed as each MLflow call ends (MLflow's own
    pool setting) unless the environment sets another pool: a signal landing in a write's commit
    left that connection pooled with the database's write lock held, so marking the run KILLED
    waited 20 s for the lock and failed (exit 5, the run left RUNNING)."""
    os.environ.setdefault("MLFLOW_SQLALCHEMYSTORE_POOLCLASS", "NullPool")


def as_tracking_error(error: BaseException, what: str) -> TrackingError:
    """An MLflow failure as exit 4 (unreachable, or failing in a way a retry could cure) or
    exit 5 (it answered and refused)."""
    text = " ".join(str(error).split())
    if is_transient(error) or any(marker in text.lower() for marker in _UNREACHABLE):
        return TrackingError(
            f"{what}: MLflow did not answer ({text}); check MLFLOW_TRACKING_URI / "
            "--tracking-uri and that the server is up (--tracking-timeout-seconds sets how long "
            "to retry)"
        )
    return TrackingRefusedError(f"{what}: MLflow refused the request: {text}")


def connect(tracking_uri: str, policy: RetryPolicy | None = None) -> MlflowClient:
    """A client for the server, once it answered (MLflow retries within the configured time, or
    the `policy`'s, which also retries cut answers and error statuses)."""
    import mlflow

    what = f"connecting to {redact(tracking_uri)}"
    wait_for_databases(tracking_uri, policy.timeout_seconds if policy else _timeout_seconds, what)
    if sqlite_file(tracking_uri) is not None:  # not in memory: each connection would be empty
        unpooled_sqlite_connections()
    mlflow.set_tracking_uri(tracking_uri)
    if redact(tracking_uri) != tracking_uri:  # MLflow would print run links with the password
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    try:
        client = MlflowClient(tracking_uri=tracking_uri)  # opens a database store, or fails
        if policy is None:
            client.search_experiments(max_results=1)
        else:
            policy.call(what, client.search_experiments, max_results=1)
    except (MlflowException, SQLAlchemyError) as error:
        raise as_tracking_error(error, what) from None
    return client


def start_run_once(
    policy: RetryPolicy,
    client: MlflowClient,
    experiment_id: str,
    run_name: str | None,
    parent_run_id: str | None = None,
) -> str:
    """Create the run (retried: a retry finds the run a cut answer had already created, by a token
    tag) and make it the active run of this process, nested in `parent_run_id` if given (the
    active run). Returns its id."""
    tags = owner_tags() | {RUN_TOKEN_TAG: uuid.uuid4().hex}
    if parent_run_id:
        tags[MLFLOW_PARENT_RUN_ID] = parent_run_id

    def find_or_create() -> str:
        found = client.search_runs(
            [experiment_id], f"tags.`{RUN_TOKEN_TAG}` = '{tags[RUN_TOKEN_TAG]}'", max_results=1
        )
        if found:
            return str(found[0].info.run_id)
        return str(client.create_run(experiment_id, run_name=run_name, tags=tags).info.run_id)

    import mlflow

    run_id = policy.call("starting the run", find_or_create)
    policy.call("starting the run", mlflow.start_run, run_id=run_id, nested=bool(parent_run_id))
    return run_id


def end_run(policy: RetryPolicy, client: MlflowClient, run_id: str, status: str) -> None:
    """Set the run's final status (retried), then let go of it as this process's active run, even
    when the status could not be set."""
    try:
        policy.call(f"marking the run {status}", client.set_terminated, run_id, status)
    finally:
        let_go_of_active_run(status)


def let_go_of_active_run(status: str) -> None:
    """Drop this process's active run. MLflow's `end_run` sends the status again (recorded
    already, or not sendable when the server is gone), trying once: left active, MLflow's own
    `end_run` at exit retried a gone server for the whole timeout once more."""
    import mlflow

    try:
        with run_links_not_printed(), mlflow_tries_once():  # the links were printed as marked
            mlflow.end_run(status)
    except (MlflowException, requests.RequestException) as error:
        log.debug("ending the active run: %s", error)


@contextmanager
def mlflow_tries_once() -> Iterator[None]:
    """MLflow's requests inside are tried once, for at most 5 s (its variables, read per call)."""
    once = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}
    saved = {name: os.environ.get(name) for name in once}
    os.environ.update(once)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def end_failed_run(policy: RetryPolicy, client: MlflowClient, run_id: str) -> None:
    """Mark the run FAILED on the way out of an error, which stays the error reported: when MLflow
    cannot be told, the next run marks this one FAILED (`fail_abandoned_runs`)."""
    try:
        end_run(policy, client, run_id, "FAILED")
    except TrackingError as error:
        log.warning("could not mark run %s FAILED: %s", run_id, error)


def owner_tags() -> dict[str, str]:
    """Tags naming the process that runs a run, so a later run can tell it was left behind."""
    return {OWNER_HOST_TAG: socket.gethostname(), OWNER_PID_TAG: str(os.getpid())}


def fail_abandoned_runs(
    client: MlflowClient, experiment_id: str, max_age_hours: float
) -> list[str]:
    """Mark FAILED the runs left RUNNING by a process that is gone: one of this host whose pid no
    longer runs, or any older than `max_age_hours`. Returns their ids."""
    runs = client.search_runs([experiment_id], "attributes.status = 'RUNNING'", max_results=200)
    failed = []
    for run in runs:
        if _abandoned(run, max_age_hours):
            client.set_terminated(run.info.run_id, "FAILED")
            log.warning("marked run %s FAILED: its process is gone", run.info.run_id)
            failed.append(run.info.run_id)
    return failed


def _abandoned(run: Any, max_age_hours: float) -> bool:
    tags = run.data.tags
    age_hours = (time.time() * 1000 - run.info.start_time) / 3_600_000
    if age_hours > max_age_hours:
        return True
    if tags.get(OWNER_HOST_TAG) != socket.gethostname() or not tags.get(OWNER_PID_TAG):
        return False
    pid = int(tags[OWNER_PID_TAG])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
