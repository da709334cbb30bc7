"""The Open Inference Protocol's routes, in process, against an app serving the tiny model."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from serving.api import create_app
from serving.metrics import ServingMetrics
from serving.model import ModelLocator
from serving.service import PredictionService
from serving.settings import Settings
from serving.v2_tensors import encode_bytes
from tests.support import Registry, wait_until_ready

MAX_PRODUCTS = 5
MAX_BODY = 4096
TITLES = ["Perl module for parsing XML documents", "Chess game for X11"]


@pytest.fixture(scope="module")
def metrics() -> ServingMetrics:
    return ServingMetrics(CollectorRegistry())


@pytest.fixture(scope="module")
def client(tiny_registry: Registry, served_model, metrics) -> Iterator[TestClient]:
    settings = Settings(
        mlflow_tracking_uri=tiny_registry.tracking_uri,
        model_name=tiny_registry.model_name,
        reload_interval_seconds=0,
        max_products_per_request=MAX_PRODUCTS,
        max_text_chars=300,
        max_body_bytes=MAX_BODY,
    )

    def load(ref):
        return dataclasses.replace(served_model, ref=ref, loaded_at=time.time())

    service = PredictionService(settings, metrics, ModelLocator(settings), load)
    with TestClient(create_app(settings, metrics=metrics, service=service)) as test_client:
        wait_until_ready(test_client)
        yield test_client


@pytest.fixture(scope="module")
def model_path(tiny_registry: Registry) -> str:
    return f"/v2/models/{tiny_registry.model_name}"


def infer_body(titles: list[str], **extra) -> dict:
    title = {"name": "title", "datatype": "BYTES", "shape": [len(titles)], "data": titles}
    return {"inputs": [title], **extra}


def assert_v2_error(response, status: int, *fragments: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"} and isinstance(body["error"], str), body
    for fragment in fragments:
        assert fragment in body["error"], body
    return body["error"]


def test_server_metadata_and_health(client) -> None:
    meta = client.get("/v2").json()
    assert meta["name"] == "product-categorization"
    assert meta["extensions"] == ["binary_tensor_data"]
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}


def test_head_answers_the_health_and_metadata_routes_as_get_does_without_a_body(
    client, model_path, tiny_registry
) -> None:
    """As on /healthz and /readyz: load balancers and uptime checkers probe with HEAD."""
    versioned = f"{model_path}/versions/{tiny_registry.version}"
    paths = ["/v2", "/v2/health/live", "/v2/health/ready", model_path, versioned]
    for path in [*paths, f"{model_path}/ready", f"{versioned}/ready"]:
        get, head = client.get(path), client.head(path)
        assert (head.status_code, get.status_code) == (200, 200), path
        assert head.content == b"", path
        assert head.headers["content-length"] == get.headers["content-length"], path
        assert head.headers["content-type"] == "application/json", path
    assert client.head("/v2/models/nope").status_code == 404
    assert client.head(f"{model_path}/versions/999/ready").status_code == 404
    assert client.head(f"{model_path}/infer").status_code == 405


def test_model_metadata_and_ready_with_and_without_version(
    client, model_path, tiny_registry, served_model
) -> None:
    version = tiny_registry.version
    for path in (model_path, f"{model_path}/versions/{version}"):
        meta = client.get(path).json()
        assert meta["versions"] == [version]
        assert [i["name"] for i in meta["inputs"]] == list(served_model.contract.names)
        ready = client.get(f"{path}/ready")
        assert ready.status_code == 200 and ready.json()["ready"] is True


def test_unknown_model_and_other_version_are_404_naming_what_is_served(
    client, model_path, tiny_registry
) -> None:
    name, version = tiny_registry.model_name, tiny_registry.version
    assert_v2_error(client.get("/v2/models/nope"), 404, "unknown model 'nope'", f"serves '{name}'")
    for path in ("", "/ready", "/infer"):
        method = client.post if path == "/infer" else client.get
        kwargs = {"json": infer_body(TITLES)} if path == "/infer" else {}
        response = method(f"{model_path}/versions/999{path}", **kwargs)
        assert_v2_error(
            response, 404, "version '999' is not served", f"served version is '{version}'"
        )


def test_infer_equals_v1_predict(client, model_path, tiny_registry) -> None:
    v1 = client.post("/v1/predict", json={"products": [{"title": t} for t in TITLES], "top_k": 2})
    response = client.post(
        f"{model_path}/versions/{tiny_registry.version}/infer",
        json=infer_body(TITLES, id="my-id", parameters={"top_k": 2}),
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["id"] == "my-id" and answer["model_version"] == tiny_registry.version
    outputs = {o["name"]: o for o in answer["outputs"]}
    predictions = v1.json()["predictions"]
    assert outputs["label"]["data"] == [p["label"] for p in predictions]
    assert outputs["probability"]["data"] == [p["probability"] for p in predictions]
    assert outputs["top_labels"]["shape"] == [2, 2]
    assert outputs["top_labels"]["data"] == [e["label"] for p in predictions for e in p["top_k"]]


def test_binary_request_and_binary_answer(client, model_path) -> None:
    raw = encode_bytes(TITLES)
    header = {
        "inputs": [
            {
                "name": "title",
                "datatype": "BYTES",
                "shape": [2],
                "parameters": {"binary_data_size": len(raw)},
            }
        ],
        "outputs": [{"name": "label", "parameters": {"binary_data": True}}],
    }
    head = json.dumps(header).encode()
    response = client.post(
        f"{model_path}/infer",
        content=head + raw,
        headers={
            "Inference-Header-Content-Length": str(len(head)),
            "Content-Type": "application/octet-stream",
        },
    )
    assert response.status_code == 200, response.text
    length = int(response.headers["inference-header-content-length"])
    answer = json.loads(response.content[:length])
    assert answer["outputs"][0]["parameters"]["binary_data_size"] == len(response.content) - length
    v1 = client.post("/v1/predict", json={"products": [{"title": t} for t in TITLES]}).json()
    assert response.content[length:] == encode_bytes([p["label"] for p in v1["predictions"]])


def test_bad_tensors_and_contract_violations_are_400(client, model_path) -> None:
    body = infer_body(TITLES)
    body["inputs"][0]["shape"] = [3]
    assert_v2_error(client.post(f"{model_path}/infer", json=body), 400, "2 values in data")
    too_long = infer_body(["x" * 301])
    assert_v2_error(
        client.post(f"{model_path}/infer", json=too_long),
        400,
        "input 'title', row 0",
        "301 characters",
    )
    too_many = infer_body(["a"] * (MAX_PRODUCTS + 1))
    assert_v2_error(
        client.post(f"{model_path}/infer", json=too_many), 400, f"at most {MAX_PRODUCTS}"
    )
    header = client.post(
        f"{model_path}/infer", content=b"{}", headers={"Inference-Header-Content-Length": "x"}
    )
    assert_v2_error(header, 400, "Inference-Header-Content-Length")
    wide = {"inputs": [{"name": "title", "datatype": "INT8", "shape": [1], "data": [1000]}]}
    assert_v2_error(
        client.post(f"{model_path}/infer", json=wide), 400, "input 'title' (INT8): element 0"
    )
    untyped = {"inputs": [{"name": "title", "shape": [1], "data": ["x"]}]}
    assert_v2_error(
        client.post(f"{model_path}/infer", json=untyped),
        400,
        "input 'title': field `datatype` is required",
    )


def test_an_empty_string_is_named_as_empty_not_as_a_product_without_fields(
    client, model_path
) -> None:
    message = assert_v2_error(
        client.post(f"{model_path}/infer", json=infer_body([""])),
        400,
        "row 0 has no text: input 'title' is an empty string",
    )
    assert "no fields" not in message


def test_errors_raised_outside_the_routes_are_in_the_protocols_form(client, model_path) -> None:
    big = infer_body(["a" * (MAX_BODY + 10)])
    assert_v2_error(client.post(f"{model_path}/infer", json=big), 413, "too large")
    assert_v2_error(client.get(f"{model_path}/infer"), 405)
    assert_v2_error(client.get("/v2/nothing/here"), 404)
    v1 = client.get("/nothing/here").json()  # other paths keep their own form
    assert isinstance(v1["error"], dict)


def test_metrics_use_route_templates(client, model_path, metrics) -> None:
    client.post(f"{model_path}/infer", json=infer_body(TITLES))
    labels = {"route": "/v2/models/{model_name}/infer", "method": "POST", "status": "200"}
    assert metrics.registry.get_sample_value("http_requests_total", labels)


def test_not_ready_is_503_in_the_protocols_form(make_client) -> None:
    client = make_client(ready=False, model_name="never-registered")
    assert client.get("/v2/health/live").json() == {"live": True}
    assert_v2_error(client.get("/v2/health/ready"), 503, "not ready")
    assert client.head("/v2/health/ready").status_code == 503
    assert_v2_error(client.get("/v2/models/never-registered/ready"), 503, "is not ready")
    infer = client.post("/v2/models/never-registered/infer", json=infer_body(TITLES))
    assert_v2_error(infer, 503, "is not ready")
