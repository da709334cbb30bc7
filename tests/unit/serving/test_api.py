"""Every endpoint and every bad-input case, in process, against an app serving the tiny model."""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from serving.api import create_app
from serving.metrics import ServingMetrics
from serving.model import ModelLocator
from serving.service import PredictionService
from serving.settings import Settings
from tests.support import Registry, wait_until_ready

JSON = "application/json"
MAX_PRODUCTS = 5
MAX_TEXT = 300
MAX_BODY = 4096

PERL = {"title": "Perl module for parsing XML documents", "asin": "libxml-parser-perl"}
GAME = {"title": "Chess game for X11", "description": ["Play chess against the computer."]}


@pytest.fixture(scope="module")
def client(tiny_registry: Registry, served_model) -> Iterator[TestClient]:
    """One app for the module, with small limits so that the limit cases stay small."""
    import dataclasses
    import time

    settings = Settings(
        mlflow_tracking_uri=tiny_registry.tracking_uri,
        model_name=tiny_registry.model_name,
        reload_interval_seconds=0,
        max_products_per_request=MAX_PRODUCTS,
        max_text_chars=MAX_TEXT,
        max_body_bytes=MAX_BODY,
    )
    metrics = ServingMetrics()

    def load(ref):
        return dataclasses.replace(served_model, ref=ref, loaded_at=time.time())

    service = PredictionService(settings, metrics, ModelLocator(settings), load)
    with TestClient(create_app(settings, metrics=metrics, service=service)) as test_client:
        wait_until_ready(test_client)
        yield test_client


def predict(client: TestClient, body: object, **kwargs):
    return client.post("/v1/predict", json=body, **kwargs)


def assert_error(response, status: int, field: str | None = None, code: str | None = None):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "request_id"}
    assert body["request_id"] == response.headers["x-request-id"]
    if field is not None:
        assert body["error"]["field"] == field, body
    if code is not None:
        assert body["error"]["code"] == code
    return body["error"]


# --- probes, model, docs -------------------------------------------------------------------


def test_healthz(client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.head("/healthz").status_code == 200


def test_readyz_when_ready(client, tiny_registry) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "reason": None,
        "model_name": tiny_registry.model_name,
        "model_version": tiny_registry.version,
    }


def test_model_card(client, tiny_registry, served_model) -> None:
    card = client.get("/v1/model").json()
    assert card["name"] == tiny_registry.model_name
    assert card["version"] == tiny_registry.version
    assert card["alias"] == "champion"
    assert card["run_id"] and card["source"] == f"models:/{card['name']}/{card['version']}"
    assert 0 < card["metrics"]["f1_macro"] <= 1
    assert card["classes"] == [str(c) for c in served_model.classes]


def test_openapi_and_docs(client) -> None:
    schema = client.get("/openapi.json").json()
    assert {"/v1/predict", "/v1/model", "/healthz", "/readyz", "/metrics"} <= set(schema["paths"])
    assert "413" in schema["paths"]["/v1/predict"]["post"]["responses"]
    assert "swagger" in client.get("/docs").text.lower()


# --- predictions ---------------------------------------------------------------------------


def test_predict_answers_in_order_with_top_k(client, served_model) -> None:
    products = [PERL, GAME, {"title": "Python 3 library for HTTP requests"}]
    response = predict(client, {"products": products, "top_k": 4})
    assert response.status_code == 200
    body = response.json()
    assert body["model_name"] == "tiny-classifier" and body["model_version"] == "1"
    assert len(body["predictions"]) == 3
    alone = [predict(client, {"products": [p], "top_k": 4}).json() for p in products]
    classes = {str(c) for c in served_model.classes}
    for prediction, single in zip(body["predictions"], alone, strict=True):
        assert prediction == single["predictions"][0]  # same answer alone or in a batch
        assert prediction["label"] in classes
        probabilities = [entry["probability"] for entry in prediction["top_k"]]
        assert len(probabilities) == 4 and probabilities == sorted(probabilities, reverse=True)
        assert prediction["top_k"][0] == {
            "label": prediction["label"],
            "probability": prediction["probability"],
        }


def test_top_k_is_capped_by_the_number_of_classes(client, served_model) -> None:
    body = predict(client, {"products": [PERL], "top_k": 1000}).json()
    assert len(body["predictions"][0]["top_k"]) == len(served_model.classes)


def test_default_top_k_is_three(client) -> None:
    assert len(predict(client, {"products": [PERL]}).json()["predictions"][0]["top_k"]) == 3


def test_request_id_is_echoed_or_made(client) -> None:
    given = predict(client, {"products": [PERL]}, headers={"X-Request-ID": "catalog-42"})
    assert given.headers["x-request-id"] == "catalog-42"
    assert given.json()["request_id"] == "catalog-42"
    made = predict(client, {"products": [PERL]})
    assert len(made.headers["x-request-id"]) == 32
    assert made.json()["request_id"] == made.headers["x-request-id"]
    odd = predict(client, {"products": [PERL]}, headers={"X-Request-ID": "bad id\twith spaces"})
    assert odd.headers["x-request-id"] != "bad id\twith spaces"


@pytest.mark.parametrize(
    "product",
    [
        {"title": "Émoji 🚀🔥 tool ✓"},
        {"title": "control\x00chars\x07\x1b[31m and \u202eRTL override"},
        {"title": "国际象棋游戏", "description": "一个国际象棋程序"},
        {"title": "لعبة الشطرنج", "description": "برنامج شطرنج"},
        {"title": "Шахматы", "description": ["Игра", "в шахматы"]},
        {"title": "\ud7ff\ufeff zero\u200bwidth"},
        {"description": "only a description, no title"},
        {
            "title": "all fields",
            "description": ["a", "b"],
            "feature": "one feature",
            "brand": "Acme",
            "category": ["Tools"],
            "also_buy": ["x"],
            "also_view": "y",
            "image": [],
            "price": 12.5,
            "details": {"Weight": "1 kg", "Count": 3, "Fragile": None},
        },
        {"title": "unknown fields", "main_cat": "ignored", "rank": [1, 2], "nested": {"a": [1]}},
        {"title": "price text", "price": "$3.99 - $9.99"},
    ],
)
def test_unusual_but_valid_products_are_classified(client, product) -> None:
    response = predict(client, {"products": [product]})
    assert response.status_code == 200, response.text
    assert response.json()["predictions"][0]["label"]


# --- bad input -----------------------------------------------------------------------------


def test_invalid_json(client) -> None:
    response = client.post(
        "/v1/predict", content=b'{"products": [', headers={"content-type": "application/json"}
    )
    assert "invalid JSON" in assert_error(response, 422, "body", "invalid_input")["message"]


@pytest.mark.parametrize("path", ["/v1/predict", "/invocations"])
def test_json_nested_too_deeply_is_invalid_input(client, path: str) -> None:
    body = b'{"products": ' + b"[" * 2000 + b"]" * 2000 + b"}"
    response = client.post(path, content=body, headers={"content-type": "application/json"})
    error = assert_error(response, 422, "body", "invalid_input")
    assert error["message"].startswith("invalid JSON:") and "nested too deeply" in error["message"]


@pytest.mark.parametrize("direct", [True, False])
def test_a_number_of_thousands_of_digits_is_named_as_such(make_client, direct) -> None:
    """Was "the body cannot be decoded (not UTF-8, or nested too deeply)" (/v1/predict), which
    it is not, or Python's advice to call sys.set_int_max_str_digits() (v2)."""
    client = make_client()
    if not direct:  # Starlette's router answers, as it does with OpenTelemetry set up
        client.app.state.direct_routes.clear()
    number = b"9" * 5000
    bodies = {
        "/v1/predict": b'{"products": [{"title": "x", "price": ' + number + b"}]}",
        "/invocations": b'{"dataframe_records": [{"title": "x", "price": ' + number + b"}]}",
        "/v2/models/tiny-classifier/infer": b'{"inputs": [{"name": "price", "datatype": "FP64", '
        b'"shape": [1], "data": [' + number + b"]}]}",
    }
    for path, body in bodies.items():
        response = client.post(path, content=body, headers={"content-type": "application/json"})
        assert response.status_code in (400, 422), response.text
        error = response.json()["error"]
        message = error if path.startswith("/v2") else error["message"]
        assert "a number in the body has more than 4300 digits (5000 digits, at line 1" in message
        assert "sys." not in message and "UTF-8" not in message


def test_body_that_is_not_utf8(client) -> None:
    response = client.post(
        "/v1/predict", content=b"W\xff<h\xfe", headers={"content-type": "application/json"}
    )
    assert_error(response, 422, "body", "invalid_input")


def test_body_that_is_not_json(client) -> None:
    response = client.post(
        "/v1/predict", content=b"title=x", headers={"content-type": "application/json"}
    )
    assert_error(response, 422, "body")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_a_body_declared_as_something_else_than_json_is_415(client, content_type) -> None:
    response = client.post(
        "/v1/predict", content=b"title=x", headers={"content-type": content_type}
    )
    assert_error(response, 415, "body", "unsupported_media_type")
    assert "application/json" in response.json()["error"]["message"]


@pytest.mark.parametrize("content_type", [None, "", "text/x+json"])
@pytest.mark.parametrize("direct", [True, False])
def test_a_json_body_not_declared_as_json_is_415_saying_how_to_send_it(
    client, content_type, direct
) -> None:
    headers = {} if content_type is None else {"content-type": content_type}
    body = json.dumps({"products": [PERL]}).encode()
    saved = dict(client.app.state.direct_routes)
    if not direct:  # Starlette's router answers, as it does for the direct route's fallbacks
        client.app.state.direct_routes.clear()
    try:
        response = client.post("/v1/predict", content=body, headers=headers)
    finally:
        client.app.state.direct_routes.update(saved)
    message = assert_error(response, 415, "body", "unsupported_media_type")["message"]
    assert "send the body as JSON with Content-Type: application/json" in message, message


@pytest.mark.parametrize("path", ["/v1/predict", "/invocations", "/v2/models/x/infer"])
@pytest.mark.parametrize("encoding", ["gzip", "br", "gzip, identity"])
def test_a_body_in_an_encoding_the_server_does_not_decode_is_415(client, path, encoding) -> None:
    body = gzip.compress(json.dumps({"products": [PERL]}).encode())
    headers = {"content-type": "application/json", "content-encoding": encoding}
    response = client.post(path, content=body, headers=headers)
    assert response.status_code == 415, response.text
    assert response.headers["accept-encoding"] == "identity"
    error = response.json()["error"]
    message = error if path.startswith("/v2") else error["message"]
    assert f"Content-Encoding: {encoding}" in message and "uncompressed" in message, message


def test_an_identity_encoded_body_is_read(client) -> None:
    headers = {"content-encoding": "Identity"}
    response = client.post("/v1/predict", json={"products": [PERL]}, headers=headers)
    assert response.status_code == 200, response.text


def test_csv_rows_with_more_cells_than_the_header_are_refused(client) -> None:
    body = b"title,brand\nPerl module,Acme\nChess game,Acme,extra\n"
    response = client.post("/invocations", content=body, headers={"content-type": "text/csv"})
    message = assert_error(response, 422, "body", "invalid_input")["message"]
    assert message.startswith("CSV line 3 has 3 cells"), message


@pytest.mark.parametrize("top_k", ["3", True, 3.0])
def test_top_k_must_be_an_integer(client, top_k) -> None:
    response = client.post("/v1/predict", json={"products": [PERL], "top_k": top_k})
    assert_error(response, 422, "top_k")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"products": "a product"}, "products"),
        ({"products": [PERL], "top_k": "three"}, "top_k"),
        ({"products": [PERL], "top_k": 0}, "top_k"),
        ({"products": [{"title": 42}]}, "products[0].title"),
        ({"products": [PERL, {"title": ["a", "list"]}]}, "products[1].title"),
        ({"products": [{"title": "x", "description": {"a": "dict"}}]}, "products[0].description"),
        ({"products": [{"title": "x", "details": {"a": ["nested"]}}]}, "products[0].details.a"),
        ({"products": [{"title": "x", "asin": ["not", "an", "id"]}]}, "products[0].asin"),
        ({"products": ["just a string"]}, "products[0]"),
        ({"items": [PERL]}, "products"),
        ([PERL], "body"),
    ],
)
def test_wrong_types_name_the_field(client, body, field) -> None:
    assert_error(predict(client, body), 422, field, "invalid_input")


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"dataframe_records": [PERL, {"title": 42}]}, "dataframe_records[1].title", "must be"),
        ({"instances": [{"title": ""}]}, "instances[0]", "non-empty value"),
        ({"inputs": {"title": ["x", 42]}}, "inputs.title[1]", "must be"),
        ({"dataframe_records": []}, "dataframe_records", "at least one product"),
        (
            {"dataframe_split": {"columns": ["asin", "title"], "data": [["a1", 42]]}},
            "dataframe_split.data[0][1]",
            "column 'title': must be",
        ),
    ],
)
def test_invocations_errors_name_the_field_as_the_body_holds_it(
    client, body, field, message
) -> None:
    error = assert_error(client.post("/invocations", json=body), 422, field, "invalid_input")
    assert message in error["message"], error


def test_invocations_csv_errors_name_the_line_and_column(client) -> None:
    body = b"title,description\nPerl module,\n,\n"
    response = client.post("/invocations", content=body, headers={"content-type": "text/csv"})
    message = assert_error(response, 422, "body", "invalid_input")["message"]
    assert message.startswith("CSV line 3: a product needs a non-empty value"), message
    assert "no fields" not in message


def test_empty_product_list(client) -> None:
    assert_error(predict(client, {"products": []}), 422, "products")


@pytest.mark.parametrize(
    "product",
    [{"brand": "Acme"}, {"title": "   ", "description": ""}, {"description": [" ", ""]}, {}],
)
def test_product_needs_one_of_the_models_text_fields(client, product) -> None:
    error = assert_error(predict(client, {"products": [PERL, product]}), 422, "products[1]")
    assert "'title', 'description'" in error["message"]


def test_product_keyed_by_other_fields_is_rejected_with_the_models_fields(client) -> None:
    body = {"products": [{"Product Title": "Samsung Galaxy S21 128GB"}]}
    error = assert_error(predict(client, body), 422, "products[0]")
    assert "none of the model's input fields" in error["message"]
    assert "'Product Title'" in error["message"] and "'title'" in error["message"]


def test_too_many_products(client) -> None:
    response = predict(client, {"products": [PERL] * (MAX_PRODUCTS + 1)})
    error = assert_error(response, 422, "products")
    assert str(MAX_PRODUCTS) in error["message"]


@pytest.mark.parametrize(
    ("product", "field"),
    [
        ({"title": "x" * (MAX_TEXT + 1)}, "products[0].title"),
        ({"title": "x", "description": ["y" * 200, "z" * 200]}, "products[0].description"),
        ({"title": "x", "details": {"k": "v" * MAX_TEXT}}, "products[0].details"),
    ],
)
def test_over_long_text(client, product, field) -> None:
    error = assert_error(predict(client, {"products": [product]}), 422, field)
    assert str(MAX_TEXT) in error["message"]


def test_text_at_the_limit_is_fine(client) -> None:
    assert predict(client, {"products": [{"title": "é" * MAX_TEXT}]}).status_code == 200


def test_oversized_body_by_content_length(client) -> None:
    body = json.dumps({"products": [{"title": "x" * (MAX_BODY + 10)}]}).encode()
    response = client.post(
        "/v1/predict", content=body, headers={"content-type": "application/json"}
    )
    assert "Content-Length" in assert_error(response, 413, code="payload_too_large")["message"]


def test_oversized_body_streamed_without_content_length(client) -> None:
    def chunks():
        yield b'{"products": [{"title": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}]}'

    response = client.post(
        "/v1/predict", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in {k.lower() for k in response.request.headers}
    assert_error(response, 413, code="payload_too_large")


def test_deeply_nested_json_is_refused_not_crashed(client) -> None:
    body = b'{"products": ' + b"[" * 3000 + b"]" * 3000 + b"}"
    response = client.post(
        "/v1/predict", content=body, headers={"content-type": "application/json"}
    )
    assert 400 <= response.status_code < 500


def test_unknown_path_and_wrong_method(client) -> None:
    assert_error(client.get("/v3/nothing"), 404, code="not_found")  # /v2/ speaks the v2 protocol
    response = client.get("/v1/predict")
    assert_error(response, 405, code="method_not_allowed")
    assert response.headers["allow"] == "POST"


def test_rejected_products_are_not_logged_with_their_text(client, caplog) -> None:
    with caplog.at_level(logging.INFO):
        predict(client, {"products": [{"brand": "SECRET-BRAND"}]})
    assert "prediction rejected" in caplog.text
    assert "SECRET-BRAND" not in caplog.text


def test_openapi_describes_a_product_by_the_served_models_fields(client) -> None:
    schema = client.get("/openapi.json").json()
    products = schema["components"]["schemas"]["PredictRequest"]["properties"]["products"]
    fields = products["items"]["properties"]
    assert {"title", "description", "asin"} <= set(fields)
    assert {"required": ["title"]}.items() <= products["items"]["anyOf"][0].items()


def test_model_card_names_the_server_version(client) -> None:
    from serving.version import app_version

    assert client.get("/v1/model").json()["server_version"] == app_version()


def test_openapi_examples_are_built_from_the_served_models_fields(client) -> None:
    """The /docs example of /v1/predict was always the Amazon sample's `title`/`description`,
    whatever model served: "Try it out" with an own catalog's model answered 422."""
    schema = client.get("/openapi.json").json()
    fields = {f["name"] for f in client.get("/v1/model").json()["input_fields"]}
    [[product]] = schema["components"]["schemas"]["PredictRequest"]["properties"]["products"][
        "examples"
    ]
    assert set(product) == fields
    assert predict(client, {"products": [product]}).status_code == 200
    scoring = schema["paths"]["/invocations"]["post"]["requestBody"]["content"]
    example = scoring["application/json"]["example"]
    assert example["dataframe_records"] == [product]
    assert client.post("/invocations", json=example).status_code == 200


def test_the_openapi_example_of_an_own_catalogs_model_passes_its_validation(
    make_settings, metrics, served_model
) -> None:
    import dataclasses

    from serving.validation import InputField, Limits, RequestContract, check_products

    own = RequestContract(
        (
            InputField("SKU", "id", "string"),
            InputField("Product Name", "text", "string"),
            InputField("Details", "text", "text"),
            InputField("Vendor", "tokens", "tokens"),
            InputField("Specs", "tokens", "json"),
            InputField("Weight", "numeric", "number"),
            InputField("Price", "numeric", "price"),
        )
    )
    settings = make_settings()
    service = PredictionService(
        settings,
        metrics,
        ModelLocator(settings),
        lambda ref: dataclasses.replace(served_model, ref=ref, contract=own),
    )
    with TestClient(create_app(settings, metrics=metrics, service=service)) as own_client:
        wait_until_ready(own_client)
        schema = own_client.get("/openapi.json").json()
    [[product]] = schema["components"]["schemas"]["PredictRequest"]["properties"]["products"][
        "examples"
    ]
    assert list(product) == list(own.names)
    assert product["Product Name"] != product["Details"]
    check_products([product], own, Limits(1, 100))  # raises if the model would refuse it


def test_the_openapi_example_before_a_model_is_loaded_names_no_sample_fields(
    make_client,
) -> None:
    schema = make_client(ready=False, model_alias="no-such-alias").get("/openapi.json").json()
    [[product]] = schema["components"]["schemas"]["PredictRequest"]["properties"]["products"][
        "examples"
    ]
    assert "title" not in product and "description" not in product


@pytest.mark.parametrize(
    ("body", "field", "start"),
    [
        (b"", "body", "the body is empty: "),
        (b"{}", "products", 'the body has no "products": '),
        (b'{"items": []}', "products", "the body has no \"products\" (it has 'items'): "),
        (b"42", "body", "the body is 42, not a JSON object: "),
        (b'[{"title": "x"}]', "body", "the body is a list, not a JSON object: "),
        (b"null", "body", "the body is null, not a JSON object: "),
        (b'{"products": {"title": "x"}}', "products", '"products" is an object, not a list: '),
        (b'{"products": []}', "products", '"products" is empty: '),
        (b'{"products": ["x"]}', "products[0]", "products[0] is a string, not a JSON object: "),
    ],
)
def test_a_body_that_is_no_prediction_request_is_told_what_to_send(
    client, body, field, start
) -> None:
    """These got pydantic's bare "Field required" or "Input should be a valid dictionary..."."""
    response = client.post("/v1/predict", content=body, headers={"content-type": JSON})
    message = assert_error(response, 422, field, "invalid_input")["message"]
    assert message == start + (
        'send a JSON object such as {"products": [{"title": "Stainless steel water bottle, '
        "750 ml\"}]}, each product an object keyed by the model's input fields: 'title', "
        "'description', 'brand', 'category', 'also_buy', 'also_view', 'details', 'asin'"
    )


def test_before_a_model_is_loaded_the_hint_says_where_the_fields_are_listed(make_client) -> None:
    client = make_client(ready=False, model_alias="no-such-alias")
    response = client.post("/v1/predict", content=b"{}", headers={"content-type": JSON})
    message = assert_error(response, 422, "products", "invalid_input")["message"]
    assert message == (
        'the body has no "products": send a JSON object {"products": [{...}]}, each product an '
        "object keyed by the model's input fields (GET /v1/model lists them once a model is "
        "loaded)"
    )
