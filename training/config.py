"""Every training parameter, in one typed model shared by the CLI and config files.

A config file (YAML, JSON or TOML) is a flat mapping whose keys are the field names below; command
line options (`--n-estimators 300`) override it. Defaults were chosen by measurement on the shared
63k-product catalog (see README, "Model quality").
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from training.errors import ConfigError

SMOTE_STRATEGIES = ("auto", "not majority", "minority", "not minority", "all")


class TrainConfig(BaseModel):
    """Options of one training run."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # --- data
    data: str | None = Field(
        None,
        description="catalog file (.jsonl[.gz], .json[.gz], .csv[.gz], .parquet); "
        "default: the bundled sample catalog",
    )
    format: Literal["auto", "amazon", "jsonl", "csv", "parquet"] = Field(
        "auto", description="file format; auto picks by file extension"
    )
    label_column: str = Field("main_cat", description="column holding the category label")
    id_column: str | None = Field("asin", description="column holding the product id ('' for none)")
    text_columns: list[str] = Field(
        ["title", "description", "feature"], description="free-text columns, comma separated"
    )
    token_columns: list[str] = Field(
        ["brand", "category", "also_buy", "also_view", "details"],
        description="categorical or list columns whose values become tokens, comma separated",
    )
    numeric_columns: list[str] = Field([], description="numeric columns, comma separated")
    max_bad_numeric_share: float = Field(
        0.05,
        ge=0,
        le=1,
        description="stop when a larger share of a numeric column's values are not numbers "
        "(fewer are counted in a warning and read as missing)",
    )
    label_map: str | None = Field(
        None,
        description="YAML file of `variant: canonical` label pairs (or a two-column CSV), "
        "applied before classes are counted",
    )
    amazon_counts: bool = Field(
        True,
        description="derive counts of related products, images and categories, text "
        "lengths and the parsed price (Amazon 2018 fields)",
    )
    csv_separator: str = Field(",", description="field separator of CSV files")
    max_rows: int | None = Field(None, ge=1, description="read at most this many rows")
    min_class_size: int = Field(
        10, ge=2, description="classes with fewer rows are handled by --small-classes"
    )
    small_classes: Literal["drop", "other"] = Field(
        "drop", description="drop rows of small classes, or fold them into --other-label"
    )
    other_label: str = Field("other", description="label for folded small classes")

    # --- split and evaluation
    test_size: float = Field(
        0.2,
        gt=0,
        lt=1,
        description="holdout fraction; each product's side is fixed by a hash of its id (or "
        "normalised text), the same in every run",
    )
    seed: int = Field(42, description="random seed for SMOTE and the forest (not the split)")
    cv_folds: int = Field(
        0, ge=0, description="also run k-fold cross-validation on the training split (0: off)"
    )

    # --- features
    text_max_features: int = Field(200_000, ge=1, description="vocabulary size per text column")
    text_ngram_max: int = Field(2, ge=1, le=3, description="longest word n-gram")
    id_ngram_min: int = Field(2, ge=1, description="shortest character n-gram of the id")
    id_ngram_max: int = Field(5, ge=1, description="longest character n-gram of the id")
    char_ngram_columns: list[str] = Field(
        [],
        description="text columns that also give character n-grams (--id-ngram-min to "
        "--id-ngram-max, first 300 characters), comma separated",
    )
    min_df: int = Field(2, ge=1, description="ignore terms in fewer documents")
    stemmer: Literal["english", "spanish", "none"] = Field(
        "english", description="NLTK Snowball stemmer (stop words: English and Spanish)"
    )
    select_k_best: int = Field(
        20_000, ge=0, description="keep the k best features by chi2 (0: keep all)"
    )

    # --- resampling
    smote: bool = Field(
        True, description="oversample small classes with SMOTE (training split only)"
    )
    smote_strategy: str = Field(
        "share:0.05",
        description="'share:R' raises every class to at least R times the largest class; "
        "'min:N' to at least N rows; or an imbalanced-learn strategy: auto, not majority, "
        "minority, not minority, all",
    )
    smote_k_neighbors: int = Field(5, ge=1, description="neighbours SMOTE interpolates between")
    compare_without_smote: bool = Field(
        False, description="also train without SMOTE in a nested run and log both"
    )

    # --- forest
    estimator: Literal["random_forest", "extra_trees"] = Field(
        "random_forest", description="tree ensemble"
    )
    n_estimators: int = Field(300, ge=1, description="number of trees")
    max_features: str = Field(
        "sqrt", description="features per split: sqrt, log2, or a fraction like 0.05"
    )
    max_depth: int | None = Field(None, ge=1, description="maximum tree depth (none: unlimited)")
    min_samples_leaf: int = Field(1, ge=1, description="minimum rows per leaf")
    class_weight: Literal["balanced", "balanced_subsample", "none"] = Field(
        "balanced_subsample", description="class weighting of the forest"
    )
    n_jobs: int = Field(-1, description="parallel jobs for fitting (-1: all cores)")
    compact: bool = Field(True, description="store the forest in the compact lossless form")

    # --- MLflow
    tracking_uri: str | None = Field(
        None,
        description="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else "
        "sqlite:///mlflow.db in the working directory)",
    )
    experiment_name: str = Field("product-categorization", description="MLflow experiment")
    model_name: str = Field("product-classifier", description="registered model name")
    run_name: str | None = Field(None, description="MLflow run name")
    gate_min_rows: int = Field(
        100,
        ge=1,
        description="fewest rows held out under both the new model's and the champion's split "
        "for the gate to decide; below it the champion is kept unless --force-promote",
    )
    force_promote: bool = Field(
        False, description="make the new version champion even if it scores lower"
    )
    tracking_timeout_seconds: float = Field(
        60.0, gt=0, description="how long to retry an unreachable tracking server"
    )

    @field_validator("smote_strategy")
    @classmethod
    def _check_strategy(cls, value: str) -> str:
        if value.startswith("min:"):
            if not value[4:].isdigit() or int(value[4:]) < 2:
                raise ValueError("'min:N' needs a whole number N >= 2, e.g. min:300")
        elif value.startswith("share:"):
            try:
                share = float(value[6:])
            except ValueError:
                share = -1.0
            if not 0 < share <= 1:
                raise ValueError("'share:R' needs a fraction 0 < R <= 1, e.g. share:0.05")
        elif value not in SMOTE_STRATEGIES:
            raise ValueError(f"must be share:R, min:N or one of {', '.join(SMOTE_STRATEGIES)}")
        return value

    @field_validator("max_features")
    @classmethod
    def _check_max_features(cls, value: str) -> str:
        if value in ("sqrt", "log2"):
            return value
        try:
            number = float(value)
        except ValueError:
            raise ValueError("must be sqrt, log2 or a number") from None
        if number <= 0:
            raise ValueError("must be positive")
        return value

    @field_validator("id_column")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None

    def forest_max_features(self) -> str | float | int:
        if self.max_features in ("sqrt", "log2"):
            return self.max_features
        number = float(self.max_features)
        return int(number) if number >= 1 else number


def read_config_file(path: Path) -> dict[str, Any]:
    """The mapping in a YAML, JSON or TOML config file."""
    try:
        text = path.read_text("utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror}") from None
    try:
        if path.suffix == ".json":
            content = json.loads(text)
        elif path.suffix == ".toml":
            content = tomllib.loads(text)
        else:
            content = yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as error:
        raise ConfigError(
            f"config file {path} is not valid {path.suffix[1:] or 'YAML'}: {error}"
        ) from None
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise ConfigError(f"config file {path} must hold a mapping of option: value")
    unknown = sorted(set(content) - set(TrainConfig.model_fields))
    if unknown:
        raise ConfigError(
            f"unknown option(s) {', '.join(unknown)} in config file {path}; "
            "run `product-train --help` for the list"
        )
    return content


def make_config(values: dict[str, Any], source: str = "options") -> TrainConfig:
    """Validate `values` into a TrainConfig, turning errors into one readable ConfigError."""
    try:
        return TrainConfig(**values)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in item['loc']) or 'value'}: {item['msg']}"
            for item in error.errors()
        )
        raise ConfigError(f"invalid {source}: {problems}") from None
