from __future__ import annotations

import time

import pytest

from tests.support import refused_port, signal_handlers_restored, tracking_uri_restored
from training.errors import ConfigError, TrackingError
from training.retries import RetryPolicy
from training.tracking import (
    check_store_allowed,
    connect,
    end_run,
    redact,
    retry_settings,
    start_run_once,
)


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("http://alice:s3cret@mlflow:5000", "http://alice:***@mlflow:5000"),
        ("postgresql://mlflow:p%40ss:w@db/mlflow?x=1", "postgresql://mlflow:***@db/mlflow?x=1"),
        ("https://token@mlflow.example.com/path", "https://token@mlflow.example.com/path"),
        ("sqlite:///mlflow.db", "sqlite:///mlflow.db"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
    ],
)
def test_a_uri_is_shown_without_its_password(uri: str, shown: str) -> None:
    assert redact(uri) == shown


@pytest.mark.parametrize("timeout", [5, 30, 60, 300])
def test_retries_cover_the_timeout_and_not_twice_more(timeout: float) -> None:
    retries = int(retry_settings(timeout)["MLFLOW_HTTP_REQUEST_MAX_RETRIES"])
    # urllib3 with a backoff factor of 1 sleeps 0, 2, 4 ... 2**(n-1) s before its n retries
    slept = sum(2 ** (k - 1) for k in range(2, retries + 1))
    assert timeout <= slept < 2 * timeout + 2


@pytest.mark.parametrize("uri", ["file:/tmp/x", "/tmp/x", "./mlruns", "mlruns", r"C:\mlruns"])
def test_a_folder_store_mlflow_refuses_is_a_config_error(monkeypatch, uri) -> None:
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    with pytest.raises(ConfigError) as caught:
        check_store_allowed(uri)
    message = str(caught.value)
    assert caught.value.exit_code == 2 and "\n" not in message and "maintenance mode" in message
    assert "MLFLOW_ALLOW_FILE_STORE=true" in message and "sqlite:///mlflow.db" in message


def test_the_folder_store_check_reads_the_environment_uri(monkeypatch) -> None:
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "file:/tmp/x")
    with pytest.raises(ConfigError, match="'file:/tmp/x'"):
        check_store_allowed(None)


@pytest.mark.parametrize("uri", ["file:/tmp/x", "./mlruns"])
def test_a_folder_store_mlflow_allows_passes(monkeypatch, uri) -> None:
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    check_store_allowed(uri)


@pytest.mark.parametrize(
    "uri", ["sqlite:///mlflow.db", "http://mlflow:5000", "postgresql+psycopg2://u:p@db/mlflow"]
)
def test_other_stores_pass_the_folder_check(monkeypatch, uri) -> None:
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    check_store_allowed(uri)


@pytest.mark.parametrize("tracking", ["sqlite:///mlflow.db", "http://mlflow:5000"])
@pytest.mark.parametrize("registry", ["/srv/registry", "file:./mlruns"])
def test_a_folder_given_only_as_the_registry_uri_is_checked_too(
    monkeypatch, tracking: str, registry: str
) -> None:
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", registry)
    with pytest.raises(ConfigError) as caught:
        check_store_allowed(tracking)
    message = str(caught.value)
    assert message.startswith(f"the registry URI {registry!r} (MLFLOW_REGISTRY_URI) is a folder")
    assert "unset MLFLOW_REGISTRY_URI" in message and "MLFLOW_ALLOW_FILE_STORE=true" in message
    assert caught.value.exit_code == 2
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    check_store_allowed(tracking)


@pytest.mark.parametrize(
    ("variable", "uri", "what"),
    [
        ("MLFLOW_REGISTRY_URI", "bogus://x", "the registry URI 'bogus://x' (MLFLOW_REGISTRY_URI)"),
        ("MLFLOW_TRACKING_URI", "bogus://x", "the tracking URI 'bogus://x' (--tracking-uri"),
    ],
)
def test_a_store_scheme_mlflow_does_not_know_is_a_config_error(
    monkeypatch, variable: str, uri: str, what: str
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv(variable, uri)
    with pytest.raises(ConfigError) as caught:
        check_store_allowed(None)
    message = str(caught.value)
    assert message.startswith(what) and "no store for the scheme 'bogus'" in message
    assert "sqlite:///mlflow.db" in message and caught.value.exit_code == 2


@pytest.mark.parametrize(
    "registry", ["", "sqlite:///registry.db", "postgresql+psycopg2://u@db/r", "databricks-uc"]
)
def test_a_registry_uri_mlflow_can_open_passes(monkeypatch, registry: str) -> None:
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", registry)
    check_store_allowed("http://mlflow:5000")


def test_an_unreadable_allow_file_store_value_is_a_config_error(monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "yes")
    with pytest.raises(ConfigError, match="must be true or false, got 'yes'"):
        check_store_allowed("./mlruns")


@pytest.mark.parametrize(
    ("module", "argv"),
    [
        ("training.cli", ["--data", "missing.csv"]),  # refused before the catalog is read
        ("training.tune", ["--trials", "1"]),
        ("batch.cli", ["--model", "models:/m@champion", "--data", "x.csv", "--output", "o.csv"]),
        ("training.monitor", ["should-retrain", "--prediction-log", "missing.jsonl"]),
    ],
)
@pytest.mark.parametrize(
    "env",
    [
        {"MLFLOW_TRACKING_URI": "file:./mlruns"},
        {"MLFLOW_TRACKING_URI": "sqlite:///mlflow.db", "MLFLOW_REGISTRY_URI": "file:./mlruns"},
    ],
)
def test_every_cli_stops_at_start_up_on_a_refused_folder_store(
    monkeypatch, capsys, tmp_path, module, argv, env
) -> None:
    import importlib

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with signal_handlers_restored(), pytest.raises(SystemExit) as caught:
        importlib.import_module(module).main(argv)
    assert caught.value.code == 2
    error = capsys.readouterr().err.strip()
    assert "maintenance mode" in error and len(error.splitlines()) == 1
    assert not (tmp_path / "mlruns").exists()


def test_a_signal_in_a_commit_leaves_a_sqlite_store_writable(tmp_path, monkeypatch) -> None:
    """A KeyboardInterrupt raised as a write commits (where a signal can land) left the pooled
    connection holding SQLite's write lock: marking the run failed waited 20 s and failed."""
    from sqlalchemy import event

    monkeypatch.setenv("MLFLOW_SQLALCHEMYSTORE_POOLCLASS", "")  # put back unset after the test
    monkeypatch.delenv("MLFLOW_SQLALCHEMYSTORE_POOLCLASS")
    client = connect(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run_id = client.create_run(client.create_experiment("interrupted")).info.run_id
    engine = client._tracking_client.store.engine  # the only way in to the commit
    armed = [True]

    def signal_lands(*_: object) -> None:
        if armed:
            armed.clear()
            raise KeyboardInterrupt("signal 2")

    event.listen(engine, "commit", signal_lands)
    with pytest.raises(KeyboardInterrupt):
        client.log_param(run_id, "written", "as the signal came")
    started = time.monotonic()
    end_run(RetryPolicy(5.0), client, run_id, "KILLED")
    assert time.monotonic() - started < 3
    run = client.get_run(run_id)
    assert run.info.status == "KILLED" and run.data.params == {}


def test_a_run_that_cannot_be_marked_is_no_longer_the_active_run(tmp_path, monkeypatch) -> None:
    """Left active when the server was gone, MLflow's own `end_run` at exit retried it for the
    whole timeout once more after the error was printed."""
    import mlflow
    from mlflow.tracking import MlflowClient

    with tracking_uri_restored():
        client = connect(f"sqlite:///{tmp_path / 'mlflow.db'}")
        experiment_id = client.create_experiment("gone")
        run_id = start_run_once(RetryPolicy(5.0), client, experiment_id, "gone")
        try:
            with refused_port() as port:
                uri = f"http://127.0.0.1:{port}"
                monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
                mlflow.set_tracking_uri(uri)
                with pytest.raises(TrackingError, match="did not answer"):
                    end_run(RetryPolicy(1.0), MlflowClient(uri), run_id, "FAILED")
            assert mlflow.active_run() is None
        finally:
            while mlflow.active_run():  # the old behaviour: not to leak into later tests
                mlflow.tracking.fluent._active_run_stack.get().pop()


@pytest.mark.parametrize(
    ("uri", "address"),
    [
        ("postgresql+psycopg2://u:p@127.0.0.1:18197/db", "127.0.0.1:18197"),
        ("postgresql://u@db.example/mlflow", "db.example:5432"),
        ("mysql+pymysql://u@[::1]/mlflow", "::1:3306"),
        ("mssql+pyodbc://u@sql:1444/mlflow", "sql:1444"),
        ("postgresql+psycopg2://u@/mlflow?host=/run/postgresql", None),  # a Unix socket
        ("postgresql+psycopg2://u@h1:5432,h2:5433/mlflow", None),  # several hosts: libpq's
        ("sqlite:///mlflow.db", None),
        ("http://mlflow:5000", None),
    ],
)
def test_the_database_server_to_wait_for(uri: str, address: str | None) -> None:
    from training.store_database import server_address

    found = server_address(uri)
    assert (str(found) if found else None) == address


@pytest.mark.parametrize("timeout", [1, 3, 30, 60, 600])
def test_mlflow_tries_a_database_within_the_timeout(timeout: float) -> None:
    from training.tracking import engine_tries

    tries = engine_tries(timeout)
    slept = sum(0.1 * (2**n - 1) for n in range(1, tries))  # MLflow's sleeps between its tries
    assert 1 <= tries <= 10 and slept <= timeout
    assert tries == 10 or slept + 0.1 * (2**tries - 1) > timeout  # no try left out


def test_an_unreachable_database_store_is_exit_4_within_the_timeout(monkeypatch) -> None:
    """MLflow retried engine creation ten times over about 100 s whatever the timeout, a block of
    lines per try, and ended with a raw SQLAlchemy error (exit 1)."""
    from mlflow.store.db import utils as db_utils

    monkeypatch.setattr(db_utils, "MAX_RETRY_COUNT", db_utils.MAX_RETRY_COUNT)  # put back after
    with tracking_uri_restored(), refused_port() as port:
        started = time.monotonic()
        with pytest.raises(TrackingError) as caught:
            connect(f"postgresql+psycopg2://u:secret@127.0.0.1:{port}/db", RetryPolicy(1.5))
        elapsed = time.monotonic() - started
    message = str(caught.value)
    assert caught.value.exit_code == 4 and 1.4 < elapsed < 10, elapsed
    assert message.startswith(f"connecting to postgresql+psycopg2://u:***@127.0.0.1:{port}/db: ")
    assert f"MLflow did not answer (no connection to the database at 127.0.0.1:{port} in 1.5 s" in (
        message
    )
    assert "\n" not in message and "secret" not in message


def test_a_database_that_hangs_up_is_tried_within_the_timeout(monkeypatch) -> None:
    """A server that accepts and closes (a proxy before a database that is down): MLflow's own
    tries, bounded by the timeout, then exit 4; not ten tries over 100 s, then exit 1."""
    import socket
    import threading

    from mlflow.store.db import utils as db_utils

    monkeypatch.setattr(db_utils, "MAX_RETRY_COUNT", db_utils.MAX_RETRY_COUNT)
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(0.2)
        port, stop = server.getsockname()[1], threading.Event()

        def hang_up() -> None:
            while not stop.is_set():
                try:
                    server.accept()[0].close()
                except TimeoutError:
                    continue

        thread = threading.Thread(target=hang_up, daemon=True)
        thread.start()
        started = time.monotonic()
        try:
            with tracking_uri_restored(), pytest.raises(TrackingError) as caught:
                connect(f"postgresql+psycopg2://u@127.0.0.1:{port}/db", RetryPolicy(1.0))
        finally:
            stop.set()
            thread.join()
    assert caught.value.exit_code == 4 and time.monotonic() - started < 10
    assert "server closed the connection unexpectedly" in str(caught.value)
    assert db_utils.MAX_RETRY_COUNT == 3  # sleeps 0.1 + 0.3 s: within the second


def test_the_monitor_reports_an_unreachable_database_store_as_exit_4(
    monkeypatch, capsys, tmp_path
) -> None:
    import importlib

    from mlflow.store.db import utils as db_utils

    monkeypatch.setattr(db_utils, "MAX_RETRY_COUNT", db_utils.MAX_RETRY_COUNT)
    log = tmp_path / "predictions.jsonl"
    log.write_text('{"label": "pc", "confidence": 0.9, "version": "1"}\n', "utf-8")
    monitor = importlib.import_module("training.monitor")
    argv = ["should-retrain", "--tracking-timeout-seconds", "1", "--prediction-log", str(log)]
    with refused_port() as port, tracking_uri_restored(), signal_handlers_restored():
        uri = f"postgresql+psycopg2://u:p@127.0.0.1:{port}/db"
        started = time.monotonic()
        with pytest.raises(SystemExit) as caught:
            monitor.main([*argv, "--tracking-uri", uri])
    assert caught.value.code == 4 and time.monotonic() - started < 10
    error = capsys.readouterr().err.strip().splitlines()
    assert error[-1].startswith("product-monitor: error: connecting to postgresql+psycopg2://")
    assert "MLflow did not answer (no connection to the database" in error[-1]
