"""Request and response bodies of the HTTP API (their JSON Schema is the OpenAPI document).

Types only: the configurable limits (products per request, characters per field, title or
description present) are checked by `serving.validation`, so they follow the settings.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictInt

TextOrList = str | list[str]
Scalar = str | int | float | bool | None

DEFAULT_TOP_K = 3


class Product(BaseModel):
    """A catalog record in the Amazon 2018 metadata shape; every field is optional, unknown
    fields are ignored. A product needs a title or a description."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "anyOf": [{"required": ["title"]}, {"required": ["description"]}],
            "examples": [
                {
                    "asin": "libxml-parser-perl",
                    "title": "Perl module for parsing XML files",
                    "description": ["XML::Parser provides ways to parse XML documents."],
                    "brand": "Debian Perl Group",
                    "category": ["devel::lang:perl", "implemented-in::perl"],
                }
            ],
        },
    )

    asin: str | None = Field(None, description="Product id.")
    title: str | None = Field(
        None, description="Product name (a title or a description is needed)."
    )
    description: TextOrList | None = None
    feature: TextOrList | None = Field(None, description="Bullet points.")
    brand: str | None = None
    category: TextOrList | None = Field(None, description="Category path or tags.")
    also_buy: TextOrList | None = Field(None, description="Ids of products bought together.")
    also_view: TextOrList | None = Field(None, description="Ids of products viewed together.")
    image: TextOrList | None = Field(None, description="Image URLs.")
    price: str | float | None = Field(None, description='Price text such as "$12.99".')
    details: dict[str, Scalar] | None = Field(None, description="Free-form key/value details.")


class PredictRequest(BaseModel):
    products: list[Product] = Field(
        ..., min_length=1, description="Products to classify, answered in the same order."
    )
    top_k: StrictInt = Field(
        DEFAULT_TOP_K, ge=1, le=1000, description="How many ranked labels to return per product."
    )


class LabelScore(BaseModel):
    label: str
    probability: float


class Prediction(BaseModel):
    label: str = Field(..., description="Most probable category.")
    probability: float = Field(..., description="Its probability.")
    top_k: list[LabelScore] = Field(..., description="The top-k labels, most probable first.")


class PredictResponse(BaseModel):
    request_id: str
    model_name: str
    model_version: str
    predictions: list[Prediction]


class PendingFailure(BaseModel):
    version: str | None = Field(..., description="The version that failed (if one was named).")
    reason: str = Field(
        ..., description="registry_miss, artifact_missing, load_error or unreachable."
    )
    message: str
    at: float = Field(..., description="Unix time of the last failed attempt.")


class ModelResponse(BaseModel):
    name: str
    version: str
    alias: str | None
    run_id: str | None
    source: str = Field(..., description="The MLflow URI the model was loaded from.")
    loaded_at: float = Field(..., description="Unix time of the load.")
    metrics: dict[str, float | int | str | None]
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
