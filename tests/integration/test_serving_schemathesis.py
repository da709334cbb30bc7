"""Schemathesis against the app's own OpenAPI schema, in process: no 5xx, no response that breaks
the schema, whatever the generated input."""

from __future__ import annotations

import time

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.generation.modes import GenerationMode

from serving.api import create_app
from serving.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("mlflow_uri_restored")]

# Every check that applies to this API. positive_data_acceptance is left out on purpose: the
# configurable limits (a title or a description, characters per field) are narrower than the
# static schema can say, so schema-valid bodies may rightly get a 422.
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_headers_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.negative_data_rejection,
]


@pytest.fixture(scope="module")
def app(registry):
    settings_ = Settings(
        mlflow_tracking_uri=registry.tracking_uri,
        model_name=registry.model_name,
        reload_interval_seconds=0,
        max_products_per_request=20,
        max_text_chars=2000,
    )
    return create_app(settings_)


@pytest.fixture(scope="module")
def api_schema(app):
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    # The first call starts the app's lifespan (schemathesis keeps it running); the model then
    # loads in the background: wait for it, so that predictions are really exercised, and read
    # the schema again: it then describes a product by the model's own fields.
    schema["/healthz"]["GET"].Case().call()
    service = app.state.service
    deadline = time.monotonic() + 120
    while not service.readiness().ready:
        assert time.monotonic() < deadline, service.readiness()
        time.sleep(0.1)
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def operations(schema) -> list:
    return [result.ok() for result in schema.get_all_operations()]


# schemathesis.pytest.from_fixture needs pytest < 9 (it reads a removed private attribute), so
# each operation's Hypothesis strategy is driven directly; the checks are the same.
@pytest.mark.parametrize(
    ("path", "method", "mode", "examples"),
    [
        ("/v1/predict", "POST", GenerationMode.POSITIVE, 100),
        ("/v1/predict", "POST", GenerationMode.NEGATIVE, 60),
        ("/invocations", "POST", GenerationMode.NEGATIVE, 40),
        ("/v1/model", "GET", GenerationMode.POSITIVE, 10),
        ("/healthz", "GET", GenerationMode.POSITIVE, 10),
        ("/healthz", "HEAD", GenerationMode.POSITIVE, 5),
        ("/readyz", "GET", GenerationMode.POSITIVE, 10),
        ("/readyz", "HEAD", GenerationMode.POSITIVE, 5),
        ("/metrics", "GET", GenerationMode.POSITIVE, 10),
    ],
)
def test_no_server_error_and_no_schema_violation(app, api_schema, path, method, mode, examples):
    operation = api_schema[path][method]
    metrics = app.state.metrics.registry

    def answered(status: str) -> float:
        labels = {"route": path, "method": method, "status": status}
        return metrics.get_sample_value("http_requests_total", labels) or 0

    before = {status: answered(status) for status in ("200", "422")}

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def check(case) -> None:
        case.call_and_validate(checks=CHECKS)

    check()
    assert not answered("500")
    if path == "/v1/predict":  # the model really answered, and bad input was really refused
        ok, refused = (answered(s) - before[s] for s in ("200", "422"))
        assert refused > 0
        assert ok > 0 or mode is GenerationMode.NEGATIVE, (ok, refused)


def test_every_operation_is_covered(api_schema) -> None:
    documented = {(op.path, op.method.upper()) for op in operations(api_schema)}
    assert documented == {
        ("/v1/predict", "POST"),
        ("/invocations", "POST"),
        ("/v1/model", "GET"),
        ("/healthz", "GET"),
        ("/healthz", "HEAD"),
        ("/readyz", "GET"),
        ("/readyz", "HEAD"),
        ("/metrics", "GET"),
    }
