"""Settings come from exactly the documented environment variables; bad ones stop start-up."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from pydantic import ValidationError

from serving import settings as settings_module
from serving.settings import Settings, describe_settings_error, sqlite_file
from tests.support import REPO


def test_defaults() -> None:
    settings = Settings()
    assert settings.mlflow_tracking_uri == "sqlite:///mlflow.db"
    assert (settings.model_name, settings.model_alias) == ("product-classifier", "champion")
    assert settings.model_version is None and settings.model_uri is None
    assert (settings.host, settings.port, settings.workers) == ("0.0.0.0", 8000, 1)
    assert settings.reload_interval_seconds == 30
    assert settings.batch_max_size == 100 and settings.batch_max_wait_ms == 2
    assert settings.model_threads is None  # one per usable core
    assert settings.log_product_text is False
    assert settings.follows_alias


def test_every_documented_variable_is_read(monkeypatch) -> None:
    values = {
        "MLFLOW_TRACKING_URI": "http://mlflow:5000",
        "MODEL_NAME": "other",
        "MODEL_ALIAS": "canary",
        "HOST": "127.0.0.1",
        "PORT": "9000",
        "WORKERS": "3",
        "RELOAD_INTERVAL_SECONDS": "0.0",
        "MAX_PRODUCTS_PER_REQUEST": "10",
        "MAX_TEXT_CHARS": "50",
        "MAX_BODY_BYTES": "2048",
        "BATCH_MAX_SIZE": "8",
        "BATCH_MAX_WAIT_MS": "0.5",
        "MODEL_THREADS": "1",
        "SHUTDOWN_TIMEOUT_SECONDS": "5.0",
        "LOG_LEVEL": "debug",
        "LOG_PRODUCT_TEXT": "true",
        "PROMETHEUS_MULTIPROC_DIR": "/tmp/metrics",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    for name, value in values.items():
        assert str(getattr(settings, name.lower())).lower() == value.lower(), name


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"PORT": "70000"}, "PORT"),
        ({"PORT": "http"}, "PORT"),
        ({"WORKERS": "0"}, "WORKERS"),
        ({"MODEL_VERSION": "latest"}, "MODEL_VERSION"),
        ({"MODEL_VERSION": "2", "MODEL_URI": "/models/x"}, "MODEL_URI"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
        ({"RELOAD_INTERVAL_SECONDS": "-1"}, "RELOAD_INTERVAL_SECONDS"),
        ({"MAX_BODY_BYTES": "10"}, "MAX_BODY_BYTES"),
        ({"BATCH_MAX_SIZE": "0"}, "BATCH_MAX_SIZE"),
        ({"MODEL_THREADS": "0"}, "MODEL_THREADS"),
        ({"LOG_PRODUCT_TEXT": "maybe"}, "LOG_PRODUCT_TEXT"),
        ({"MLFLOW_TRACKING_URI": "bogus://x"}, "MLFLOW_TRACKING_URI"),
        ({"MLFLOW_TRACKING_URI": "sqlite+a+b:///x.db"}, "MLFLOW_TRACKING_URI"),
    ],
)
def test_bad_values_are_named(monkeypatch, variables, named) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as caught:
        Settings()
    message = describe_settings_error(caught.value)
    assert message.startswith(("invalid setting ", "invalid settings: "))
    assert named in message or "MODEL_VERSION or MODEL_URI" in message


@pytest.mark.parametrize(
    "uri",
    [
        "sqlite:///mlflow.db",
        "postgresql+psycopg2://user@db/mlflow",
        "HTTPS://mlflow.example.com",
        "file:///srv/mlruns",
        "./mlruns",
        r"C:\mlruns",
        "databricks",
        "databricks://profile",
        "databricks-uc",
    ],
)
def test_tracking_uris_mlflow_can_use_are_taken(monkeypatch, uri: str) -> None:
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # folders: see the tests below
    assert Settings(mlflow_tracking_uri=uri).mlflow_tracking_uri == uri


@pytest.mark.parametrize("uri", ["file:/tmp/x", "/tmp/x", "./mlruns", r"C:\mlruns"])
@pytest.mark.parametrize("allow", [None, "false", "0"])
def test_a_folder_store_mlflow_refuses_stops_start_up(monkeypatch, uri, allow) -> None:
    if allow is None:
        monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    else:
        monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", allow)
    with pytest.raises(ValidationError) as caught:
        Settings(mlflow_tracking_uri=uri)
    message = describe_settings_error(caught.value)
    assert len(message.splitlines()) == 1 and "maintenance mode" in message
    assert "MLFLOW_ALLOW_FILE_STORE=true" in message and "sqlite:///mlflow.db" in message


@pytest.mark.parametrize("allow", ["true", "TRUE", "1"])
def test_a_folder_store_is_taken_when_mlflow_allows_it(monkeypatch, allow) -> None:
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", allow)
    assert Settings(mlflow_tracking_uri="file:/tmp/x").mlflow_tracking_uri == "file:/tmp/x"


def test_an_unreadable_allow_file_store_value_is_named(monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "yes")  # MLflow itself raises on it
    with pytest.raises(ValidationError) as caught:
        Settings(mlflow_tracking_uri="./mlruns")
    assert "MLFLOW_ALLOW_FILE_STORE must be true or false, got 'yes'" in str(caught.value)


@pytest.mark.parametrize("model_uri", ["/models/classifier", "file:///models/c", "s3://b/m"])
def test_a_model_folder_needs_no_tracking_store(monkeypatch, model_uri) -> None:
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    settings = Settings(mlflow_tracking_uri="./mlruns", model_uri=model_uri)
    assert settings.model_uri == model_uri


@pytest.mark.parametrize("model_uri", ["models:/m@champion", "runs:/abc/model"])
def test_a_model_uri_read_through_a_refused_folder_store_stops_start_up(
    monkeypatch, model_uri
) -> None:
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    with pytest.raises(ValidationError, match="maintenance mode"):
        Settings(mlflow_tracking_uri="./mlruns", model_uri=model_uri)


def test_a_tracking_uri_scheme_mlflow_cannot_use_is_refused_at_start_up() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(mlflow_tracking_uri="bogus://x")
    message = describe_settings_error(caught.value)
    assert message.startswith("invalid setting MLFLOW_TRACKING_URI: MLflow has no store for")
    assert (
        "'bogus'" in message and "sqlite:///mlflow.db" in message and "got 'bogus://x'" in message
    )


@pytest.mark.parametrize("tracking", ["sqlite:////srv/mlflow.db", "http://mlflow:5000"])
@pytest.mark.parametrize("registry", ["/srv/registry", "file:./mlruns"])
def test_a_folder_given_only_as_the_registry_uri_stops_start_up(
    monkeypatch, tracking: str, registry: str
) -> None:
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", registry)
    with pytest.raises(ValidationError) as caught:
        Settings(mlflow_tracking_uri=tracking)
    message = describe_settings_error(caught.value)
    assert message.startswith(f"invalid settings: MLFLOW_REGISTRY_URI={registry!r} is a folder")
    assert "unset MLFLOW_REGISTRY_URI" in message and "MLFLOW_ALLOW_FILE_STORE=true" in message
    assert Settings(mlflow_tracking_uri=tracking, model_uri="/models/c")  # no store needed
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    assert Settings(mlflow_tracking_uri=tracking)


def test_a_registry_uri_scheme_mlflow_cannot_use_stops_start_up(monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", "bogus://x")
    with pytest.raises(ValidationError) as caught:
        Settings(mlflow_tracking_uri="http://mlflow:5000")
    message = describe_settings_error(caught.value)
    assert message.startswith("invalid settings: MLFLOW_REGISTRY_URI='bogus://x': MLflow has no")
    assert "'bogus'" in message and "unset MLFLOW_REGISTRY_URI" in message


@pytest.mark.parametrize(
    "registry", ["", "sqlite:///registry.db", "postgresql+psycopg2://u@db/r", "databricks-uc"]
)
def test_a_registry_uri_mlflow_can_open_is_taken(monkeypatch, registry: str) -> None:
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", registry)
    assert Settings(mlflow_tracking_uri="http://mlflow:5000")
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", "databricks")  # MLflow's scheme, not a folder
    assert Settings(mlflow_tracking_uri="databricks")


def test_a_scheme_a_plugin_registers_is_taken(monkeypatch) -> None:
    monkeypatch.setattr(settings_module, "plugin_schemes", lambda: frozenset({"bogus"}))
    assert Settings(mlflow_tracking_uri="bogus://x").mlflow_tracking_uri == "bogus://x"


def test_the_known_schemes_are_those_of_mlflows_store_registries() -> None:
    from mlflow.tracking._model_registry.utils import _get_store_registry
    from mlflow.tracking._tracking_service.utils import _tracking_store_registry

    plugins = settings_module.plugin_schemes()
    known = settings_module.MLFLOW_SCHEMES | settings_module.MLFLOW_DATABASES
    assert set(_tracking_store_registry._registry) - plugins == known
    assert set(_get_store_registry()._registry) - plugins == known


def test_pinned_version_and_folder_do_not_follow_the_alias() -> None:
    assert not Settings(model_version="3").follows_alias
    assert not Settings(model_uri="/models/classifier").follows_alias
    assert Settings(model_version=" ").model_version is None  # blank means unset


@pytest.mark.parametrize(
    ("uri", "name"),
    [
        ("models:/shop/3", "shop"),
        ("models:/shop@champion", "shop"),
        ("/models/classifier", "product-classifier"),
        ("runs:/abc/model", "product-classifier"),
    ],
)
def test_the_served_name_is_the_one_a_registry_uri_gives(uri: str, name: str) -> None:
    assert Settings(model_uri=uri).served_name == name


def run_main(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k.upper() not in {"PORT", "WORKERS"}}
    return subprocess.run(
        [sys.executable, "-m", "serving", *args],
        env=clean | env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_bad_setting_stops_start_up_with_exit_code_2_and_no_traceback(tmp_path) -> None:
    (tmp_path / "a-file").write_text("not a folder\n")
    unwritable = str(tmp_path / "a-file" / "predictions.jsonl")  # was taken, then lost every line
    bad = {"PORT": "not-a-port", "WORKERS": "0", "MLFLOW_TRACKING_URI": "bogus://x"}
    result = run_main(bad | {"PREDICTION_LOG": unwritable})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("invalid setting MLFLOW_TRACKING_URI: ") and "bogus" in lines[0]
    assert lines[1].startswith("invalid setting PORT: ") and "not-a-port" in lines[1]
    assert lines[2].startswith("invalid setting WORKERS: ")
    assert lines[3].startswith("invalid setting PREDICTION_LOG: cannot be opened for appending")


def test_help_lists_the_environment_variables() -> None:
    result = run_main({}, "--help")
    assert result.returncode == 0
    for name in ("MODEL_ALIAS", "RELOAD_INTERVAL_SECONDS", "MAX_BODY_BYTES", "LOG_PRODUCT_TEXT"):
        assert name in result.stdout


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("sqlite:///mlflow.db", "mlflow.db"),
        ("sqlite:////abs/store.db", "/abs/store.db"),
        ("sqlite:///mlflow.db?timeout=5", "mlflow.db"),
        ("sqlite+pysqlite:////abs/my%20store.db", "/abs/my store.db"),
        ("sqlite://", None),
        ("sqlite:///:memory:", None),
        ("sqlite:///file:store.db?mode=ro&uri=true", None),
        ("postgresql://db/mlflow", None),
        ("http://mlflow:5000", None),
    ],
)
def test_the_sqlite_file_is_read_as_sqlalchemy_reads_it(uri: str, expected: str | None) -> None:
    found = sqlite_file(uri)
    assert (None if found is None else str(found)) == expected
