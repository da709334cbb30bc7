"""The direct route answers exactly as FastAPI's own route: same statuses, headers and bodies for
good and bad requests, same request metrics and access log."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from serving.direct import is_json_content_type

PRODUCT = {"title": "Chess game for X11", "description": ["Play chess on your desktop."]}
JSON_TYPE = {"Content-Type": "application/json"}

# (body bytes, headers): each is sent once through the direct route and once through FastAPI.
REQUESTS: list[tuple[bytes, dict[str, str]]] = [
    (json.dumps({"products": [PRODUCT]}).encode(), JSON_TYPE),
    (json.dumps({"products": [PRODUCT, {"title": "Emacs"}], "top_k": 2}).encode(), JSON_TYPE),
    (json.dumps({"products": [PRODUCT]}, ensure_ascii=False).encode("utf-16"), JSON_TYPE),
    (json.dumps({"products": [PRODUCT]}).encode(), {"Content-Type": "application/json; v=1"}),
    (json.dumps({"products": [PRODUCT]}).encode(), {"Content-Type": "application/x+json"}),
    (json.dumps({"products": [PRODUCT]}).encode(), {}),  # no Content-Type: refused (415)
    (b"", {}),
    (json.dumps({"products": [PRODUCT]}).encode(), JSON_TYPE | {"Content-Encoding": "gzip"}),
    (b"", JSON_TYPE),
    (b"{", JSON_TYPE),
    (b"\xff\xfe\x00", JSON_TYPE),
    (b"[" * 100_000, JSON_TYPE),
    (b'{"products": [{"title": "x", "price": ' + b"9" * 5000 + b"}]}", JSON_TYPE),
    (b"null", JSON_TYPE),
    (b"[]", JSON_TYPE),
    (b'"text"', JSON_TYPE),
    (b"{}", JSON_TYPE),
    (b'{"products": []}', JSON_TYPE),
    (b'{"products": {"title": "x"}}', JSON_TYPE),
    (b'{"products": [1, "x"]}', JSON_TYPE),
    (b'{"products": [{"title": "x"}], "top_k": "3"}', JSON_TYPE),
    (b'{"products": [{"title": "x"}], "top_k": 0}', JSON_TYPE),
    (b'{"products": [{"title": "x"}], "top_k": 1.5}', JSON_TYPE),
    (b'{"products": [{"title": ""}]}', JSON_TYPE),
    (b'{"products": [{"colour": "red"}]}', JSON_TYPE),
    (b'{"products": [{"title": ["a", 1]}]}', JSON_TYPE),
    (b'{"products": [{"title": "a", "brand": {"k": NaN}}]}', JSON_TYPE),
]


def answer(client: Any, body: bytes, headers: dict[str, str]) -> tuple[int, dict, Any]:
    response = client.post("/v1/predict", content=body, headers=headers)
    kept = {k: v for k, v in response.headers.items() if k in ("content-type", "content-length")}
    payload = response.json()
    payload.pop("request_id", None)
    return response.status_code, kept, payload


@pytest.mark.parametrize(("body", "headers"), REQUESTS)
def test_direct_route_answers_as_fastapi_does(make_client, body, headers) -> None:
    client = make_client()
    direct = answer(client, body, headers)
    client.app.state.direct_routes.clear()  # from now on, Starlette's router answers
    assert answer(client, body, headers) == direct


def test_direct_route_records_metrics_and_access_log(make_client, metrics, caplog) -> None:
    client = make_client()
    with caplog.at_level(logging.INFO, logger="serving.access"):
        client.post("/v1/predict", json={"products": [PRODUCT]})
        client.post("/v1/predict", json={"products": []})
    lines = [r for r in caplog.records if r.name == "serving.access"]
    assert [(r.getMessage(), r.route) for r in lines] == [  # type: ignore[attr-defined]
        ("POST /v1/predict 200", "/v1/predict"),
        ("POST /v1/predict 422", "/v1/predict"),
    ]
    counts = {
        sample.labels["status"]: sample.value
        for family in text_string_to_metric_families(metrics.render()[0].decode())
        if family.name == "http_requests"
        for sample in family.samples
        if sample.name == "http_requests_total" and sample.labels["route"] == "/v1/predict"
    }
    assert counts == {"200": 1.0, "422": 1.0}


def test_other_methods_still_reach_the_router(make_client) -> None:
    response = make_client().get("/v1/predict")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    ("value", "is_json"),
    [
        ("application/json", True),
        ("Application/JSON; charset=utf-8", True),
        ("application/problem+json", True),
        ("text/json", False),
        ("application/x-www-form-urlencoded", False),
        ("", False),
        (None, False),
    ],
)
def test_json_content_types_as_fastapi_reads_them(value, is_json) -> None:
    assert is_json_content_type(value) is is_json


class CountingLayer:
    """An ASGI middleware that counts the requests passing through the app's stack."""

    def __init__(self, app: Any, seen: list[str]) -> None:
        self.app, self.seen = app, seen

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.seen.append(scope["path"])
        await self.app(scope, receive, send)


def test_direct_posts_skip_the_middleware_stack_and_others_take_it(make_client) -> None:
    client = make_client()
    seen: list[str] = []
    client.app.middleware_stack = CountingLayer(client.app.build_middleware_stack(), seen)
    assert client.post("/v1/predict", json={"products": [PRODUCT]}).status_code == 200
    assert client.post("/v1/predict", json={"products": []}).status_code == 422
    assert client.get("/healthz").status_code == 200
    assert client.get("/v1/predict").status_code == 405
    assert seen == ["/healthz", "/v1/predict"]
    client.app.take_shortcut = False  # as when FastAPI's OpenTelemetry is set up
    assert client.post("/v1/predict", json={"products": [PRODUCT]}).status_code == 200
    assert seen[-1] == "/v1/predict"


def test_the_shortcut_is_off_when_fastapi_telemetry_has_a_provider() -> None:
    from opentelemetry import trace

    from serving.direct import ServingApp

    assert not ServingApp().telemetry_enabled()  # no provider set up in this process
    traced = ServingApp(telemetry={"tracer_provider": trace.NoOpTracerProvider()})
    assert traced.telemetry_enabled()


def test_a_client_gone_before_its_body_gets_no_answer_and_counts_as_499(
    make_client, metrics
) -> None:
    import asyncio

    app = make_client().app
    sent: list[dict[str, Any]] = []
    scope = {
        "type": "http", "method": "POST", "path": "/v1/predict", "raw_path": b"/v1/predict",
        "query_string": b"", "headers": [(b"content-type", b"application/json")],
        "http_version": "1.1", "scheme": "http", "root_path": "",
        "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000),
    }  # fmt: skip

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    assert sent == []
    statuses = [
        sample.labels["status"]
        for family in text_string_to_metric_families(metrics.render()[0].decode())
        if family.name == "http_requests"
        for sample in family.samples
        if sample.name == "http_requests_total" and sample.labels["route"] == "/v1/predict"
    ]
    assert statuses == ["499"]
