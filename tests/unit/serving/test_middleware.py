"""Request ids, body limits, request metrics and the generic 500, at the ASGI level."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import time
import weakref

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from serving.api import create_app
from serving.errors import UnsupportedEncodingError
from serving.load_failures import REGISTRY_MISS_WORDS
from serving.metrics import ServingMetrics
from serving.middleware import (
    RequestMiddleware,
    check_content_encoding,
    pick_request_id,
    route_template,
    watch_client,
)
from serving.service import PredictionService
from serving.watch import request_watch_var
from tests.support import wait_until_ready

PRODUCT = {"title": "Chess game for X11"}


def scope(headers: dict[str, str] | None = None, path: str = "/v1/predict") -> dict:
    headers = {"Content-Type": "application/json"} | (headers or {})
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return {"type": "http", "method": "POST", "path": path, "headers": raw}


def test_request_id_from_client_or_new() -> None:
    assert pick_request_id(scope({"X-Request-ID": "abc-123"})) == "abc-123"
    assert len(pick_request_id(scope())) == 32
    assert pick_request_id(scope({"X-Request-ID": "x" * 200})) != "x" * 200
    assert pick_request_id(scope({"X-Request-ID": "<script>"})) != "<script>"


def test_route_template_for_unknown_paths_is_other() -> None:
    assert route_template(scope(path="/wp-admin/login.php"), []) == "other"


def test_only_identity_content_encodings_are_taken() -> None:
    check_content_encoding(scope())
    check_content_encoding(scope({"Content-Encoding": " Identity "}))
    twice = scope({"Content-Encoding": "identity"})
    twice["headers"].append((b"content-encoding", b"deflate"))
    with pytest.raises(UnsupportedEncodingError, match="Content-Encoding: identity, deflate"):
        check_content_encoding(twice)


def test_body_streamed_past_the_limit_is_refused_before_the_app_runs() -> None:
    app_called = []

    async def app(scope, receive, send) -> None:
        app_called.append(True)

    middleware = RequestMiddleware(app, ServingMetrics(), [], max_body_bytes=1024)
    chunks = [{"type": "http.request", "body": b"x" * 600, "more_body": True}] * 3
    sent: list[dict] = []

    async def receive() -> dict:
        return chunks.pop(0)

    async def send(message: dict) -> None:
        sent.append(message)

    # The client declares a small Content-Length but sends more: the bytes that arrive count.
    asyncio.run(middleware(scope({"Content-Length": "100"}), receive, send))
    assert not app_called
    assert sent[0]["status"] == 413
    body = json.loads(sent[1]["body"])
    assert body["error"]["code"] == "payload_too_large"


class FailingService(PredictionService):
    """A service whose prediction fails in an unforeseen way."""

    async def predict(self, products, top_k):
        raise RuntimeError("secret internal detail /etc/passwd")


def test_unexpected_errors_give_a_generic_500_and_a_logged_traceback(
    make_settings, metrics, cached_loader, caplog
) -> None:
    settings = make_settings()
    service = FailingService(settings, metrics, load_model=cached_loader)
    with TestClient(create_app(settings, metrics=metrics, service=service)) as client:
        wait_until_ready(client)
        with caplog.at_level(logging.ERROR):
            response = client.post("/v1/predict", json={"products": [PRODUCT]})
    assert response.status_code == 500
    body = response.json()
    assert body == {
        "error": {"code": "internal_error", "message": "internal server error"},
        "request_id": response.headers["x-request-id"],
    }
    assert "secret" not in response.text
    record = next(r for r in caplog.records if r.message == "unhandled error")
    assert record.exc_info and "secret internal detail" in str(record.exc_info[1])
    assert (
        metrics.registry.get_sample_value(
            "http_requests_total", {"route": "/v1/predict", "method": "POST", "status": "500"}
        )
        == 1
    )


def metric_samples(client: TestClient) -> dict[str, list]:
    text = client.get("/metrics").text
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def test_metrics_names_labels_and_exclusions(make_client, served_model) -> None:
    client = make_client()
    client.post("/v1/predict", json={"products": [PRODUCT, {"title": "Perl XML parser"}]})
    client.post("/v1/predict", json={"products": []})
    client.get("/wp-admin/../../etc/passwd")
    client.request("PROPFIND", "/v1/predict")
    for path in ("/healthz", "/readyz", "/metrics"):
        client.get(path)
    client.head("/healthz")
    families = metric_samples(client)

    requests = {
        (s.labels["route"], s.labels["method"], s.labels["status"]): s.value
        for s in families["http_requests"]
        if s.name == "http_requests_total"
    }
    assert requests[("/v1/predict", "POST", "200")] == 1
    assert requests[("/v1/predict", "POST", "422")] == 1
    assert requests[("other", "GET", "404")] == 1
    assert requests[("/v1/predict", "other", "405")] == 1  # unknown methods: a bounded label
    assert not any(route in ("/healthz", "/readyz", "/metrics") for route, _, _ in requests)
    durations = [s for s in families["http_request_duration_seconds"] if s.name.endswith("_count")]
    assert {s.labels["route"] for s in durations} == {"/v1/predict", "other"}
    assert families["http_requests_in_flight"][0].value == 0

    classes = {str(c) for c in served_model.classes}
    predicted = {
        s.labels["label"]: s.value for s in families["predictions"] if s.name.endswith("_total")
    }
    assert set(predicted) == classes and sum(predicted.values()) == 2
    confidence = next(s for s in families["prediction_confidence"] if s.name.endswith("_count"))
    assert confidence.value == 2
    batch = next(s for s in families["prediction_batch_size"] if s.name.endswith("_sum"))
    assert batch.value == 2

    info = families["model_info"][0]
    assert info.value == 1 and info.labels == {
        "name": "tiny-classifier",
        "version": "1",
        "alias": "champion",
    }
    assert (
        next(s for s in families["model_load_duration_seconds"] if s.name.endswith("_count")).value
        == 1
    )
    assert not [s for s in families["model_load_failures"] if s.value]
    wanted = families["model_wanted_info"][0]
    assert wanted.value == 1 and wanted.labels == info.labels
    assert families["model_last_load_timestamp_seconds"][0].value > 1.7e9
    assert "process_resident_memory_bytes" in families or "process_cpu_seconds" in families


@pytest.mark.parametrize("path", ["/v1/predict", "/invocations"])
def test_a_wrong_method_is_405_whatever_the_body(make_client, path) -> None:
    """PUT or PATCH without a JSON Content-Type, compressed or too large, were refused for their
    body (415, 413) before the router said the method was wrong, and counted as route "other"."""
    client = make_client(max_body_bytes=1024)
    sent = [
        ("PUT", {}, b"x"),
        ("PATCH", {}, b""),
        ("PUT", {"Content-Type": "text/plain"}, b"x"),
        ("PATCH", {"Content-Type": "application/json", "Content-Encoding": "gzip"}, b"x"),
        ("PUT", {"Content-Type": "application/json"}, b"[" + b" " * 2000 + b"]"),
        ("DELETE", {}, b"x"),
    ]
    for method, headers, body in sent:
        response = client.request(method, path, headers=headers, content=body)
        assert response.status_code == 405, (method, headers, response.text)
        assert response.headers["allow"] == "POST"
        assert response.json()["error"]["code"] == "method_not_allowed"
    counted = {
        (s.labels["route"], s.labels["method"], s.labels["status"]): s.value
        for s in metric_samples(client)["http_requests"]
        if s.name == "http_requests_total"
    }
    assert counted == {
        (path, "PUT", "405"): 3,
        (path, "PATCH", "405"): 2,
        (path, "DELETE", "405"): 1,
    }


def test_refusals_before_a_v2_route_runs_are_counted_under_its_template(make_client) -> None:
    """A v2 request refused for its size or encoding (before routing) was counted as route
    "other": FastAPI kept the included v2 router as one route without a template."""
    client = make_client(max_body_bytes=1024)
    infer = "/v2/models/tiny-classifier/infer"
    pinned = "/v2/models/tiny-classifier/versions/1/infer"
    huge = b"a" * 2000
    gzip = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    assert client.post(infer, content=huge).status_code == 413
    assert client.post(pinned, content=huge).status_code == 413
    assert client.post(infer, content=b"{}", headers=gzip).status_code == 415
    assert client.post("/v2/models/other/infer", json={}).status_code == 404
    assert client.get(infer).status_code == 405
    assert client.post("/v1/predict", content=b"{}").status_code == 415  # no Content-Type
    assert client.post("/invocations", content=huge).status_code == 413
    counted = {
        (s.labels["route"], s.labels["method"], s.labels["status"]): s.value
        for s in metric_samples(client)["http_requests"]
        if s.name == "http_requests_total"
    }
    assert counted == {
        ("/v2/models/{model_name}/infer", "POST", "413"): 1,
        ("/v2/models/{model_name}/versions/{model_version}/infer", "POST", "413"): 1,
        ("/v2/models/{model_name}/infer", "POST", "415"): 1,
        ("/v2/models/{model_name}/infer", "POST", "404"): 1,
        ("/v2/models/{model_name}/infer", "GET", "405"): 1,
        ("/v1/predict", "POST", "415"): 1,
        ("/invocations", "POST", "413"): 1,
    }


def test_every_route_of_the_app_has_a_template(make_client) -> None:
    """Request metrics name the template of the route that matches; a route without one (such as
    an included router) would count its requests as "other"."""
    routes = make_client(ready=False).app.router.routes
    assert all(getattr(route, "path", None) for route in routes)


def test_route_template_of_a_method_the_route_does_not_take(make_client) -> None:
    routes = make_client(ready=False).app.router.routes
    put = scope() | {"method": "PUT"}
    assert route_template(put, routes) == "/v1/predict"


def test_access_log_skips_probes_and_hides_product_text(make_client, caplog) -> None:
    client = make_client()
    with caplog.at_level(logging.INFO, logger="serving.access"):
        client.get("/healthz")
        client.get("/readyz")
        client.get("/metrics")
        client.post("/v1/predict", json={"products": [{"title": "SECRET product name"}]})
    access = [r for r in caplog.records if r.name == "serving.access"]
    assert [r.route for r in access] == ["/v1/predict"]
    assert len(access[0].request_id) == 32
    assert "SECRET" not in caplog.text


def test_product_text_is_logged_only_when_asked(make_client, caplog) -> None:
    client = make_client(log_product_text=True)
    with caplog.at_level(logging.INFO):
        client.post("/v1/predict", json={"products": [{"brand": "VISIBLE-BRAND"}]})
    rejected = next(r for r in caplog.records if r.message == "prediction rejected")
    assert rejected.products == [{"brand": "VISIBLE-BRAND"}]


def test_not_ready_answers_503_with_the_reason(make_client) -> None:
    client = make_client(ready=False, model_alias="missing-alias")
    deadline = time.monotonic() + 30
    while client.get("/readyz").json()["reason"] == "loading" and time.monotonic() < deadline:
        time.sleep(0.05)
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["status"] == "not ready"
    reason = f"'tiny-classifier@missing-alias' {REGISTRY_MISS_WORDS}"
    assert ready.json()["reason"] == reason  # a misspelled name or alias
    assert client.head("/readyz").status_code == 503
    predict = client.post("/v1/predict", json={"products": [PRODUCT]})
    assert predict.status_code == 503 and predict.json()["error"]["code"] == "model_not_ready"
    assert predict.json()["error"]["message"] == f"no model loaded yet: {reason}"
    for text in (ready.text, predict.text):  # no internals: no store address, no exception
        assert "sqlite" not in text and "Error" not in text and "RESOURCE_DOES_NOT" not in text
    assert client.get("/v1/model").status_code == 503
    assert client.get("/healthz").status_code == 200


def test_metrics_module_keeps_clean_registries_apart() -> None:
    first, second = ServingMetrics(), ServingMetrics()
    first.model_load_failed("7", "load_error")
    labels = {"version": "7", "reason": "load_error"}
    assert first.registry.get_sample_value("model_load_failures_total", labels) == 1
    assert second.registry.get_sample_value("model_load_failures_total", labels) is None


def run_until_cancelled(app, body: bytes = b"{}") -> list[dict]:
    """Run `app` behind the middleware, cancel it as uvicorn does when the shutdown grace period
    ends, and return what was sent to the client."""
    middleware = RequestMiddleware(app, ServingMetrics(), [], max_body_bytes=1024)
    sent: list[dict] = []
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    async def scenario() -> None:
        task = asyncio.create_task(middleware(scope(), receive, send))
        await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())
    return sent


def test_a_request_cut_short_by_the_shutdown_gets_a_json_503() -> None:
    async def endless(scope, receive, send) -> None:
        await asyncio.sleep(3600)

    sent = run_until_cancelled(endless)
    assert sent[0]["status"] == 503
    assert json.loads(sent[1]["body"])["error"]["code"] == "model_not_ready"


def test_the_app_learns_that_the_client_left() -> None:
    seen: list[bool] = []

    async def waits_for_disconnect(scope, receive, send) -> None:
        await receive()  # the body
        message = await receive()
        seen.append(message["type"] == "http.disconnect")

    middleware = RequestMiddleware(waits_for_disconnect, ServingMetrics(), [], 1024)
    messages = [
        {"type": "http.request", "body": b"{}", "more_body": False},
        {"type": "http.disconnect"},
    ]

    async def receive() -> dict:
        return messages.pop(0)

    async def send(message: dict) -> None:
        pass

    asyncio.run(middleware(scope(), receive, send))
    assert seen == [True]


def test_the_client_is_watched_only_once_the_service_asks() -> None:
    """A request answered in one model call starts no watcher task; the first question starts
    one and already sees a close that happened before it."""
    messages = [{"type": "http.disconnect"}]

    async def receive() -> dict:
        return messages.pop(0)

    async def scenario() -> None:
        watchers: list[asyncio.Task[None]] = []
        body = {"type": "http.request", "body": b"{}", "more_body": False}
        watch_client(body, receive, 0.0, watchers)
        watch = request_watch_var.get()
        assert watch is not None and watchers == []
        assert await watch.client_gone()
        assert len(watchers) == 1 and await watch.client_gone()
        assert len(watchers) == 1  # one watcher per request

    asyncio.run(scenario())


def test_an_unwatched_request_leaves_no_reference_cycle() -> None:
    """A request's watch and its uvicorn `receive` are freed as soon as the request lets them go,
    without the cyclic garbage collector (whose full collections pause the whole server)."""

    class Receive:  # stands for uvicorn's bound `RequestResponseCycle.receive`
        async def __call__(self) -> dict:
            return {"type": "http.disconnect"}

    async def scenario() -> tuple[weakref.ref, weakref.ref]:
        receive = Receive()
        body = {"type": "http.request", "body": b"{}", "more_body": False}
        watch_client(body, receive, 0.0, [])
        watch = request_watch_var.get()
        request_watch_var.set(None)
        return weakref.ref(watch), weakref.ref(receive)

    gc.disable()
    try:
        watch, receive = asyncio.run(scenario())
        assert watch() is None and receive() is None
    finally:
        gc.enable()
