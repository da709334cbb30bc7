"""HTTP routes: FastAPI only here. The work is done by `PredictionService`."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from fastapi.routing import APIRoute

from serving.api_v2 import ProtocolErrors, add_v2_routes
from serving.direct import DirectRoute, ServingApp
from serving.error_handlers import add_error_handlers
from serving.errors import (
    InvalidInputError,
    UnsupportedMediaTypeError,
)
from serving.invocations import (
    charset_of,
    mlflow_predictions,
    parse_csv_body,
    parse_json_body,
    top_k_param,
)
from serving.logs import request_id_var
from serving.metrics import ServingMetrics, mark_worker_dead
from serving.middleware import RequestMiddleware
from serving.schemas import (
    DEFAULT_TOP_K,
    NEUTRAL_PRODUCT,
    ErrorResponse,
    HealthResponse,
    ModelResponse,
    PredictRequest,
    PredictResponse,
    ReadyResponse,
    product_example,
)
from serving.service import PredictionService
from serving.settings import Settings
from serving.validation import RequestContract
from serving.version import app_version

log = logging.getLogger(__name__)

JSON = "application/json"
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in (
        (413, "Body larger than MAX_BODY_BYTES"),
        (422, "Invalid input; `error.field` names the offending field"),
        (503, "No model loaded yet"),
    )
}


def create_app(
    settings: Settings,
    *,
    metrics: ServingMetrics | None = None,
    service: PredictionService | None = None,
) -> FastAPI:
    """The application for `settings`; tests may pass their own metrics registry or service."""
    metrics = metrics or ServingMetrics()
    service = service or PredictionService(settings, metrics)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await service.start()
        app.take_shortcut = not app.telemetry_enabled()
        if settings.workers > 1:
            # Workers share one socket: one that accepted connections before its model is
            # loaded would answer 503 while its siblings serve. It joins after its first load
            # attempt (if that fails, it serves and /readyz says why).
            await service.first_attempt_done()
        try:
            yield
        finally:
            await service.stop()
            mark_worker_dead_safely()

    app = ServingApp(
        title="Product categorization",
        version=app_version(),
        description="Classifies catalog products into categories with the MLflow champion model.",
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.metrics = metrics
    app.state.settings = settings
    app.openapi = lambda: model_openapi(app, service, settings)  # type: ignore[method-assign]
    _add_probe_routes(app, service, metrics)
    answer_predict = _add_model_routes(app, service, settings)
    add_v2_routes(app, service, settings, log_rejected)
    render_known = add_error_handlers(app, lambda: served_contract(service))
    # The hot route skips Starlette's routing (see serving.direct); tests may clear this.
    app.state.direct_routes = {
        "/v1/predict": DirectRoute(post_route(app, "/v1/predict"), answer_predict, render_known)
    }
    requests: dict[str, Any] = {
        "metrics": metrics,
        "routes": app.router.routes,
        "max_body_bytes": settings.max_body_bytes,
        "traffic": service.traffic,
        "direct": app.state.direct_routes,
    }
    app.add_middleware(RequestMiddleware, **requests)
    app.add_middleware(ProtocolErrors)  # outermost: /v2 errors in the protocol's form
    app.shortcut = RequestMiddleware(app.router, **requests)  # see serving.direct
    return app


def model_openapi(app: FastAPI, service: PredictionService, settings: Settings) -> dict[str, Any]:
    """The OpenAPI document, with a product described by the served model's own input fields and
    the examples built from them (rebuilt when another model is swapped in; generic until a model
    is loaded), so that "Try it out" in /docs sends a request the model takes."""
    model = service.model
    key = model.ref if model else None
    cached = getattr(app.state, "openapi_for", None)
    if app.openapi_schema is not None and cached == key:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    product = NEUTRAL_PRODUCT
    if model is not None:
        product = product_example(model.contract.fields)
        request = schema["components"]["schemas"]["PredictRequest"]["properties"]["products"]
        request["items"] = model.contract.json_schema(settings.max_text_chars)
        request["examples"] = [[product]]
    scoring = schema["paths"]["/invocations"]["post"]["requestBody"]["content"][JSON]
    scoring["example"] = {"dataframe_records": [product], "params": {"top_k": DEFAULT_TOP_K}}
    app.openapi_schema, app.state.openapi_for = schema, key
    return schema


def _add_probe_routes(app: FastAPI, service: PredictionService, metrics: ServingMetrics) -> None:
    # HEAD too: load balancers and uptime checkers often probe with it.
    @app.api_route(
        "/healthz", methods=["GET", "HEAD"], response_model=HealthResponse, tags=["probes"]
    )
    async def healthz() -> HealthResponse:
        """Liveness: the process answers HTTP (also while the model loads)."""
        return HealthResponse(status="ok")

    @app.api_route(
        "/readyz",
        methods=["GET", "HEAD"],
        response_model=ReadyResponse,
        tags=["probes"],
        responses={503: {"model": ReadyResponse, "description": "Not ready, with the reason"}},
    )
    async def readyz() -> Response:
        """Readiness: a model is loaded and a warm-up prediction ran."""
        state = service.readiness()
        body = ReadyResponse(
            status="ready" if state.ready else "not ready",
            reason=state.reason,
            model_name=state.model.name if state.model else None,
            model_version=state.model.version if state.model else None,
        )
        return Response(body.model_dump_json(), 200 if state.ready else 503, media_type=JSON)

    @app.get("/metrics", tags=["probes"], response_class=Response)
    async def prometheus_metrics() -> Response:
        """Prometheus text exposition."""
        payload, content_type = metrics.render()
        return Response(payload, media_type=content_type)


def _add_model_routes(
    app: FastAPI, service: PredictionService, settings: Settings
) -> Callable[[PredictRequest], Awaitable[Response]]:
    """Register the model's routes; the answer of /v1/predict for a validated body."""

    async def answer_predict(body: PredictRequest) -> Response:
        products = body.products
        try:
            result = await service.predict(products, body.top_k)
        except InvalidInputError as error:
            log_rejected(error, products, settings.log_product_text)
            raise
        answer = {
            "request_id": request_id_var.get(),
            "model_name": result.model.name,
            "model_version": result.model.version,
            "predictions": result.predictions,
        }
        return Response(json.dumps(answer, ensure_ascii=False), media_type=JSON)

    @app.post(
        "/v1/predict",
        response_model=PredictResponse,
        tags=["predictions"],
        responses=ERRORS,
        description=(
            "Labels for up to MAX_PRODUCTS_PER_REQUEST "
            f"(here {settings.max_products_per_request}) products, in order. Products are keyed "
            "by the model's own input fields (GET /v1/model); each needs a non-empty value in "
            f"one of its text fields; each field holds at most {settings.max_text_chars} "
            "characters."
        ),
    )
    async def predict(body: PredictRequest) -> Response:
        return await answer_predict(body)

    @app.post(
        "/invocations",
        tags=["predictions"],
        responses=ERRORS,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    JSON: {"schema": {"type": "object"}},
                    "text/csv": {"schema": {"type": "string"}},
                },
            }
        },
    )
    async def invocations(request: Request) -> Response:
        """MLflow's scoring protocol, as `mlflow models serve` answers it: `dataframe_records`,
        `dataframe_split`, `instances` or `inputs`, with `params.top_k`; or a CSV body."""
        body = await request.body()
        content_type = request.headers.get("content-type", JSON)
        media = content_type.split(";")[0].strip().lower()
        if media == "text/csv":
            scoring = parse_csv_body(body, charset_of(content_type))
        elif media in (JSON, "application/x-www-form-urlencoded", ""):
            scoring = parse_json_body(body)
        else:
            raise UnsupportedMediaTypeError(
                f"content type {media!r} is not supported here; send {JSON} or text/csv"
            )
        top_k = top_k_param(scoring.params, DEFAULT_TOP_K)
        try:
            result = await service.predict(scoring.records, top_k)
        except InvalidInputError as error:
            located = scoring.located(error)  # named in the request's own shape
            log_rejected(located, scoring.records, settings.log_product_text)
            raise located from None
        answer = mlflow_predictions(result.predictions)
        return Response(json.dumps(answer, ensure_ascii=False), media_type=JSON)

    @app.get(
        "/v1/model",
        response_model=ModelResponse,
        tags=["model"],
        responses={503: ERRORS[503]},
    )
    async def model_card() -> Response:
        """The served model: name, version, alias, run id, training metrics, input fields and
        classes, and the version of this server."""
        card = service.model_card() | {"server_version": app_version()}
        return Response(json.dumps(card, ensure_ascii=False), media_type=JSON)

    return answer_predict


def served_contract(service: PredictionService) -> RequestContract | None:
    model = service.model
    return model.contract if model is not None else None


def post_route(app: FastAPI, path: str) -> APIRoute:
    return next(
        route
        for route in app.router.routes
        if isinstance(route, APIRoute) and route.path == path and "POST" in (route.methods or ())
    )


def log_rejected(error: InvalidInputError, products: list[dict[str, Any]], with_text: bool) -> None:
    """Log a rejected prediction; the products' text only with LOG_PRODUCT_TEXT=true."""
    extra: dict[str, Any] = {"field": error.field, "reason": error.message}
    if with_text:
        extra["products"] = products
    log.info("prediction rejected", extra=extra)


def mark_worker_dead_safely() -> None:
    try:
        mark_worker_dead(os.getpid())
    except OSError:
        log.warning("could not clean this worker's multiprocess metric files")
