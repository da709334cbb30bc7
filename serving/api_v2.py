"""HTTP routes of the Open Inference Protocol (v2): FastAPI only here; the protocol's parsing
and encoding are in `serving.v2`, the work in `PredictionService` (validation, micro-batching,
hot swap).

The routes stay out of the OpenAPI document: the protocol has its own specification.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.errors import (
    BadRequestError,
    InvalidInputError,
    ModelNotReadyError,
    NotFoundError,
)
from serving.model import ServedModel
from serving.schemas import DEFAULT_TOP_K
from serving.service import PredictionService
from serving.settings import Settings
from serving.v2 import (
    encode_infer_response,
    model_metadata,
    parse_infer_request,
    protocol_error_body,
    rejected_input,
    server_metadata,
)
from serving.version import app_version

log = logging.getLogger(__name__)

JSON = "application/json"
BINARY = "application/octet-stream"
HEADER_LENGTH = "inference-header-content-length"
MODEL = "/v2/models/{model_name}"
VERSION = MODEL + "/versions/{model_version}"

RejectionLogger = Callable[[InvalidInputError, list[dict[str, Any]], bool], None]
Endpoint = Callable[..., Awaitable[Response]]
# HEAD too, as on /healthz and /readyz: probes and uptime checkers often send it; the server
# answers it as GET without the body.
GET = ["GET", "HEAD"]


def add_v2_routes(
    app: FastAPI, service: PredictionService, settings: Settings, log_rejected: RejectionLogger
) -> None:
    """Add the protocol's health, metadata and inference routes for the served model.

    They go on the app itself, not through an included `APIRouter`: FastAPI keeps an included
    router as one opaque route, whose template the request middleware cannot name, and requests
    it refused before routing (413, 415) were counted under route "other"."""

    def route(path: str, methods: list[str]) -> Callable[[Endpoint], Endpoint]:
        return app.api_route(path, methods=methods, include_in_schema=False)

    def served(request: Request) -> ServedModel:
        """The served model, if the path names it (and its version, when the path has one)."""
        model_name = request.path_params["model_name"]
        if model_name != settings.served_name:
            raise NotFoundError(
                f"unknown model '{model_name}': this server serves '{settings.served_name}'"
            )
        model = service.model
        if model is None:
            raise ModelNotReadyError(
                f"model '{model_name}' is not ready: {service.readiness().reason}"
            )
        check_version(model_name, request.path_params.get("model_version"), model.ref.version)
        return model

    @route("/v2", GET)
    async def metadata() -> Response:
        return as_json(server_metadata(app_version()))

    @route("/v2/health/live", GET)
    async def live() -> Response:
        return as_json({"live": True})

    @route("/v2/health/ready", GET)
    async def ready() -> Response:
        state = service.readiness()
        if not state.ready:
            raise ModelNotReadyError(f"not ready: {state.reason}")
        return as_json({"ready": True})

    @route(MODEL, GET)
    @route(VERSION, GET)
    async def model(request: Request) -> Response:
        served_model = served(request)
        ref = served_model.ref
        return as_json(model_metadata(ref.name, ref.version, served_model.contract))

    @route(MODEL + "/ready", GET)
    @route(VERSION + "/ready", GET)
    async def model_ready(request: Request) -> Response:
        ref = served(request).ref
        return as_json({"name": ref.name, "version": ref.version, "ready": True})

    @route(MODEL + "/infer", ["POST"])
    @route(VERSION + "/infer", ["POST"])
    async def infer(request: Request) -> Response:
        contract = served(request).contract
        body = await request.body()
        parsed = parse_infer_request(body, header_length(request), contract, DEFAULT_TOP_K)
        try:
            result = await service.predict(parsed.products, parsed.top_k)
        except InvalidInputError as error:
            log_rejected(error, parsed.products, settings.log_product_text)
            raise rejected_input(error) from None
        # A hot swap may have landed meanwhile: a pinned version is answered by that one only.
        asked = request.path_params.get("model_version")
        check_version(result.model.name, asked, result.model.version)
        payload, json_length = encode_infer_response(
            parsed, result.model.name, result.model.version, result.predictions
        )
        if json_length is None:
            return Response(payload, media_type=JSON)
        headers = {"Inference-Header-Content-Length": str(json_length)}
        return Response(payload, media_type=BINARY, headers=headers)


def check_version(model_name: str, asked: str | None, served: str) -> None:
    if asked is not None and asked != served:
        raise NotFoundError(
            f"model '{model_name}' version '{asked}' is not served: the served version is "
            f"'{served}' (or leave the version out of the path)"
        )


def header_length(request: Request) -> int | None:
    value = request.headers.get(HEADER_LENGTH)
    if value is None:
        return None
    if not value.strip().isdigit():
        raise BadRequestError(
            "Inference-Header-Content-Length must be the JSON header's length in bytes, "
            f"not {value!r}"
        )
    return int(value)


def as_json(payload: Any) -> Response:
    return Response(json.dumps(payload, ensure_ascii=False), media_type=JSON)


def is_v2_path(path: str) -> bool:
    return path == "/v2" or path.startswith("/v2/")


class ProtocolErrors:
    """Outermost ASGI layer: every error answered under /v2 — whoever raised it (the routes,
    the request middleware's size limit, routing's 404 and 405) — in the protocol's
    `{"error": "..."}` form, with its status unchanged."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_v2_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def send_in_protocol_form(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start" and message["status"] >= 400:
                start = message
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = protocol_error_body(b"".join(chunks))
            await send({**start, "headers": error_headers(start, len(body))})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, send_in_protocol_form)


def error_headers(start: Message, length: int) -> list[tuple[bytes, bytes]]:
    replaced = {b"content-length", b"content-type"}
    headers = [(k, v) for k, v in start.get("headers", []) if k.lower() not in replaced]
    return [*headers, (b"content-type", JSON.encode()), (b"content-length", b"%d" % length)]
