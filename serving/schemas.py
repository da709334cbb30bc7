"""Request and response bodies of the HTTP API (their JSON Schema is the OpenAPI document).

A product's fields are the served model's own (its input contract, listed by GET /v1/model), so
they are checked by `serving.validation` against the loaded model, not fixed here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field, StrictInt

from serving.validation import InputField

DEFAULT_TOP_K = 3

# Example values of a product's fields, by type (text fields take the texts in turn): what the
# OpenAPI document shows for the served model's own fields, and every one passes validation.
EXAMPLE_TEXTS = ("Stainless steel water bottle, 750 ml", "Double-walled; keeps drinks cold.")
EXAMPLE_VALUES: dict[str, Any] = {
    "string": "WB-750",
    "text": EXAMPLE_TEXTS[0],
    "tokens": ["Kitchen", "Drinkware"],
    "json": {"color": "blue", "capacity_ml": 750},
    "number": 19.99,
    "price": 19.99,
}
# Before a model is loaded its fields are unknown: the example says where they go.
NEUTRAL_PRODUCT = {"<a text field of the model>": EXAMPLE_TEXTS[0]}


def product_example(fields: Sequence[InputField]) -> dict[str, Any]:
    """A product keyed by the model's own fields, each with an example value of its type."""
    texts = iter(EXAMPLE_TEXTS * len(fields))
    return {
        field.name: next(texts)
        if field.role == "text" and field.type in ("string", "text")
        else EXAMPLE_VALUES.get(field.type, EXAMPLE_TEXTS[0])
        for field in fields
    }


class PredictRequest(BaseModel):
    products: list[dict[str, Any]] = Field(
        ...,
        min_length=1,
        description="Products to classify, answered in the same order. Each is an object keyed "
        "by the model's input fields (GET /v1/model: `input_fields`); fields the model does not "
        "read are ignored, and each product needs a non-empty value in one of its text fields.",
        examples=[[NEUTRAL_PRODUCT]],
    )
    top_k: StrictInt = Field(
        DEFAULT_TOP_K, ge=1, le=1000, description="How many ranked labels to return per product."
    )


class LabelScore(BaseModel):
    label: str
    probability: float


class Prediction(BaseModel):
    label: str = Field(
        ...,
        description="Most probable category (multilabel: most probable tag; path: the whole "
        "predicted path, levels joined by ' > ').",
    )
    probability: float = Field(..., description="Its probability (path: its deepest level's).")
    top_k: list[LabelScore] = Field(..., description="The top-k labels, most probable first.")
    tags: list[LabelScore] | None = Field(
        None,
        description="Multilabel models only: every tag whose probability reaches its threshold "
        "(at least the most probable), most probable first.",
    )
    path: list[LabelScore] | None = Field(
        None,
        description="Path models only: the predicted category path, most general level first, "
        "each level with its probability; a level is only answered under its parent.",
    )


class PredictResponse(BaseModel):
    request_id: str
    model_name: str
    model_version: str
    predictions: list[Prediction]


class PendingFailure(BaseModel):
    version: str | None = Field(..., description="The version that failed (if one was named).")
    reason: str = Field(
        ...,
        description="registry_miss, artifact_missing, load_error, unreachable or registry_refused.",
    )
    message: str
    at: float = Field(..., description="Unix time of the last failed attempt.")


class InputFieldInfo(BaseModel):
    name: str = Field(..., description="The field's name, as in the training catalog.")
    role: str = Field(..., description="text, tokens, numeric or id.")
    type: str = Field(..., description="string, text, tokens, number or price.")


class ModelResponse(BaseModel):
    server_version: str = Field(..., description="The platform version of this server.")
    name: str
    version: str
    alias: str | None
    run_id: str | None
    source: str = Field(..., description="The MLflow URI the model was loaded from.")
    loaded_at: float = Field(..., description="Unix time of the load.")
    metrics: dict[str, float | int | str | None]
    task: str = Field(..., description="What the model answers: single_label.")
    input_fields: list[InputFieldInfo] = Field(
        ..., description="The fields a product is keyed by, with their roles and types."
    )
    classes: list[str]
    pending_failure: PendingFailure | None = Field(
        None, description="The wanted version failed to load; this one keeps serving meanwhile."
    )


class HealthResponse(BaseModel):
    status: str


class ReadyResponse(BaseModel):
    status: str = Field(..., description='"ready" or "not ready".')
    reason: str | None = Field(None, description="Why not ready (loading, MLflow unreachable…).")
    model_name: str | None = None
    model_version: str | None = None


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = Field(None, description="The offending field, such as products[2].title.")


class ErrorResponse(BaseModel):
    error: ErrorDetail
    request_id: str
