"""The ASGI middleware around every request: request id, checks of the body's encoding, type and
size, watching for the client leaving, request metrics, access log, a JSON 503 for requests cut
short by the shutdown and a generic 500 for anything unexpected. Pure ASGI, so it adds
microseconds."""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import Mapping, Sequence

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.batching import Traffic
from serving.direct import DirectRoute, is_json_content_type
from serving.errors import (
    InternalError,
    ModelNotReadyError,
    PayloadTooLargeError,
    ServingError,
    UnsupportedEncodingError,
    UnsupportedMediaTypeError,
    error_body,
)
from serving.logs import AccessLog, request_id_var
from serving.metrics import ServingMetrics
from serving.watch import RequestWatch, request_watch_var

log = logging.getLogger(__name__)
access_log = AccessLog(logging.getLogger("serving.access"))

QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
OTHER_ROUTE = "other"
OTHER_METHOD = "other"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
JSON_ONLY_PATHS = frozenset({"/v1/predict"})  # routes whose body must be JSON (else 415)
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")


class RequestMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        metrics: ServingMetrics,
        routes: Sequence[BaseRoute],
        max_body_bytes: int,
        traffic: Traffic | None = None,
        direct: Mapping[str, DirectRoute] | None = None,
    ) -> None:
        self.app = app
        self.direct = direct if direct is not None else {}
        self.metrics = metrics
        self.routes = routes
        self.max_body_bytes = max_body_bytes
        self.traffic = traffic or Traffic()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = pick_request_id(scope)
        token = request_id_var.set(request_id)
        quiet = scope["path"] in QUIET_PATHS
        exchange = _Exchange(send, request_id)
        if not quiet:
            self.metrics.in_flight.inc()
            self.traffic.enter()
        try:
            await self._answer(scope, receive, exchange)
        finally:
            if not quiet:
                self.traffic.leave()
                self.metrics.in_flight.dec()
                self._record(scope, exchange)
            request_id_var.reset(token)

    async def _answer(self, scope: Scope, receive: Receive, exchange: _Exchange) -> None:
        watchers: list[asyncio.Task[None]] = []
        try:
            if scope["method"] in BODY_METHODS and not self._method_not_allowed(scope):
                check_content_encoding(scope)
                check_content_type(scope)
                body = await self._read_limited_body(scope, receive)
                receive = watch_client(body, receive, exchange.began_loop, watchers)
                direct = self.direct.get(scope["path"]) if scope["method"] == "POST" else None
                if direct is not None:
                    if body["type"] == "http.request":
                        await direct(scope, body["body"], receive, exchange.send)
                    return  # else the client left before its body arrived: no one to answer
            await self.app(scope, receive, exchange.send)
        except ServingError as exc:
            await exchange.send_error(exc)
        except asyncio.CancelledError:
            # uvicorn cancels what is still running when SHUTDOWN_TIMEOUT_SECONDS ends; the
            # client gets our 503 rather than uvicorn's plain-text 500.
            if exchange.started:
                raise
            log.warning("request cut short by the shutdown", extra={"path": scope["path"]})
            await exchange.send_error(ModelNotReadyError("the server is shutting down"))
        except Exception:
            log.exception("unhandled error", extra={"path": scope["path"]})
            if not exchange.started:
                await exchange.send_error(InternalError())
        finally:
            for watcher in watchers:
                watcher.cancel()
            if scope["method"] in BODY_METHODS:
                request_watch_var.set(None)

    def _method_not_allowed(self, scope: Scope) -> bool:
        """Whether a route has this path but not this method: the router's 405 (with `Allow`)
        answers it, whatever its body, which is then neither checked nor read."""
        if scope["method"] == "POST" and scope["path"] in self.direct:
            return False
        matches = [route.matches(scope)[0] for route in self.routes]
        return Match.FULL not in matches and Match.PARTIAL in matches

    async def _read_limited_body(self, scope: Scope, receive: Receive) -> Message:
        """Read the whole body, refusing it (413) once it is known to exceed the limit, from the
        Content-Length header or from the bytes that actually arrive; the message to replay."""
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            raise PayloadTooLargeError(self._too_large(f"Content-Length is {int(declared)} bytes"))
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return message  # the client left before sending it all
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_body_bytes:
                raise PayloadTooLargeError(self._too_large(f"{size} bytes arrived so far"))
            if not message.get("more_body", False):
                break
        return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

    def _too_large(self, what: str) -> str:
        return f"request body too large: {what}, the limit is {self.max_body_bytes} bytes"

    def _record(self, scope: Scope, exchange: _Exchange) -> None:
        route = route_template(scope, self.routes)
        seconds = time.perf_counter() - exchange.began
        method = scope["method"] if scope["method"] in KNOWN_METHODS else OTHER_METHOD
        self.metrics.observe_request(route, method, exchange.status, seconds)
        access_log.write(
            method, scope["path"], exchange.status, exchange.request_id, route, seconds
        )


class _Exchange:
    """The response side of one request: adds X-Request-ID and remembers the status."""

    def __init__(self, send: Send, request_id: str) -> None:
        self._send = send
        self.request_id = request_id
        self.status = 499  # no response started: the client went away (nginx's convention)
        self.started = False
        self.began = time.perf_counter()
        self.began_loop = asyncio.get_running_loop().time()

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            self.status = message["status"]
            headers = list(message.get("headers", []))
            headers.append((b"x-request-id", self.request_id.encode()))
            message = {**message, "headers": headers}
        await self._send(message)

    async def send_error(self, error: ServingError) -> None:
        if self.started:
            return
        body = error_body(error, self.request_id)
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        if isinstance(error, PayloadTooLargeError):
            headers.append((b"connection", b"close"))  # the rest of the body is not read
        if isinstance(error, UnsupportedEncodingError):
            headers.append((b"accept-encoding", error.accepted_encodings.encode()))
        await self.send(
            {"type": "http.response.start", "status": error.status_code, "headers": headers}
        )
        await self.send({"type": "http.response.body", "body": body})


def check_content_encoding(scope: Scope) -> None:
    """Bodies are read as sent: one compressed with a Content-Encoding (which neither uvicorn nor
    the routes decode) would only fail to parse, so it is refused before anyone reads it."""
    declared = ", ".join(
        value.decode("latin-1") for key, value in scope["headers"] if key == b"content-encoding"
    )
    codings = [coding.strip().lower() for coding in declared.split(",") if coding.strip()]
    if any(coding != "identity" for coding in codings):
        raise UnsupportedEncodingError(
            f"the body is sent with Content-Encoding: {declared[:100]}, which this server does "
            "not decode: send it uncompressed, without a Content-Encoding header",
            field="body",
        )


def check_content_type(scope: Scope) -> None:
    """A body sent to a JSON route must be declared as JSON, as FastAPI reads it (a body without
    a Content-Type would reach the route's validation as bytes, and fail as "not an object")."""
    if scope["path"] not in JSON_ONLY_PATHS:
        return
    declared = _header(scope, b"content-type")
    if is_json_content_type(declared):
        return
    got = f"got {declared!r}" if declared else "the request has no Content-Type"
    raise UnsupportedMediaTypeError(
        f"send the body as JSON with Content-Type: application/json ({got})", field="body"
    )


def watch_client(
    body: Message, receive: Receive, began: float, watchers: list[asyncio.Task[None]]
) -> Receive:
    """Once the body is read, the only message left is `http.disconnect`. The request's
    `RequestWatch` (set for the service, which asks between chunks) starts, at the first
    question, a task that waits for it and sets `gone`; the task is added to `watchers`, for the
    caller to cancel. The returned `receive` replays the body, then reports the disconnect."""
    watch = RequestWatch(began)
    pending = [body]
    # The closures hold the watch's event, not the watch: the watch holds them, and a cycle
    # would leave the request's objects (uvicorn's too) to the cyclic garbage collector.
    gone = watch.gone

    async def wait_for_disconnect() -> None:
        message = body
        while message["type"] != "http.disconnect":
            message = await receive()
        gone.set()

    def begin_watching() -> None:
        watchers.append(asyncio.create_task(wait_for_disconnect()))

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        watch.watch()
        await watch.gone.wait()
        return {"type": "http.disconnect"}

    watch.begin_watching = begin_watching
    request_watch_var.set(watch)
    return replay


def pick_request_id(scope: Scope) -> str:
    """The client's X-Request-ID if it is a plausible id, else a new one."""
    given = _header(scope, b"x-request-id")
    if given is not None and _CLIENT_REQUEST_ID.fullmatch(given):
        return given
    # Not uuid4(): its os.urandom() call releases the GIL, and taking it back from a busy model
    # thread can cost a whole switch interval. Request ids need to be unique, not secret.
    return f"{random.getrandbits(128):032x}"


def route_template(scope: Scope, routes: Sequence[BaseRoute]) -> str:
    """The route template that matched (or would match) the request, also for a method the
    route does not take (a 405); "other" for unknown paths."""
    route = scope.get("route")
    if route is None:
        matches = [(r, r.matches(scope)[0]) for r in routes]
        full = [r for r, match in matches if match is Match.FULL]
        partial = [r for r, match in matches if match is Match.PARTIAL]
        route = next(iter(full + partial), None)
    return getattr(route, "path", None) or OTHER_ROUTE


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None
