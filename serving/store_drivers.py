"""A tracking store that is a database: MLflow opens it through SQLAlchemy and the driver its URI
names (or SQLAlchemy's default for the database), both of which must be installed. Otherwise every
load attempt fails the same way, and was retried forever as "the model registry is unreachable";
it is refused at start-up instead.

SQLAlchemy is imported only for a database URI, as MLflow then would: the serving image, which
talks to an MLflow tracking server, has none. (`training/store_database.py` has the same check;
the serve image ships only `serving/`.)
"""

from __future__ import annotations

import importlib.util
from typing import Any, NamedTuple
from urllib.parse import urlparse

# The databases MLflow's stores take (their URI schemes, before any `+driver`).
MLFLOW_DATABASES = frozenset({"sqlite", "postgresql", "mysql", "mssql"})


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
    "pyodbc": Driver("mssql", "pyodbc", "pyodbc"),
    "pymssql": Driver("mssql", "pymssql", "pymssql"),
}


def is_database(uri: str) -> bool:
    """Whether MLflow opens `uri` as a database store (`sqlite:///`, `postgresql+psycopg2://`)."""
    return urlparse(uri).scheme.partition("+")[0] in MLFLOW_DATABASES


def check_database_driver(uri: str, variable: str) -> None:
    """ValueError when `uri` (given as `variable`) is a database store that this process cannot
    open: SQLAlchemy or the database's driver is not installed, or SQLAlchemy cannot read the URI.
    The message names what to install or write instead, not the URI (it may hold a password)."""
    if not is_database(uri):
        return
    try:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError
    except ImportError:
        raise ValueError(
            f"{variable} is a database, which MLflow opens through SQLAlchemy, and SQLAlchemy "
            "is not installed here (the serving image has none): point it at an MLflow "
            "tracking server (http://mlflow:5000), or pip install sqlalchemy and the database's "
            "driver"
        ) from None
    try:
        url = make_url(uri)
        dialect: Any = url.get_dialect()
    except NoSuchModuleError as error:  # an unknown +driver: its words name it, not the URI
        raise ValueError(f"{variable} is not a database URL SQLAlchemy reads ({error})") from None
    except (ArgumentError, ValueError):  # SQLAlchemy's words would repeat the URI
        raise ValueError(
            f"{variable} is not a database URL SQLAlchemy reads: write "
            "DATABASE[+DRIVER]://USER:PASSWORD@HOST:PORT/NAME, or sqlite:///PATH"
        ) from None
    try:
        dialect.import_dbapi()
    except ImportError:
        raise ValueError(
            missing_driver(url.drivername, dialect.name, dialect.driver, variable)
        ) from None


def missing_driver(written: str, database: str, driver: str, variable: str) -> str:
    """The message for a driver that is not installed: the pip package, and an installed driver
    of the same database to write instead when the URI (`written`) left SQLAlchemy to choose."""
    package = DRIVERS[driver].package if driver in DRIVERS else driver
    fixes = [f"pip install '{package}'"]
    if "+" not in written:
        installed = [
            name
            for name, known in DRIVERS.items()
            if known.database == database and importable(known.module)
        ]
        fixes[:0] = [f"write {database}+{name}:// (installed)" for name in installed[:1]]
    chosen = "" if "+" in written else f" (SQLAlchemy's default for {written}://)"
    return (
        f"{variable} needs the {database} driver {driver}{chosen}, which is not installed: "
        + ", or ".join(fixes)
    )


def importable(module: str) -> bool:
    """Whether `module` is installed (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a parent package missing (mysql.connector without mysql)
        return False
