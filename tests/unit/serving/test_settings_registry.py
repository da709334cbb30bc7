"""Settings the registry or the store could never honour stop start-up (exit 2, one line): a model
name MLflow refuses, `models:/NAME` without a version or alias, MODEL_VERSION with another alias,
a database store whose SQLAlchemy or driver is not installed. Each was taken, then retried forever
as "the model registry is unreachable" or "no MLflow model at ..."."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from serving.settings import Settings, describe_settings_error
from tests.support import imported_by
from tests.unit.serving.test_settings import run_main

PORT = "18550"  # never listened on: every case stops before the server starts


def refusal(**values: str) -> str:
    """The start-up message for settings `values`; fails the test if they are taken."""
    with pytest.raises(ValidationError) as caught:
        Settings(**values)  # type: ignore[arg-type]
    return describe_settings_error(caught.value)


def without_sqlalchemy(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process as if SQLAlchemy were not installed: importing it, or the modules of it
    already imported, raises ImportError."""
    for name in [name for name in sys.modules if name.partition(".")[0] == "sqlalchemy"]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "sqlalchemy", None)


def hidden(folder: Path, module: str) -> str:
    """A folder to put first on PYTHONPATH in which `module` cannot be imported, as where it is
    not installed (the serving image has no SQLAlchemy)."""
    package = folder / module
    package.mkdir(parents=True)
    message = f"No module named {module!r}"
    (package / "__init__.py").write_text(f"raise ImportError({message!r})\n")
    return str(folder)


@pytest.mark.parametrize("name", ["a/b", "a:b", "shop@champion", " "])
def test_a_model_name_mlflow_refuses_stops_start_up(name: str) -> None:
    message = refusal(model_name=name)
    assert message.startswith("invalid setting MODEL_NAME: a registered model name must not")
    assert "'/', ':' or '@'" in message


@pytest.mark.parametrize("uri", ["models:/shop", "models:/shop/", "models:/shop@", "models:/"])
def test_a_registry_uri_without_version_or_alias_stops_start_up(uri: str) -> None:
    message = refusal(model_uri=uri)
    assert message.startswith("invalid setting MODEL_URI: a registered model needs a version or")
    assert "add @ALIAS or /VERSION" in message and "@champion" in message


@pytest.mark.parametrize(
    "uri",
    [
        "models:/shop/3",
        "models:/shop@canary",
        "models:/shop/latest",  # MLflow's own suffixes are left to MLflow
        "models:/m-0123456789abcdef",  # a logged model's ID
        "runs:/abc/model",
        "/models/classifier",
    ],
)
def test_other_model_uris_are_taken(uri: str) -> None:
    assert Settings(model_uri=uri).model_uri == uri


@pytest.mark.parametrize(
    ("alias", "message"),
    [
        ("latest", "MLflow reserves the alias 'latest'"),
        ("V2", "MLflow reserves the alias 'V2'"),
        ("bad alias", "only letters, digits, '_' and '-'"),
    ],
)
def test_an_alias_no_version_can_carry_stops_start_up(alias: str, message: str) -> None:
    """MLflow refuses to read or set such an alias: it was retried forever as "unreachable"."""
    assert message in refusal(model_alias=alias)
    assert message in refusal(model_uri=f"models:/shop@{alias}")


def test_a_registry_uri_naming_a_name_mlflow_refuses_stops_start_up() -> None:
    assert "must not be blank nor contain" in refusal(model_uri="models:/a:b/3")


def test_a_pinned_version_with_another_alias_stops_start_up() -> None:
    message = refusal(model_version="1", model_alias="challenger")
    assert message.startswith("invalid settings: set MODEL_VERSION or MODEL_ALIAS, not both")
    assert "MODEL_VERSION=1" in message and "MODEL_ALIAS=challenger" in message


def test_a_model_uri_with_another_alias_stops_start_up() -> None:
    """MODEL_URI names what to serve; MODEL_ALIAS=x beside models:/n@y was ignored silently."""
    message = refusal(model_uri="models:/shop@champion", model_alias="staging")
    assert "set MODEL_URI or MODEL_ALIAS, not both" in message
    assert "models:/NAME@staging" in message
    assert Settings(model_uri="models:/shop@champion", model_alias="champion").model_uri


def test_a_pinned_version_overrides_the_default_alias() -> None:
    """README: MODEL_VERSION pins a version "instead of the alias"; the Deployment sets
    MODEL_ALIAS=champion, the default, which a pin in an overlay must still override."""
    settings = Settings(model_version="3", model_alias="champion")
    assert settings.model_version == "3" and not settings.follows_alias


def test_a_database_driver_that_is_not_installed_stops_start_up(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg: ImportError
    message = refusal(mlflow_tracking_uri="postgresql://u:secret@127.0.0.1:18599/db")
    assert message.startswith("invalid settings: MLFLOW_TRACKING_URI needs the postgresql driver")
    assert "pip install 'psycopg[binary]'" in message and "postgresql+psycopg2://" in message
    assert "secret" not in message


def test_a_registry_database_driver_is_checked_too(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pymysql", None)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", "mysql+pymysql://u@127.0.0.1:18599/registry")
    message = refusal(mlflow_tracking_uri="http://127.0.0.1:18599")
    assert message.startswith("invalid settings: MLFLOW_REGISTRY_URI needs the mysql driver")
    assert "pip install 'pymysql'" in message


def test_a_database_url_sqlalchemy_cannot_read_stops_start_up() -> None:
    message = refusal(mlflow_tracking_uri="postgresql+nosuchdriver://u@db/mlflow")
    assert "MLFLOW_TRACKING_URI is not a database URL SQLAlchemy reads" in message


@pytest.mark.parametrize("uri", ["sqlite:///mlflow.db", "postgresql+psycopg2://u@db/mlflow"])
def test_a_database_store_without_sqlalchemy_stops_start_up(monkeypatch, uri: str) -> None:
    without_sqlalchemy(monkeypatch)
    message = refusal(mlflow_tracking_uri=uri)
    assert "MLFLOW_TRACKING_URI is a database" in message
    assert "SQLAlchemy is not installed" in message and "MLflow tracking server" in message


def test_a_model_folder_needs_no_database_driver(monkeypatch) -> None:
    without_sqlalchemy(monkeypatch)
    settings = Settings(mlflow_tracking_uri="postgresql://u@db/m", model_uri="/models/c")
    assert settings.model_uri == "/models/c"


def test_the_unknown_scheme_message_recommends_a_database_uri_that_works() -> None:
    message = refusal(mlflow_tracking_uri="ftp://x/y")
    assert "postgresql+psycopg2://" in message and "postgresql://..." not in message


def test_a_tracking_servers_uri_imports_no_sqlalchemy() -> None:
    """The serving image, which talks to a tracking server, has no SQLAlchemy."""
    code = (
        "from serving.settings import Settings; Settings(mlflow_tracking_uri='http://mlflow:5000')"
    )
    assert imported_by(code, "sqlalchemy", "mlflow.store.db.utils") == [False, False]


@pytest.mark.parametrize(
    ("env", "hide", "expected"),
    [
        ({"MODEL_NAME": "a/b"}, None, "invalid setting MODEL_NAME: a registered model name"),
        ({"MODEL_URI": "models:/pc"}, None, "e.g. models:/pc@champion"),
        (
            {"MODEL_VERSION": "1", "MODEL_ALIAS": "challenger"},
            None,
            "set MODEL_VERSION or MODEL_ALIAS, not both",
        ),
        (
            {"MLFLOW_TRACKING_URI": "postgresql://u@127.0.0.1:18599/db"},
            "psycopg",
            "pip install 'psycopg[binary]'",
        ),
        (
            {"MLFLOW_TRACKING_URI": "sqlite:///mlflow.db"},
            "sqlalchemy",
            "SQLAlchemy is not installed here (the serving image has none)",
        ),
    ],
)
def test_the_server_refuses_them_at_start_up(
    tmp_path, env: dict[str, str], hide: str | None, expected: str
) -> None:
    """A real `python -m serving`: exit 2 and one line, where it used to start and retry."""
    shadow = {"PYTHONPATH": hidden(tmp_path / "shadow", hide)} if hide else {}
    result = run_main(env | shadow | {"PORT": PORT})
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert expected in result.stderr
