"""A PostgreSQL store, as the Kubernetes deployment runs one: training, its gate and serving on
it directly and through an `mlflow server`, a tuning study shared in it, and what a user sees when
the server refuses the login or starts late. A real PostgreSQL on loopback (`tests.postgresql`)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import psycopg2
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from tests.postgresql import PASSWORD, USER, PostgresServer, start_postgresql
from tests.support import free_port, launch_server, refused_port, stop_process, wait_for_http

pytestmark = pytest.mark.integration

SMALL_MODEL = ["--n-estimators", "10", "--text-max-features", "5000", "--select-k-best", "2000"]


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    server = start_postgresql()
    try:
        yield server
    finally:
        server.stop()


def cli(
    module: str, *args: str, cwd: Path, password: str | None = PASSWORD, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """`python -m module args` with PGPASSWORD set as the Jobs set it (or unset)."""
    env = {k: v for k, v in os.environ.items() if k != "PGPASSWORD"}
    if password is not None:
        env["PGPASSWORD"] = password
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def train(store: str, catalog: Path, cwd: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return cli(
        "training", "--data", str(catalog), "--tracking-uri", store, *SMALL_MODEL, *extra, cwd=cwd
    )


def table_rows(postgres: PostgresServer, database: str, query: str) -> list[tuple]:
    connection = psycopg2.connect(
        host="127.0.0.1", port=postgres.port, user=USER, password=PASSWORD, dbname=database
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute(query)
            return list(cursor.fetchall())
    finally:
        connection.close()


def test_a_model_trained_into_postgresql_is_gated_and_served(
    postgres: PostgresServer, small_catalog: Path, tmp_path: Path
) -> None:
    store = postgres.create_database("direct")
    first = train(store, small_catalog, tmp_path, "--model-name", "pg-it")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "promoted:        yes (no champion yet)" in first.stdout
    gated = ("--model-name", "pg-it", "--gate-min-rows", "50")
    second = train(store, small_catalog, tmp_path, *gated)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "champion v1's" in second.stdout  # the gate read and re-scored the champion

    os.environ["PGPASSWORD"] = PASSWORD  # restored after the test (tests/conftest.py)
    client = MlflowClient(tracking_uri=store)
    champion = str(client.get_model_version_by_alias("pg-it", "champion").version)
    assert champion in ("1", "2")
    assert table_rows(
        postgres, "direct", "SELECT name, version FROM model_versions ORDER BY 2"
    ) == [
        ("pg-it", 1),
        ("pg-it", 2),
    ]

    server = launch_server(tmp_path, MLFLOW_TRACKING_URI=store, MODEL_NAME="pg-it")
    try:
        server.wait_ready()
        status, body = server.post("/v1/predict", {"products": [{"title": "chess engine"}]})
        assert status == 200, body
        assert body["model_version"] == champion
    finally:
        stop_process(server.process)


def test_a_server_whose_store_refuses_its_login_says_so_at_once(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    """/readyz said `loading` for about 100 s (MLflow's ten tries of the database, a warning block
    each), then "the model registry is unreachable" though it had answered."""
    store = postgres.create_database("serving_refused")
    server = launch_server(tmp_path, MLFLOW_TRACKING_URI=store, MODEL_NAME="pg-it", PGPASSWORD="x")
    try:
        server.wait_live()
        deadline = time.monotonic() + 30
        while (body := server.get("/readyz")[1])["reason"] == "loading":
            assert time.monotonic() < deadline, server.log_tail()
            time.sleep(0.2)
        assert body["reason"] == (
            "the model registry refused this server's login (the server's log says why)"
        )
        assert 'model_load_failures_total{reason="registry_refused",version=""}' in (
            server.metrics_text()
        )
        logged = "\n".join(server.log_lines())
        assert "password authentication failed for user" in logged
        assert "Operation will be retried" not in logged
    finally:
        stop_process(server.process)


def test_an_mlflow_server_on_postgresql_takes_a_training_run(
    postgres: PostgresServer, small_catalog: Path, tmp_path: Path
) -> None:
    """The deployment's shape: `mlflow server --backend-store-uri postgresql+psycopg2://...`,
    its password from PGPASSWORD, artifacts served by it; training talks HTTP only."""
    store = postgres.create_database("behind_server")
    port = free_port()
    env = {**os.environ, "PGPASSWORD": PASSWORD, "MLFLOW_TRACKING_URI": ""}
    log = (tmp_path / "mlflow.log").open("wb")
    process = subprocess.Popen(
        [
            *(str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1"),
            *("--port", str(port), "--backend-store-uri", store, "--workers", "1"),
            *("--artifacts-destination", str(tmp_path / "artifacts"), "--serve-artifacts"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/health", timeout=120, process=process)
        result = train(url, small_catalog, tmp_path, "--model-name", "pg-server-it")
        assert result.returncode == 0, result.stderr[-3000:]
        assert "promoted:        yes" in result.stdout
    finally:
        stop_process(process)
    rows = table_rows(postgres, "behind_server", "SELECT name, alias FROM registered_model_aliases")
    assert ("pg-server-it", "champion") in rows
    assert list((tmp_path / "artifacts").rglob("MLmodel"))


@pytest.mark.parametrize(
    ("database", "password", "said"),
    [
        (
            "refusals",
            "wrong",
            'password authentication failed for user "mlflow"; check the password',
        ),
        ("nosuchdb", PASSWORD, 'database "nosuchdb" does not exist; create the database'),
        ("refusals", None, "fe_sendauth: no password supplied; check the password (in the URI, or"),
    ],
)
def test_a_refused_login_stops_training_at_once_with_exit_5(
    postgres: PostgresServer, tmp_path: Path, database: str, password: str | None, said: str
) -> None:
    """MLflow retried a refused login for about a minute, a warning block per try, then exit 4
    ("did not answer"); the server had answered."""
    if database == "refusals":
        postgres.create_database(database)
    started = time.monotonic()
    result = cli(
        "training",
        "--tracking-uri",
        postgres.uri(database),
        "--tracking-timeout-seconds",
        "60",
        cwd=tmp_path,
        password=password,
    )
    assert result.returncode == 5, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"product-train: error: connecting to {postgres.uri(database)}: ")
    assert f"the database at 127.0.0.1:{postgres.port} refused the login: {said}" in last
    assert "Operation will be retried" not in result.stderr
    assert time.monotonic() - started < 40  # start-up and the failed login, not a minute of tries


def test_a_postgresql_that_starts_late_is_waited_for(small_catalog: Path, tmp_path: Path) -> None:
    """A Job may start before its database (they are deployed together)."""
    late = start_postgresql()
    try:
        store = late.create_database("late")
        late.stop(remove=False)
        env = {**os.environ, "PGPASSWORD": PASSWORD}
        command = [sys.executable, "-m", "training", "--data", str(small_catalog)]
        command += ["--tracking-uri", store, "--tracking-timeout-seconds", "120", *SMALL_MODEL]
        log = tmp_path / "stderr.log"
        with log.open("w") as stderr:
            training = subprocess.Popen(
                command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True
            )
            deadline = time.monotonic() + 120
            while "no answer from the database at 127.0.0.1" not in log.read_text():
                assert training.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            late.start_again()
            out, _ = training.communicate(timeout=300)
        assert training.returncode == 0, log.read_text()[-3000:]
        assert "promoted:        yes" in out
    finally:
        late.stop()


def tune(
    storage: str, catalog: Path, cwd: Path, *extra: str, password: str | None = PASSWORD
) -> subprocess.CompletedProcess[str]:
    space = cwd / "space.yaml"
    space.write_text("min_samples_leaf: {type: int, low: 1, high: 2}\n")
    options = ["--data", str(catalog), "--search-space", str(space), "--storage", storage]
    options += ["--folds", "2", "--tracking-uri", f"sqlite:///{cwd}/mlflow.db", *SMALL_MODEL]
    return cli("training.tune", *options, *extra, cwd=cwd, password=password)


def test_tuning_workers_share_a_study_in_postgresql(
    postgres: PostgresServer, small_catalog: Path, tmp_path: Path
) -> None:
    postgres.create_database("tuning")
    storage = postgres.uri("tuning", driver="postgresql")  # as tuning.env writes it
    result = tune(storage, small_catalog, tmp_path, "--workers", "2", "--trials", "3")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "trials:          3 complete" in result.stdout

    os.environ["PGPASSWORD"] = PASSWORD  # restored after the test (tests/conftest.py)
    from training.tuning.storage import open_storage

    study = optuna.load_study(study_name="product-tune", storage=open_storage(storage))
    finished = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(finished) == 3
    assert {trial.user_attrs["worker"] for trial in finished} == {0, 1}
    assert sum(1 for trial in finished if trial.user_attrs.get("baseline")) == 1
    tables = "SELECT table_schema FROM information_schema.tables WHERE table_name = 'trials'"
    assert table_rows(postgres, "tuning", tables) == [("optuna",)]  # beside MLflow's, not in them


def test_a_study_storage_that_refuses_the_login_is_exit_5(
    postgres: PostgresServer, small_catalog: Path, tmp_path: Path
) -> None:
    storage = postgres.uri("postgres", driver="postgresql")
    result = tune(storage, small_catalog, tmp_path, "--trials", "1", password="wrong")
    assert result.returncode == 5, result.stderr[-3000:]
    assert result.stderr.strip().splitlines()[-1] == (
        f"product-tune: error: the study storage {storage}: the database at "
        f"127.0.0.1:{postgres.port} refused the login: password authentication failed for user "
        '"mlflow"; check the password (in the URI, or PGPASSWORD)'
    )


def test_a_study_storage_server_that_never_answers_is_waited_for_then_exit_4(
    small_catalog: Path, tmp_path: Path
) -> None:
    with refused_port() as port:
        storage = f"postgresql://{USER}@127.0.0.1:{port}/tuning"
        started = time.monotonic()
        result = tune(
            storage, small_catalog, tmp_path, "--trials", "1", "--tracking-timeout-seconds", "3"
        )
    assert result.returncode == 4, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(
        f"product-tune: error: cannot open the study storage {storage}: no connection to the "
        f"database at 127.0.0.1:{port} in 3 s: "
    )
    assert time.monotonic() - started >= 3
