"""Hot routes answered straight from `RequestMiddleware`, past FastAPI's and Starlette's layers:
their middleware stack, the router and dependency solving.

Under load, a one-product prediction spent about as long in the framework's layers (routing, the
exception and exit-stack middlewares, building a `Request`, solving dependencies) as in our own
code. A `DirectRoute` takes the body the middleware has already read, reads it exactly as FastAPI
does for a route whose one parameter is a JSON body (same rules for the Content-Type, same
`json.loads`, the route's own pydantic field, so the same errors), and calls the endpoint's own
answering function. The FastAPI route stays registered: it documents the route in OpenAPI and
answers whatever the direct path does not take (other methods, a client gone before its body
arrived).

`ServingApp` goes one step further: a POST to a direct route skips the whole middleware stack
FastAPI builds (its body limit and telemetry layers, Starlette's error middleware, each wrapping
every `send`) and goes to a `RequestMiddleware` of its own, which does what the stack's copy does
(metrics, access log, body limit, errors). That stack cost about a tenth of the event loop's time
per one-product prediction. FastAPI's native OpenTelemetry instrumentation is the one thing it
would miss: when an OpenTelemetry provider is set up at start-up, every request takes the stack.
"""

from __future__ import annotations

import email.message
import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from serving.errors import ServingError
from serving.json_body import invalid_json

Answer = Callable[[Any], Awaitable[Response]]
"""The endpoint's work, given the validated body."""
RenderError = Callable[[Exception], Awaitable[Response]]
"""The app's own rendering of a `ServingError`, `RequestValidationError` or `HTTPException`."""

_NOT_JSON = object()
_MISSING_BODY = {"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}


class DirectRoute:
    """One JSON-body route (`route`), answered by `answer` with the app's error rendering."""

    def __init__(self, route: APIRoute, answer: Answer, render_error: RenderError) -> None:
        if route.body_field is None:
            raise ValueError(f"{route.path} takes no body: nothing to answer directly")
        self.route = route
        self.answer = answer
        self.render_error = render_error

    async def __call__(self, scope: Scope, body: bytes, receive: Receive, send: Send) -> None:
        scope["route"] = self.route  # as the router sets it: request metrics use its template
        try:
            response = await self.answer(self.validated(scope, body))
        except (ServingError, RequestValidationError, HTTPException) as error:
            response = await self.render_error(error)
        await response(scope, receive, send)

    def validated(self, scope: Scope, body: bytes) -> Any:
        """The body as the route's pydantic field validates it, or the error FastAPI raises."""
        if not body:
            raise RequestValidationError([_MISSING_BODY])
        payload = parse_json_body(scope, body)
        field = self.route.body_field
        assert field is not None  # checked in __init__
        value, errors = field.validate(body if payload is _NOT_JSON else payload, {}, loc=("body",))
        if errors:
            raise RequestValidationError(errors)
        return value


class ServingApp(FastAPI):
    """A FastAPI app whose direct routes' POSTs go to `shortcut` (a `RequestMiddleware` around
    them), past the middleware stack, while `take_shortcut` holds."""

    shortcut: ASGIApp | None = None
    take_shortcut = True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.take_shortcut
            and self.shortcut is not None
            and scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] in self.state.direct_routes
        ):
            scope["app"] = self
            await self.shortcut(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    def telemetry_enabled(self) -> bool:
        """Whether FastAPI's native OpenTelemetry would record requests (a provider is set up)."""
        telemetry = getattr(self, "_native_telemetry", None)
        return bool(telemetry is not None and telemetry.enabled())


def parse_json_body(scope: Scope, body: bytes) -> Any:
    """The parsed JSON, or `_NOT_JSON` when the Content-Type is missing or not JSON (FastAPI
    then validates the raw bytes, which fails); errors as FastAPI raises them."""
    if not is_json_content_type(content_type(scope)):
        return _NOT_JSON
    try:
        return json.loads(body)
    except json.JSONDecodeError as error:
        raise RequestValidationError([_invalid_json(error.pos, error.msg)], body=body) from error
    except Exception as error:  # not UTF-8/16/32, nested too deeply, a number too long...
        raise invalid_json(error, body) from None  # as the app's handler renders FastAPI's 400


def _invalid_json(position: int, reason: str) -> dict[str, Any]:
    """A body that is not JSON, as FastAPI reports it (rendered as 422 "invalid JSON: ...")."""
    return {
        "type": "json_invalid",
        "loc": ("body", position),
        "msg": "JSON decode error",
        "ctx": {"error": reason},
    }


def is_json_content_type(value: str | None) -> bool:
    """FastAPI's rule: application/json or application/*+json, parameters allowed."""
    if value is None or value == "":
        return False
    if value == "application/json":
        return True
    message = email.message.Message()
    message["content-type"] = value
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


def content_type(scope: Scope) -> str | None:
    """The request's Content-Type (the first, as Starlette's `Headers.get` gives it)."""
    for key, value in scope["headers"]:
        if key == b"content-type":
            return str(value.decode("latin-1"))
    return None
