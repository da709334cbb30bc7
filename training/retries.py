"""Retrying a training run's MLflow calls when the failure is transient.

MLflow's own HTTP retries (urllib3, set by `tracking.retry_settings`) cover a connection that
cannot be opened and some error statuses, but not a response cut in the middle of its body
(`IncompleteRead`, a reset connection), which is what a restarting tracking server or a proxy in
between produces. `RetryPolicy.call` retries the whole operation on those, and on 5xx/429/408
answers, for at most `--tracking-timeout-seconds`; an answer that refuses (any other 4xx) is final.
Operations retried this way must be idempotent: the callers make them so.
"""

from __future__ import annotations

import http.client
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
from mlflow.exceptions import MlflowException, RestException
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_before_delay,
    wait_exponential_jitter,
)
from urllib3.exceptions import HTTPError as Urllib3Error

from training.errors import TrackingError

log = logging.getLogger(__name__)
T = TypeVar("T")

TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_NETWORK_ERRORS = (
    ConnectionError,  # the built-in family: refused, reset, aborted, broken pipe
    TimeoutError,
    http.client.IncompleteRead,
    http.client.RemoteDisconnected,
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.RetryError,  # urllib3 gave up on a retried status (5xx, 429)
    Urllib3Error,
)
# MLflow flattens most request failures into an MlflowException whose text is all that is left
# of the cause when it crossed a process (the champion's re-scoring) or lost its context.
_TRANSIENT_TEXT = re.compile(
    r"incompleteread|connection (?:broken|reset|aborted|refused)|remotedisconnected|"
    r"max retries exceeded|timed out|temporarily unavailable|"
    r"error code (?:408|429|500|502|503|504)\b|too many (?:408|429|5\d\d) error responses",
    re.IGNORECASE,
)


def causes(error: BaseException) -> Iterator[BaseException]:
    """The error and every error it was raised from or while handling."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def http_status(error: BaseException) -> int | None:
    """The HTTP status the server answered with, when the error carries one."""
    if isinstance(error, RestException):
        return int(error.get_http_status_code())
    if isinstance(error, requests.HTTPError) and error.response is not None:
        return int(error.response.status_code)
    return None


def is_transient(error: BaseException) -> bool:
    """True for failures a retry can cure: the network, a cut response, a server restarting or
    overloaded (5xx, 429, 408). False for a server that answered and refused (other 4xx)."""
    for cause in causes(error):
        status = http_status(cause)
        if status is not None:
            return status in TRANSIENT_STATUSES
        if isinstance(cause, _NETWORK_ERRORS):
            return True
    return isinstance(error, MlflowException | RuntimeError) and bool(
        _TRANSIENT_TEXT.search(str(error))
    )


@dataclass(frozen=True)
class RetryPolicy:
    """Retry transient failures of one operation for at most `timeout_seconds` in all."""

    timeout_seconds: float
    first_wait_seconds: float = 0.5
    max_wait_seconds: float = 8.0

    def call(self, what: str, operation: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`operation(*args, **kwargs)`, retried while its failure is transient; a failure that
        is final, or outlasts the timeout, becomes a TrackingError (exit 4 or 5) naming `what`."""
        from training.tracking import as_tracking_error

        retrying = Retrying(
            retry=retry_if_exception(is_transient),
            stop=stop_before_delay(self.timeout_seconds),
            wait=wait_exponential_jitter(
                multiplier=self.first_wait_seconds, max=self.max_wait_seconds, jitter=0.5
            ),
            before_sleep=_warn_retrying(what),
            reraise=True,
        )
        try:
            return retrying(operation, *args, **kwargs)
        except TrackingError:
            raise
        except Exception as error:
            from_mlflow = isinstance(error, MlflowException | requests.RequestException)
            if from_mlflow or is_transient(error):
                raise as_tracking_error(error, what) from None
            raise


DEFAULT_POLICY = RetryPolicy(60.0)  # TrainConfig's default --tracking-timeout-seconds


def _warn_retrying(what: str) -> Callable[[RetryCallState], None]:
    def warn(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        text = " ".join(str(error).split())[:300]
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "%s failed (attempt %d, %s); retrying in %.1fs", what, state.attempt_number, text, wait
        )

    return warn
