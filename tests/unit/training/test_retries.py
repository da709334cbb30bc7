"""Which failures a training run retries, for how long, and what the user sees when it gives up."""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable

import pytest
import requests
from mlflow.exceptions import MlflowException, RestException

from training.errors import TrackingError, TrackingRefusedError
from training.retries import RetryPolicy, is_transient


def raised_while_handling(cause: BaseException, outer: BaseException) -> BaseException:
    """`outer` as MLflow raises it: inside an `except` for `cause`, without `from`."""
    try:
        try:
            raise cause
        except BaseException:
            raise outer  # noqa: B904 (the implicit chaining is the point)
    except BaseException as error:
        return error


def rest_error(code: str) -> RestException:
    return RestException({"error_code": code, "message": f"{code} happened"})


def http_error(status: int) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = status
    return requests.HTTPError(f"{status} error", response=response)


CUT = requests.exceptions.ChunkedEncodingError(
    http.client.IncompleteRead(b"{", 1), "Connection broken: IncompleteRead"
)


@pytest.mark.parametrize(
    "error",
    [
        raised_while_handling(CUT, MlflowException("API request to /x failed with exception")),
        raised_while_handling(ConnectionResetError(104, "reset"), MlflowException("failed")),
        http.client.IncompleteRead(b"ab", 2),
        rest_error("TEMPORARILY_UNAVAILABLE"),  # 503
        rest_error("INTERNAL_ERROR"),  # 500
        http_error(502),
        http_error(429),
        MlflowException("API request to endpoint /y failed with error code 503 != 200"),
        RuntimeError("mlflow...: ('Connection broken: IncompleteRead(10 bytes read)')"),
    ],
)
def test_transient_failures_are_retried(error: BaseException) -> None:
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        rest_error("INVALID_PARAMETER_VALUE"),  # 400
        rest_error("RESOURCE_DOES_NOT_EXIST"),  # 404
        rest_error("PERMISSION_DENIED"),  # 403
        http_error(404),
        MlflowException("model version ended in status FAILED_REGISTRATION"),
        RuntimeError("KeyError: 12"),
        FileNotFoundError(2, "No such file"),
    ],
)
def test_refusals_and_local_errors_are_not_retried(error: BaseException) -> None:
    assert not is_transient(error)


def failing(times: int, error: BaseException) -> tuple[Callable[[], str], list[float]]:
    calls: list[float] = []

    def operation() -> str:
        calls.append(time.monotonic())
        if len(calls) <= times:
            raise error
        return "done"

    return operation, calls


FAST = RetryPolicy(timeout_seconds=2.0, first_wait_seconds=0.05, max_wait_seconds=0.2)


def test_a_transient_failure_is_retried_until_it_succeeds() -> None:
    operation, calls = failing(3, rest_error("TEMPORARILY_UNAVAILABLE"))
    assert FAST.call("logging metrics", operation) == "done"
    assert len(calls) == 4


def test_a_refusal_is_not_retried_and_exits_5() -> None:
    operation, calls = failing(1, rest_error("INVALID_PARAMETER_VALUE"))
    with pytest.raises(TrackingRefusedError, match="logging metrics: MLflow refused"):
        FAST.call("logging metrics", operation)
    assert len(calls) == 1


def test_retries_stop_at_the_timeout_and_exit_4() -> None:
    operation, calls = failing(10_000, http.client.IncompleteRead(b"", 3))
    started = time.monotonic()
    with pytest.raises(TrackingError, match="setting tags: MLflow did not answer") as raised:
        FAST.call("setting tags", operation)
    assert type(raised.value) is TrackingError  # exit 4, not 5
    assert 1.5 <= time.monotonic() - started <= 2.1  # no wait runs past the timeout
    assert len(calls) > 3


def test_a_local_error_passes_through_unchanged() -> None:
    operation, calls = failing(1, FileNotFoundError(2, "No such file"))
    with pytest.raises(FileNotFoundError):
        FAST.call("logging an artifact", operation)
    assert len(calls) == 1
