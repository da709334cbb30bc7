"""The check that commands which only read an MLflow store do not create an empty one."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from tests.support import signal_handlers_restored
from training.errors import ConfigError
from training.tracking_uri import check_store_exists, sqlite_file


@pytest.fixture(autouse=True)
def _no_store_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_ALLOW_FILE_STORE"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("uri", "database"),
    [
        ("sqlite:///mlflow.db", "mlflow.db"),
        ("sqlite:////srv/mlflow.db", "/srv/mlflow.db"),
        ("sqlite:////srv/my%20store.db?timeout=5", "/srv/my store.db"),
        ("SQLite+pysqlite:///stores/a.db", "stores/a.db"),
        ("sqlite://", None),
        ("sqlite:///:memory:", None),
        ("sqlite:///file:a.db?mode=ro&uri=true", None),
        ("postgresql://u@db/mlflow", None),
        ("http://mlflow:5000", None),
        ("./mlruns", None),
    ],
)
def test_the_sqlite_file_is_read_as_sqlalchemy_reads_it(uri: str, database: str | None) -> None:
    assert sqlite_file(uri) == (None if database is None else Path(database))


@pytest.mark.parametrize("relative", [True, False])
def test_a_missing_sqlite_store_is_a_config_error_and_is_not_created(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, relative: bool
) -> None:
    monkeypatch.chdir(tmp_path)
    store = tmp_path / "nostore.db"
    uri = "sqlite:///nostore.db" if relative else f"sqlite:///{store}"
    with pytest.raises(ConfigError) as caught:
        check_store_exists(uri)
    message = str(caught.value)
    assert message.startswith(f"no MLflow store at {store} (the tracking URI {uri!r}")
    assert "check the path" in message and "product-train creates the store" in message
    assert caught.value.exit_code == 2 and not store.exists()


def test_the_default_store_is_looked_for_in_the_working_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=f"no MLflow store at {tmp_path / 'mlflow.db'} "):
        check_store_exists(None)
    (tmp_path / "mlflow.db").touch()
    check_store_exists(None)


def test_a_missing_sqlite_registry_is_named_by_its_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    registry = tmp_path / "registry.db"
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", f"sqlite:///{registry}")
    with pytest.raises(ConfigError, match=r"the registry URI .*, MLFLOW_REGISTRY_URI\)"):
        check_store_exists("http://mlflow:5000")
    assert not registry.exists()


@pytest.mark.parametrize(
    "uri", ["http://mlflow:5000", "postgresql+psycopg2://u@db/m", "sqlite:///:memory:"]
)
def test_stores_that_are_not_sqlite_files_pass(uri: str) -> None:
    check_store_exists(uri)


def test_a_folder_store_is_still_refused_first() -> None:
    with pytest.raises(ConfigError, match="maintenance mode"):
        check_store_exists("./mlruns")


@pytest.mark.parametrize(
    "argv",
    [
        ["batch.cli", "--model", "models:/m@champion", "--data", "x.csv", "--output", "o.csv"],
        ["training.monitor", "report", "--model-name", "m", "--prediction-log", "log.jsonl"],
        ["training.monitor", "should-retrain", "--model-name", "m", "--data", "catalog.csv"],
    ],
)
def test_every_read_only_cli_stops_before_mlflow_creates_a_store(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, argv
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.csv").write_text("title\nmouse\n", "utf-8")
    (tmp_path / "catalog.csv").write_text("title,category\nmouse,pc\n", "utf-8")
    (tmp_path / "log.jsonl").write_text('{"label": "pc"}\n', "utf-8")
    store = tmp_path / "missing" / "nostore.db"
    code = exit_of(argv, f"sqlite:///{store}")
    error = capsys.readouterr().err.strip()
    assert code == 2 and len(error.splitlines()) == 1
    assert f"no MLflow store at {store} " in error and "product-train" in error
    assert not store.exists() and not store.parent.exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["training.cli", "--data", "catalog.csv"],
        ["batch.cli", "--model", "models:/m@champion", "--data", "x.csv", "--output", "o.csv"],
        ["training.monitor", "should-retrain", "--model-name", "m", "--data", "catalog.csv"],
    ],
)
def test_a_store_file_that_is_not_sqlite_stops_every_cli_at_start(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, argv
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.csv").write_text("title\nmouse\n", "utf-8")
    (tmp_path / "catalog.csv").write_text("title,category\nmouse,pc\n", "utf-8")
    store = tmp_path / "notes.db"
    store.write_text("not a database\n", "utf-8")
    code = exit_of(argv, f"sqlite:///{store}")
    error = capsys.readouterr().err.strip()
    assert code == 2 and len(error.splitlines()) == 1, error
    assert f"{store} is not an SQLite database, so not an MLflow store" in error
    assert store.read_text("utf-8") == "not a database\n"


def exit_of(argv: list[str], tracking_uri: str) -> object:
    """The exit code of the CLI `argv` names (module, then options) run with `tracking_uri`;
    the signal handlers it installs are put back."""
    module, *options = argv
    with signal_handlers_restored(), pytest.raises(SystemExit) as caught:
        importlib.import_module(module).main([*options, "--tracking-uri", tracking_uri])
    return caught.value.code


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


@pytest.mark.skipif(_installed("psycopg"), reason="psycopg 3 is installed: postgresql:// opens")
@pytest.mark.parametrize(
    "argv",
    [
        ["training.cli", "--data", "catalog.csv"],
        ["training.tune", "--trials", "1"],
        ["batch.cli", "--model", "models:/m@champion", "--data", "x.csv", "--output", "o.csv"],
        ["training.monitor", "report", "--model-name", "m", "--prediction-log", "log.jsonl"],
    ],
)
def test_a_database_uri_whose_driver_is_missing_stops_every_cli_at_start(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, argv
) -> None:
    """SQLAlchemy 2.1 reads `postgresql://` as psycopg 3, which is not installed (psycopg2 is):
    it was exit 1, `ModuleNotFoundError: No module named 'psycopg'`, after the data was read."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.csv").write_text("title\nmouse\n", "utf-8")
    (tmp_path / "catalog.csv").write_text("title,category\nmouse,pc\n", "utf-8")
    (tmp_path / "log.jsonl").write_text('{"label": "pc"}\n', "utf-8")
    code = exit_of(argv, "postgresql://u:secret@127.0.0.1:9/mlflow")
    error = capsys.readouterr().err.strip()
    assert code == 2 and len(error.splitlines()) == 1, error
    assert "'postgresql://u:***@127.0.0.1:9/mlflow'" in error and "secret" not in error
    assert (
        "driver psycopg (SQLAlchemy's default for postgresql://), which is not installed" in error
    )
    assert "write postgresql+psycopg2:// (installed), or pip install 'psycopg[binary]'" in error


@pytest.mark.skipif(_installed("pymysql"), reason="pymysql is installed")
def test_a_named_driver_that_is_missing_names_its_package(monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", "mysql+pymysql://u@db/registry")
    with pytest.raises(ConfigError) as caught:
        check_store_exists("http://mlflow:5000")
    assert str(caught.value) == (
        "the registry URI 'mysql+pymysql://u@db/registry' (MLFLOW_REGISTRY_URI) needs the mysql "
        "driver pymysql, which is not installed: pip install 'pymysql'"
    )


@pytest.mark.parametrize("uri", ["postgresql+nosuch://u@db/m", "postgresql://u@db:port/m"])
def test_a_database_uri_sqlalchemy_cannot_read_is_a_config_error(uri: str) -> None:
    with pytest.raises(ConfigError, match="not a database URL SQLAlchemy reads"):
        check_store_exists(uri)


def test_a_database_uri_with_an_installed_driver_passes() -> None:
    check_store_exists("postgresql+psycopg2://u:p@db:5432/mlflow")  # the project's driver
