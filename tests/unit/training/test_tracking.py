from __future__ import annotations

import pytest

from training.tracking import redact, retry_settings


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
