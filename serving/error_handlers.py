"""One error family, one rendering: the exception handlers of the app (and of its direct
routes, the `render_known` that `add_error_handlers` returns), each answering with
`serving.errors.error_body`."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
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
from serving.schemas import EXAMPLE_TEXTS
from serving.validation import RequestContract

JSON = "application/json"
SHOWN_FIELDS = 12  # a hint lists at most this many of the model's fields

ServedContract = Callable[[], RequestContract | None]
"""The served model's input contract; None before a model is loaded."""
RenderKnown = Callable[[Exception], Awaitable[Response]]


def add_error_handlers(app: FastAPI, served_contract: ServedContract = lambda: None) -> RenderKnown:
    """Register the handlers of every error the app answers on purpose, rendered by `render`;
    return what they answer for an error, for the routes `serving.direct` answers outside
    Starlette's exception handling. A body that is no prediction request is told what to send,
    with the fields of the model `served_contract` gives."""

    async def validation_error(_: Request | None, error: RequestValidationError) -> Response:
        return render(validation_problem(error, served_contract()))

    async def render_known(error: Exception) -> Response:
        if isinstance(error, ServingError):
            return render(error)
        if isinstance(error, RequestValidationError):
            return await validation_error(None, error)
        if isinstance(error, StarletteHTTPException):
            return await _http_error(None, error)
        raise error

    app.add_exception_handler(ServingError, _serving_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    return render_known


def render(error: ServingError, headers: Mapping[str, str] | None = None) -> Response:
    """The one rendering of every error the server answers on purpose."""
    return Response(
        error_body(error, request_id_var.get() or ""),
        status_code=error.status_code,
        headers=headers,
        media_type=JSON,
    )


async def _serving_error(_: Request, error: ServingError) -> Response:
    return render(error)


def validation_problem(
    error: RequestValidationError, contract: RequestContract | None
) -> InvalidInputError:
    """Pydantic's errors as one message naming the first offending field; a body that is not
    an object of products says so and what to send."""
    problems = error.errors()
    first = problems[0]
    if first.get("type") == "json_invalid":
        reason = first.get("ctx", {}).get("error", "cannot parse")
        return InvalidInputError(f"invalid JSON: {reason}", field="body")
    field = field_path(first.get("loc", ()))
    same_field = [p for p in problems if field_path(p.get("loc", ())) == field]
    message = request_shape_problem(first, contract) or " or ".join(
        dict.fromkeys(str(p.get("msg", "invalid")) for p in same_field)
    )
    others = len(problems) - len(same_field)
    if others:
        message += f" (and {others} more problem{'s' if others > 1 else ''})"
    return InvalidInputError(message, field=field)


def request_shape_problem(problem: Mapping[str, Any], contract: RequestContract | None) -> str:
    """What is wrong with the request's outline (no body, no object, no list of objects), and
    what to send; "" for a problem elsewhere (such as `top_k`), which pydantic words well."""
    loc, kind, value = tuple(problem.get("loc", ())), problem.get("type"), problem.get("input")
    if loc == ("body",):
        empty = kind == "missing"
        what = "the body is " + ("empty" if empty else f"{json_kind(value)}, not a JSON object")
    elif loc == ("body", "products") and kind == "missing":
        keys = ", ".join(repr(key)[:60] for key in list(value or {})[:5])
        what = 'the body has no "products"' + (f" (it has {keys})" if keys else "")
    elif loc == ("body", "products"):
        empty = kind == "too_short"
        what = '"products" is ' + ("empty" if empty else f"{json_kind(value)}, not a list")
    elif len(loc) == 3 and loc[:2] == ("body", "products") and isinstance(loc[2], int):
        what = f"products[{loc[2]}] is {json_kind(value)}, not a JSON object"
    else:
        return ""
    return f"{what}: {what_to_send(contract)}"


def what_to_send(contract: RequestContract | None) -> str:
    """The outline of a prediction request, with the served model's fields."""
    if contract is None or not contract.text_fields:
        return (
            'send a JSON object {"products": [{...}]}, each product an object keyed by the '
            "model's input fields (GET /v1/model lists them once a model is loaded)"
        )
    example = {"products": [{contract.text_fields[0]: EXAMPLE_TEXTS[0]}]}
    names = ", ".join(repr(name) for name in contract.names[:SHOWN_FIELDS])
    more = len(contract.names) - SHOWN_FIELDS
    if more > 0:
        names += f" and {more} more (GET /v1/model lists them)"
    return (
        f"send a JSON object such as {json.dumps(example, ensure_ascii=False)}, each product an "
        f"object keyed by the model's input fields: {names}"
    )


def json_kind(value: Any) -> str:
    """How a JSON value is named in a message: "a list", "an object", "42", "null"..."""
    if isinstance(value, bytes | bytearray):
        return "not JSON"
    for kind, name in ((list, "a list"), (dict, "an object"), (str, "a string")):
        if isinstance(value, kind):
            return name
    text = json.dumps(value, default=str)
    return text if len(text) <= 30 else text[:29] + "…"


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
