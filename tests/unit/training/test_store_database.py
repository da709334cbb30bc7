"""What a database server's refusal looks like to `refusal`: final (exit 5) with what to check,
while a server that cannot take the login yet is left to be retried."""

from __future__ import annotations

import pytest

from training.store_database import refusal

CONNECTION = 'connection to server at "db", port 5432 failed: '
BACKGROUND = "\n\n(Background on this error at: https://sqlalche.me/e/21/e3q8)"


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        (
            'FATAL:  password authentication failed for user "mlflow"\n',
            'password authentication failed for user "mlflow"; check the password (in the URI, '
            "or PGPASSWORD)",
        ),
        (
            "fe_sendauth: no password supplied\n",
            "fe_sendauth: no password supplied; check the password (in the URI, or PGPASSWORD)",
        ),
        (
            'FATAL:  database "shop" does not exist\n',
            'database "shop" does not exist; create the database, or correct its name in the URI',
        ),
        ('FATAL:  role "alice" does not exist\n', 'role "alice" does not exist; check the user'),
        (
            'FATAL:  no pg_hba.conf entry for host "10.0.0.7", user "mlflow", database "mlflow"',
            'no pg_hba.conf entry for host "10.0.0.7", user "mlflow", database "mlflow"; the '
            "server's pg_hba.conf",
        ),
    ],
)
def test_a_refused_login_is_told_in_the_servers_words_and_what_to_check(
    said: str, expected: str
) -> None:
    text = refusal(Exception(f"(psycopg2.OperationalError) {CONNECTION}{said}{BACKGROUND}"))
    assert text is not None and text.startswith(expected)


def test_mysqls_access_denied_is_a_refusal() -> None:
    said = "Access denied for user 'mlflow'@'10.0.0.7' (using password: YES)"
    error = Exception(f'(1045, "{said}")')
    assert refusal(error) is not None


@pytest.mark.parametrize(
    "said",
    [
        "FATAL:  the database system is starting up",
        "FATAL:  the database system is shutting down",
        "FATAL:  sorry, too many clients already",
        "server closed the connection unexpectedly",
        "Connection refused",
    ],
)
def test_a_server_not_ready_for_the_login_is_not_a_refusal(said: str) -> None:
    assert refusal(Exception(f"(psycopg2.OperationalError) {CONNECTION}{said}")) is None
