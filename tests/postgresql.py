"""A throwaway PostgreSQL server on loopback for the tests of database stores: Debian's own
PostgreSQL (`make test-tools` installs it), a fresh cluster in a temporary folder, password
logins only (scram-sha-256), as the Kubernetes StatefulSet runs it. PostgreSQL refuses to run as
root, so as root its programs run as Debian's `postgres` user."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import free_port

USER = "mlflow"
PASSWORD = "s3cret-pw"


def server_programs() -> Path:
    """The folder of Debian's PostgreSQL server programs (the newest installed), or a clear
    failure (never a skip)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: p.parts[-3])
    if not found:
        pytest.fail(
            "PostgreSQL's server programs are not installed: run `make test-tools` "
            "(apt-get install -y postgresql)"
        )
    return found[-1].parent


@dataclass
class PostgresServer:
    """A running server: `uri(database)` names one of its databases for SQLAlchemy and MLflow,
    without the password (clients read it from PGPASSWORD, as the Kubernetes Jobs do)."""

    programs: Path
    folder: Path
    port: int

    def uri(self, database: str, driver: str = "postgresql+psycopg2") -> str:
        return f"{driver}://{USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create database `name` (owned by the tests' user) unless it exists; returns its URI."""
        import psycopg2

        connection = psycopg2.connect(
            host="127.0.0.1", port=self.port, user=USER, password=PASSWORD, dbname="postgres"
        )
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cursor.fetchone() is None:
                    cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            connection.close()
        return self.uri(name)

    def stop(self, remove: bool = True) -> None:
        """Stop the server at once (`immediate`), and remove its files unless told not to (to
        `start_again` it)."""
        data = str(self.folder / "data")
        stop = [str(self.programs / "pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop"]
        _as_owner(stop, check=False)
        if remove:
            shutil.rmtree(self.folder, ignore_errors=True)

    def start_again(self) -> None:
        _start(self.programs, self.folder, self.port)


def start_postgresql() -> PostgresServer:
    """A new cluster, started: user `mlflow` with password `PASSWORD`, on a free loopback port,
    its socket and files in a temporary folder that the server's user owns."""
    programs = server_programs()
    folder = Path(tempfile.mkdtemp(prefix="pg-tests-"))
    (folder / "password").write_text(PASSWORD + "\n")
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        shutil.chown(folder / "password", "postgres")
    password_file = f"--pwfile={folder / 'password'}"
    data = str(folder / "data")
    initdb = [str(programs / "initdb"), "-D", data, "-U", USER, "--auth=scram-sha-256"]
    _as_owner([*initdb, password_file, "--no-sync"])
    server = PostgresServer(programs, folder, free_port())
    server.start_again()
    return server


def _start(programs: Path, folder: Path, port: int) -> None:
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    log = str(folder / "server.log")
    data = str(folder / "data")
    _as_owner([str(programs / "pg_ctl"), "-D", data, "-o", options, "-l", log, "-w", "start"])


def _as_owner(command: list[str], check: bool = True) -> None:
    """Run a PostgreSQL program as the user that may own a cluster (not root)."""
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    result = subprocess.run(
        command, capture_output=True, text=True, cwd=tempfile.gettempdir(), timeout=120
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {result.stdout}{result.stderr}")
