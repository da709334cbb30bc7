"""What a client reads of a model that cannot be served: the model asked for, not the store."""

from __future__ import annotations

import pytest

from serving.errors import (
    ARTIFACT_MISSING,
    LOAD_ERROR,
    REGISTRY_MISS,
    REGISTRY_REFUSED,
    UNREACHABLE,
)
from serving.load_failures import REGISTRY_MISS_WORDS, public_reason, redacted
from serving.model import ModelRef
from serving.settings import Settings
from tests.support import imported_by

STORE = "sqlite:///mlflow.db"
REF = ModelRef("shop", "3", "models:/shop/3", "champion")


def settings(**values: str) -> Settings:
    return Settings(**({"mlflow_tracking_uri": STORE} | values))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        (
            {"model_name": "nosuch"},
            f"'nosuch@champion' {REGISTRY_MISS_WORDS}",
        ),
        (
            {"model_name": "shop", "model_alias": "staging"},
            f"'shop@staging' {REGISTRY_MISS_WORDS}",
        ),
        (
            {"model_name": "shop", "model_version": "7"},
            f"'shop/7' {REGISTRY_MISS_WORDS}",
        ),
        (
            {"model_uri": "models:/shop@champion"},
            f"'shop@champion' {REGISTRY_MISS_WORDS}",
        ),
    ],
)
def test_a_model_the_registry_lacks_is_named(values, reason) -> None:
    """It said "the model is not in the model registry": a misspelled MODEL_NAME or alias could
    only be told from the server's log."""
    assert public_reason(REGISTRY_MISS, settings(**values), None) == reason


def test_a_version_that_fails_is_named_with_its_version() -> None:
    named = settings(model_name="shop")
    missing = "the files of 'shop@champion' (version 3) are missing from the model store"
    assert public_reason(ARTIFACT_MISSING, named, REF) == missing
    assert (
        public_reason(LOAD_ERROR, named, REF) == "'shop@champion' (version 3) could not be loaded"
    )
    pinned = settings(model_name="shop", model_version="3")
    assert public_reason(LOAD_ERROR, pinned, REF) == "'shop/3' could not be loaded"


def test_a_folder_is_named_as_given() -> None:
    folder = settings(model_uri="/models/shop")
    assert (
        public_reason(ARTIFACT_MISSING, folder, None)
        == "there is no MLflow model at '/models/shop'"
    )


def test_an_unreachable_registry_keeps_its_address_to_the_logs() -> None:
    unreachable = settings(model_name="shop", mlflow_tracking_uri="http://10.0.0.7:5000")
    reason = public_reason(UNREACHABLE, unreachable, None)
    assert reason == "the model registry is unreachable"


def test_a_model_uri_is_named_without_its_password() -> None:
    uri = settings(model_uri="http://alice:s3cret@models.example.com/shop")
    reason = public_reason(ARTIFACT_MISSING, uri, None)
    assert reason == "there is no MLflow model at 'http://alice:***@models.example.com/shop'"
    assert redacted("http://[::1") == "http://[::1"  # not a URL: nothing to hide


CONNECTION = '(psycopg2.OperationalError) connection to server at "db", port 5432 failed: '


@pytest.mark.parametrize(
    "said",
    [
        'FATAL:  password authentication failed for user "mlflow"',
        "fe_sendauth: no password supplied",
        'FATAL:  database "mlflow" does not exist',
        'FATAL:  no pg_hba.conf entry for host "10.0.0.7", user "mlflow", database "mlflow"',
    ],
)
def test_a_store_that_refuses_the_login_is_told_apart_from_an_unreachable_one(said: str) -> None:
    """A refused database login read as "unreachable" (its text says "connection"), and as a
    missing model when it said "does not exist"."""
    from serving.model import resolve_error

    error = resolve_error(Exception(CONNECTION + said), settings(model_name="shop"))
    assert error.kind == REGISTRY_REFUSED
    reason = public_reason(error.kind, settings(model_name="shop"), None)
    assert reason == "the model registry refused this server's login (the server's log says why)"


def test_an_mlflow_servers_401_is_a_refusal_and_a_server_starting_up_is_not() -> None:
    from mlflow.exceptions import MlflowException

    from serving.model import resolve_error

    shop = settings(model_name="shop", mlflow_tracking_uri="http://10.0.0.7:5000")
    unauthenticated = MlflowException(
        "API request to endpoint /api/2.0/mlflow/registered-models/alias failed with error "
        "code 401 != 200. Response body: 'You are not authenticated.'"
    )
    assert resolve_error(unauthenticated, shop).kind == REGISTRY_REFUSED
    starting = Exception(CONNECTION + "FATAL:  the database system is starting up")
    assert resolve_error(starting, shop).kind == UNREACHABLE


def test_bounding_mlflows_database_tries_needs_no_sqlalchemy_for_a_tracking_server() -> None:
    """The serving image has no SQLAlchemy, which MLflow's database module needs: every load
    failed with `No module named 'sqlalchemy'` once the server bounded MLflow's database tries
    for a tracking server's URI too. A fresh interpreter shows what the call imports."""
    code = "from serving.model import one_database_try; one_database_try('http://mlflow:5000', '')"
    assert imported_by(code, "sqlalchemy", "mlflow.store.db.utils") == [False, False]


def test_a_database_store_gets_one_mlflow_try() -> None:
    from mlflow.store.db import utils as db_utils

    from serving.model import one_database_try

    tries = db_utils.MAX_RETRY_COUNT
    try:
        one_database_try("http://mlflow:5000", "")
        assert tries == db_utils.MAX_RETRY_COUNT
        one_database_try("http://mlflow:5000", "postgresql+psycopg2://u@db/registry")
        assert db_utils.MAX_RETRY_COUNT == 1
    finally:
        db_utils.MAX_RETRY_COUNT = tries
