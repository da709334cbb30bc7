"""A tracking store that is a database server (PostgreSQL, MySQL, SQL Server): its Python driver
checked at start-up, its server waited for within `--tracking-timeout-seconds`.

MLflow opens such a store through SQLAlchemy and retries a failed connection on its own, ten
times over about 100 s whatever the timeout says, printing a long block per try, and ends with a
raw SQLAlchemy error. A missing driver was a bare ModuleNotFoundError: `postgresql://` means
psycopg 3 to SQLAlchemy 2.1, while this project installs psycopg2. Nothing here imports MLflow.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import socket
import time
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import parse_qs, urlsplit

from training.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mssql": 1433}


class Driver(NamedTuple):
    database: str
    module: str  # what SQLAlchemy imports
    package: str  # what pip installs


# SQLAlchemy's driver names (the `+driver` of a URI), the first of a database its preferred one.
DRIVERS = {
    "psycopg2": Driver("postgresql", "psycopg2", "psycopg2-binary"),
    "psycopg": Driver("postgresql", "psycopg", "psycopg[binary]"),
    "pg8000": Driver("postgresql", "pg8000", "pg8000"),
    "mysqldb": Driver("mysql", "MySQLdb", "mysqlclient"),
    "pymysql": Driver("mysql", "pymysql", "pymysql"),
    "mysqlconnector": Driver("mysql", "mysql.connector", "mysql-connector-python"),
    "mariadbconnector": Driver("mysql", "mariadb", "mariadb"),
    "pyodbc": Driver("mssql", "pyodbc", "pyodbc"),
    "pymssql": Driver("mssql", "pymssql", "pymssql"),
}
FIRST_WAIT_SECONDS, MAX_WAIT_SECONDS = 0.25, 4.0


def database_of(uri: str) -> str | None:
    """The database server a store URI names (`postgresql`, `mysql`, `mssql`), else None."""
    scheme = urlsplit(uri).scheme.lower().partition("+")[0]
    return scheme if scheme in DEFAULT_PORTS else None


def check_driver(uri: str, named: str) -> None:
    """`ConfigError` (exit 2) when SQLAlchemy cannot load the driver the database URI `uri`
    (`named` in the message, its password hidden) asks for, naming the package to install or a
    driver already installed to write instead."""
    if database_of(uri) is None:
        return
    from sqlalchemy.engine import make_url  # MLflow imports it anyway; only for these stores
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        url = make_url(uri)
        dialect = url.get_dialect()
    except (ArgumentError, NoSuchModuleError, ValueError) as error:
        raise ConfigError(f"{named}: not a database URL SQLAlchemy reads ({error})") from None
    try:
        dialect.import_dbapi()
    except ImportError:
        raise ConfigError(
            missing_driver(url.drivername, dialect.name, dialect.driver, named)
        ) from None


def missing_driver(written: str, database: str, driver: str, named: str) -> str:
    """The message for a driver that is not installed: the pip package, and an installed driver
    of the same database to name instead when the URI (`written`) left SQLAlchemy to choose."""
    package = DRIVERS[driver].package if driver in DRIVERS else driver
    fixes = [f"pip install '{package}'"]
    if "+" not in written:
        installed = [
            name
            for name, known in DRIVERS.items()
            if known.database == database and _importable(known.module)
        ]
        fixes[:0] = [f"write {database}+{name}:// (installed)" for name in installed[:1]]
    chosen = "" if "+" in written else f" (SQLAlchemy's default for {written}://)"
    return (
        f"{named} needs the {database} driver {driver}{chosen}, which is not installed: "
        + ", or ".join(fixes)
    )


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a parent package missing (mysql.connector without mysql)
        return False


@dataclass(frozen=True)
class ServerAddress:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def server_address(uri: str) -> ServerAddress | None:
    """Where the database server of `uri` listens, or None when the URI does not say it plainly
    (not a database server, a Unix socket, `?host=` or several hosts): MLflow then finds it."""
    database = database_of(uri)
    parts = urlsplit(uri)
    if database is None or not parts.hostname or "host" in parse_qs(parts.query):
        return None
    try:
        port = parts.port or DEFAULT_PORTS[database]
    except ValueError:  # `h1:5432,h2:5433`
        return None
    return ServerAddress(parts.hostname, port)


def wait_for_server(address: ServerAddress, timeout_seconds: float) -> OSError | None:
    """Open (and close) a TCP connection to `address`, retried with a growing pause for about
    `timeout_seconds`; None once it connects, else the last failure. One warning at the first."""
    deadline = time.monotonic() + timeout_seconds
    wait = FIRST_WAIT_SECONDS
    while True:
        remaining = deadline - time.monotonic()
        try:
            with socket.create_connection((address.host, address.port), max(0.5, remaining)):
                return None
        except OSError as error:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return error
            if wait == FIRST_WAIT_SECONDS:
                log.warning(
                    "no answer from the database at %s (%s); retrying for up to %gs "
                    "(--tracking-timeout-seconds)",
                    address,
                    error,
                    timeout_seconds,
                )
            time.sleep(min(wait, remaining))
            wait = min(2 * wait, MAX_WAIT_SECONDS)


class LoginRefusedError(Exception):
    """The database server answered and turned the login or the database down: retrying will not
    help. The message is the server's own words and what to check."""


# What a database server says when it turns a login or a database down (psycopg2 gives
# PostgreSQL's words; MySQL's drivers its own), and what to check. Anything else once the server
# takes the TCP connection (starting up, shutting down, too many clients) is retried.
REFUSALS = (
    (
        re.compile(r"password authentication failed|no password supplied|access denied", re.I),
        "check the password (in the URI, or PGPASSWORD)",
    ),
    (re.compile(r'role "[^"]*" does not exist', re.I), "check the user name in the URI"),
    (
        re.compile(r'database "[^"]*" does not exist|unknown database', re.I),
        "create the database, or correct its name in the URI",
    ),
    (
        re.compile(r"no pg_hba\.conf entry", re.I),
        "the server's pg_hba.conf lets no such host, user and database in",
    ),
    (re.compile(r"permission denied for database", re.I), "grant the user CONNECT on the database"),
)


def refusal(error: BaseException) -> str | None:
    """The server's words and the fix, when `error` says it refused the login or the database."""
    text = one_line(error)
    # psycopg2: 'connection to server at "h", port 5432 failed: FATAL: <the server's words>'
    said = text.partition("FATAL:")[2].strip() or text.rpartition(" failed: ")[2] or text
    for pattern, fix in REFUSALS:
        if pattern.search(text):
            return f"{said}; {fix}"
    return None


def reach_and_log_in(uri: str, timeout_seconds: float) -> str | None:
    """Wait up to `timeout_seconds` for the database server of `uri` to take a connection (when
    the URI names its address) and a login: None once logged in, else why not, in words.
    `LoginRefusedError` at once when the server refuses the login or the database."""
    address = server_address(uri)
    where = f"the database at {address}" if address else "the database"
    started = time.monotonic()
    failure: Exception | None = None
    if address is not None:
        failure = wait_for_server(address, timeout_seconds)
    try:
        if failure is None:
            failure = log_in(uri, timeout_seconds - (time.monotonic() - started))
    except LoginRefusedError as refused:
        raise LoginRefusedError(f"{where} refused the login: {refused}") from None
    if failure is None:
        return None
    return f"no connection to {where} in {timeout_seconds:g} s: {one_line(failure)}"


def one_line(error: BaseException) -> str:
    """A driver's error on one line, without SQLAlchemy's "Background on this error" link."""
    return " ".join(str(error).split()).split(" (Background on this error")[0]


def log_in(uri: str, timeout_seconds: float) -> Exception | None:
    """Open (and close) one connection to the database of `uri`, retried with a growing pause
    for about `timeout_seconds` while the server cannot take it; None once logged in, else the
    last failure. A refusal (a password, a database missing) raises `LoginRefusedError` at once:
    MLflow would retry it for about 100 s, printing a block per try."""
    from sqlalchemy import create_engine
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.pool import NullPool
    from tenacity import Retrying, retry_if_exception_type, stop_before_delay, wait_exponential

    engine = create_engine(uri, poolclass=NullPool)

    def connect() -> None:
        try:
            with engine.connect():
                return
        except SQLAlchemyError as error:
            refused = refusal(error)
            if refused is not None:
                raise LoginRefusedError(refused) from None
            raise

    retrying = Retrying(
        retry=retry_if_exception_type(SQLAlchemyError),
        stop=stop_before_delay(max(0.0, timeout_seconds)),
        wait=wait_exponential(multiplier=FIRST_WAIT_SECONDS, max=MAX_WAIT_SECONDS),
        reraise=True,
    )
    try:
        retrying(connect)
        return None
    except SQLAlchemyError as error:
        return error
    finally:
        engine.dispose()
