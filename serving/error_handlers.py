"""One error family, one rendering: the exception handlers of the app (and of its direct
routes, `render_known`), each answering with `serving.errors.error_body`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from serving.errors import (
    BadRequestError,
    InvalidInputError,
    MethodNotAllowedError,
    NotFoundError,
    ServingError,
    error_body,
)
from serving.json_body import invalid_json
from serving.logs import request_id_var

JSON = "application/json"


def add_error_handlers(app: FastAPI) -> None:
    """Every error the app answers on purpose, rendered by `render`."""
    app.add_exception_handler(ServingError, _serving_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]


def render(error: ServingError, headers: Mapping[str, str] | None = None) -> Response:
    """The one rendering of every error the server answers on purpose."""
    return Response(
        error_body(error, request_id_var.get() or ""),
        status_code=error.status_code,
        headers=headers,
        media_type=JSON,
    )


async def render_known(error: Exception) -> Response:
    """What the exception handlers answer for `error`, outside Starlette's exception handling."""
    if isinstance(error, ServingError):
        return render(error)
    if isinstance(error, RequestValidationError):
        return await _validation_error(None, error)
    if isinstance(error, StarletteHTTPException):
        return await _http_error(None, error)
    raise error


async def _serving_error(_: Request, error: ServingError) -> Response:
    return render(error)


async def _validation_error(_: Request | None, error: RequestValidationError) -> Response:
    """Pydantic's errors as one message naming the first offending field."""
    problems = error.errors()
    first = problems[0]
    if first.get("type") == "json_invalid":
        reason = first.get("ctx", {}).get("error", "cannot parse")
        return render(InvalidInputError(f"invalid JSON: {reason}", field="body"))
    field = field_path(first.get("loc", ()))
    same_field = [p for p in problems if field_path(p.get("loc", ())) == field]
    message = " or ".join(dict.fromkeys(str(p.get("msg", "invalid")) for p in same_field))
    others = len(problems) - len(same_field)
    if others:
        message += f" (and {others} more problem{'s' if others > 1 else ''})"
    return render(InvalidInputError(message, field=field))


async def _http_error(request: Request | None, error: StarletteHTTPException) -> Response:
    """Starlette's own errors (unknown path, wrong method, unreadable body) in our format."""
    serving_error: ServingError
    if error.status_code == 404:
        serving_error = NotFoundError("no such resource")
    elif error.status_code == 405:
        serving_error = MethodNotAllowedError("method not allowed")
    elif error.status_code == 400:  # FastAPI could not decode the body (see json_problem)
        serving_error = invalid_json(error.__cause__ or error, await _body_of(request))
    else:
        serving_error = BadRequestError(str(error.detail), status_code=error.status_code)
    return render(serving_error, headers=error.headers)


async def _body_of(request: Request | None) -> bytes | None:
    """The body FastAPI has read (and kept) for the request, whose JSON it could not decode; None
    without a request (`serving.direct` renders its own decoding errors)."""
    if request is None:
        return None
    return await request.body()


def field_path(loc: Any) -> str:
    """("body", "products", 2, "title", "str") → "products[2].title": the request field, without
    pydantic's union-member tags or positions inside a field's own list."""
    parts = list(loc)
    if parts and parts[0] == "body":
        parts = parts[1:]
    if parts and parts[0] == "products":
        parts = parts[:3]  # products, index, field name
    elif parts:
        parts = parts[:1]
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    return path or "body"
