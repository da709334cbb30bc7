"""One family of errors, each carrying its HTTP status; `api.py` renders them all the same way."""

from __future__ import annotations

import json
from typing import Any


class ServingError(Exception):
    """Base of every error the server answers on purpose."""

    status_code = 500
    code = "internal_error"

    def __init__(
        self, message: str, *, field: str | None = None, status_code: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if status_code is not None:
            self.status_code = status_code

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        return body


class BadRequestError(ServingError):
    """The request could not be read at all (for instance a body that is not parseable)."""

    status_code = 400
    code = "bad_request"


class InvalidInputError(ServingError):
    """The request is well-formed HTTP but its content is not acceptable."""

    status_code = 422
    code = "invalid_input"


class PayloadTooLargeError(ServingError):
    """The body exceeds MAX_BODY_BYTES."""

    status_code = 413
    code = "payload_too_large"


class UnsupportedMediaTypeError(ServingError):
    """The body's content type is not one the route reads."""

    status_code = 415
    code = "unsupported_media_type"


class UnsupportedEncodingError(UnsupportedMediaTypeError):
    """The body is sent compressed (Content-Encoding), which the server does not decode; the
    answer says so in Accept-Encoding too (RFC 7694)."""

    accepted_encodings = "identity"


class ModelNotReadyError(ServingError):
    """No model is loaded (yet), or the server is shutting down."""

    status_code = 503
    code = "model_not_ready"


class NotFoundError(ServingError):
    status_code = 404
    code = "not_found"


class MethodNotAllowedError(ServingError):
    status_code = 405
    code = "method_not_allowed"


class InternalError(ServingError):
    """What the client sees of an unexpected failure: nothing but a request id to quote."""

    def __init__(self) -> None:
        super().__init__("internal server error")


class DeadlineExceededError(ServingError):
    """The request took longer than REQUEST_TIMEOUT_SECONDS; its model work was stopped."""

    status_code = 504
    code = "deadline_exceeded"


class ClientGoneError(ServingError):
    """The client closed the connection before the answer was ready (never sent: nginx's 499)."""

    status_code = 499
    code = "client_closed_request"


# Why a model could not be served, as the `reason` label of model_load_failures_total.
REGISTRY_MISS = "registry_miss"
ARTIFACT_MISSING = "artifact_missing"
LOAD_ERROR = "load_error"
UNREACHABLE = "unreachable"
REGISTRY_REFUSED = "registry_refused"  # the store answered and turned the server's login down
LOAD_FAILURE_REASONS = (REGISTRY_MISS, ARTIFACT_MISSING, LOAD_ERROR, UNREACHABLE, REGISTRY_REFUSED)


class ModelLoadError(Exception):
    """Finding or loading a model failed. `kind` is one of LOAD_FAILURE_REASONS, `detail` a short
    explanation for the logs (it may name URLs and exceptions); what clients see of it is
    `serving.load_failures.public_reason`."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


def error_body(error: ServingError, request_id: str) -> bytes:
    """The JSON body of every error answer: {"error": {code, message, field?}, "request_id"}."""
    return json.dumps({"error": error.to_dict(), "request_id": request_id}).encode()
