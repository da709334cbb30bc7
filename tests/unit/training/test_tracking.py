from __future__ import annotations

import pytest

from training.tracking import redact


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
