"""Every training parameter, in one typed settings class shared by the CLI and config files.

Command line options (`--n-estimators 300`) override a config file's (`training/cli.py`); reading
config files and validating into one ConfigError is in `training/config_files.py`, the parsing of
values that are more than a word (`--smote-strategy share:0.05`) in `training/config_values.py`.
Defaults were chosen by measurement on the shared 63k-product catalog (see README, "Model
quality").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from product_model.features import FeatureSpec
from training.config_values import (
    ColumnName,
    CsvSeparator,
    MaxFeatures,
    Names,
    ShareOfLargest,
    SmoteStrategy,
)

AMAZON = FeatureSpec()  # the Amazon 2018 field mapping, the defaults of the column options
TEXT_ONLY_CHAR_FEATURES = 50_000
"""Character n-grams read by a text-only model's linear scores (2 points of macro-F1 on the shared
catalog reduced to title and description); with token columns or an id they added nothing."""
SMOTE_OPTIONS = ("smote_strategy", "smote_k_neighbors")
TAG_OPTIONS = ("min_tag_count", "tag_weighting", "trees_per_chunk")  # multilabel and path only
# single_label only: a tag model weighs rare tags instead of SMOTE, and keeps every tag it keeps
SINGLE_LABEL_OPTIONS = (
    "smote", "smote_strategy", "smote_k_neighbors", "min_class_size", "small_classes", "other_label"
)  # fmt: skip


class TrainConfig(BaseSettings):
    """Options of one training run."""

    model_config = SettingsConfigDict(
        extra="forbid",
        validate_assignment=True,
        cli_prog_name="product-train",
        cli_kebab_case=True,
        cli_implicit_flags=True,  # --smote / --no-smote
        cli_parse_none_str="none",
        cli_hide_none_type=True,
        cli_avoid_json=True,
    )

    # --- data
    data: str | None = Field(
        None,
        description="catalog file (.jsonl[.gz], .json[.gz]: JSON lines or one array of "
        "objects, .csv[.gz], .tsv[.gz], .parquet); none: the bundled sample catalog",
    )
    format: Literal["auto", "amazon", "jsonl", "csv", "parquet"] = Field(
        "auto", description="file format; auto picks by file extension"
    )
    label_column: ColumnName = Field("main_cat", description="column holding the category label")
    id_column: ColumnName | None = Field(
        AMAZON.id_column, description="column holding the product id (none or '': no id column)"
    )
    text_columns: Names = Field(
        list(AMAZON.text_columns), description="free-text columns, comma separated"
    )
    token_columns: Names = Field(
        list(AMAZON.token_columns),
        description="categorical or list columns whose values become tokens, comma separated",
    )
    numeric_columns: Names = Field([], description="numeric columns, comma separated")
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
        "applied before classes are counted (to each tag or path level for multilabel and "
        "path); chains a: b, b: c are followed to their end, cycles are refused",
    )
    amazon_counts: bool = Field(
        True,
        description="derive counts of related products, images and categories, text "
        "lengths and the parsed price (Amazon 2018 fields)",
    )
    csv_separator: CsvSeparator | None = Field(
        None,
        description="field separator of CSV files: one character, or an escape such as \\t "
        "for tab; none: tab for .tsv files, else comma",
    )
    max_rows: int | None = Field(None, ge=1, description="read at most this many rows (none: all)")
    min_class_size: int = Field(
        10, ge=2, description="classes with fewer rows are handled by --small-classes"
    )
    small_classes: Literal["drop", "other"] = Field(
        "drop", description="drop rows of small classes, or fold them into --other-label"
    )
    other_label: ColumnName = Field(
        "other",
        min_length=1,
        description="label for folded small classes (trimmed like labels; not blank); must not "
        "name a class of the catalog",
    )

    # --- task: one label, several tags, or a category path (see training/tag_catalog.py)
    task: Literal["single_label", "multilabel", "path"] = Field(
        "single_label",
        description="single_label: one category per product; multilabel: every tag that "
        "applies (the label column holds a list, or a string split by --label-separator); path: "
        "a category path, most general level first, answered as one consistent path",
    )
    label_separator: str | None = Field(
        None,
        description="multilabel/path: split a text label into tags or levels at this separator "
        "(for CSV, e.g. '|' or ' > '); lists in JSON lines or Parquet need none",
    )
    min_tag_count: int = Field(
        20,
        ge=2,
        description="multilabel/path: tags (or path nodes) on fewer products are dropped, with a "
        "warning that counts them",
    )
    tag_weighting: Literal["none", "rare_tags"] = Field(
        "rare_tags",
        description="multilabel/path, what plays SMOTE's role: rare_tags weighs each training "
        "product by the rarity of its rarest tag; none: plain rows (per-tag thresholds remain)",
    )
    trees_per_chunk: int = Field(
        10,
        ge=1,
        description="multilabel/path: trees fitted at a time; each chunk is compacted before the "
        "next (a multi-output scikit-learn tree holds a value per node and tag)",
    )
    gate_metric: Literal["f1_macro", "f1_micro", "f1_samples"] | None = Field(
        None,
        description="metric the champion gate compares; none: the task's own (single_label "
        "f1_macro, multilabel f1_micro, path f1_samples); single_label supports f1_macro only",
    )

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

    linear_scores: bool = Field(
        True,
        description="add a linear SVM's per-class scores (out of fold on training rows) to the "
        "features the forest splits on",
    )
    linear_char_features: int | None = Field(
        None,
        ge=0,
        description="the linear scores also read this many character 2-5-grams of the text "
        "columns (first 300 characters of each; the forest does not see them). Default: "
        f"{TEXT_ONLY_CHAR_FEATURES:,} for a text-only model (no token columns, no id column), "
        "else 0 (words only)",
    )

    # --- resampling
    smote: bool = Field(
        True, description="oversample small classes with SMOTE (training split only)"
    )
    smote_strategy: SmoteStrategy = Field(
        ShareOfLargest(0.05),
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
    max_features: MaxFeatures = Field(
        "sqrt",
        description="features per split: sqrt, log2, a fraction like 0.05, or a whole number",
    )
    max_depth: int | None = Field(None, ge=1, description="maximum tree depth (none: unlimited)")
    min_samples_leaf: int = Field(1, ge=1, description="minimum rows per leaf")
    class_weight: Literal["balanced", "balanced_subsample", "none"] = Field(
        "balanced_subsample", description="class weighting of the forest"
    )
    n_jobs: int = Field(-1, description="parallel jobs for fitting (-1: all cores)")
    compact: bool = Field(
        True,
        description="store the forest in the compact lossless form (fitted 50 trees at a time, "
        "each chunk compacted before the next: a fraction of the stock forest's peak memory)",
    )

    # --- MLflow
    tracking_uri: str | None = Field(
        None,
        description="MLflow tracking URI (none: $MLFLOW_TRACKING_URI, else "
        "sqlite:///mlflow.db in the working directory)",
    )
    experiment_name: str = Field("product-categorization", description="MLflow experiment")
    model_name: str = Field("product-classifier", description="registered model name")
    run_name: str | None = Field(None, description="MLflow run name (none: MLflow picks one)")
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
        60.0, gt=0, description="how long each MLflow call of the run retries a failing server"
    )

    @field_validator("cv_folds")
    @classmethod
    def _folds_off_or_two(cls, value: int) -> int:
        if value == 1:
            raise ValueError("cross-validation needs 2 folds or more (0: off)")
        return value

    @field_validator("n_jobs")
    @classmethod
    def _jobs_not_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("must be a number of jobs (1 or more) or -1 for all cores")
        return value

    @field_validator("model_name")
    @classmethod
    def _registrable_name(cls, value: str) -> str:
        if not value.strip() or any(c in value for c in "/:@"):
            raise ValueError(
                "a registered model name must not be blank nor contain '/', ':' or '@' "
                "(it is used in models:/NAME@ALIAS)"
            )
        return value

    @model_validator(mode="after")
    def _ngram_range_in_order(self) -> TrainConfig:
        if self.id_ngram_min > self.id_ngram_max:
            raise ValueError(
                f"--id-ngram-min {self.id_ngram_min} is above --id-ngram-max {self.id_ngram_max}"
            )
        return self

    @model_validator(mode="after")
    def _task_options_fit(self) -> TrainConfig:
        if self.task == "single_label" and self.gate_metric not in (None, "f1_macro"):
            raise ValueError("--gate-metric: a single_label model is compared on f1_macro only")
        if self.task == "single_label" and self.label_separator:
            # Ignored, it would train one class per joined string ('audio;garden').
            raise ValueError(
                "--label-separator applies to --task multilabel or path (a single_label "
                "model reads each label whole); add --task multilabel or --task path, or drop "
                "--label-separator"
            )
        if self.task != "single_label" and not self.compact:
            raise ValueError(
                f"--task {self.task} needs the compact forest (--compact): it is fitted in "
                "chunks that are compacted one by one"
            )
        return self

    def resolved_linear_char_features(self) -> int:
        """--linear-char-features, its default resolved for this model's inputs."""
        if self.linear_char_features is not None:
            return self.linear_char_features
        return 0 if self.token_columns or self.id_column else TEXT_ONLY_CHAR_FEATURES

    def unused_options(self) -> list[str]:
        """A warning for each group of options given (on the command line or in a config file)
        that this run does not use. Not refused: a config file may hold every option, as
        product-tune's best config does."""
        if self.task != "single_label":
            reason = (
                f"--task {self.task} (single_label options; --tag-weighting stands in for SMOTE)"
            )
            return _unused({reason: SINGLE_LABEL_OPTIONS}, self.model_fields_set)
        unused_when = {
            "--no-smote (SMOTE is off)": () if self.smote else SMOTE_OPTIONS,
            "--task single_label (multilabel and path options)": TAG_OPTIONS,
            "--small-classes drop (nothing is folded)": (
                ("other_label",) if self.small_classes == "drop" else ()
            ),
        }
        return _unused(unused_when, self.model_fields_set)

    @property
    def task_gate_metric(self) -> str:
        """The metric the gate compares for this task."""
        defaults = {"single_label": "f1_macro", "multilabel": "f1_micro", "path": "f1_samples"}
        return self.gate_metric or defaults[self.task]

    @field_validator("id_column")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only what the caller passes (the CLI adds its own source in front): no environment
        # variables, whose names here (DATA, SEED, FORMAT) are too common to read silently.
        return (init_settings,)


def _unused(unused_when: Mapping[str, tuple[str, ...]], given: set[str]) -> list[str]:
    """One warning per reason whose options were given, naming them as options."""
    warnings = []
    for reason, names in unused_when.items():
        options = [f"--{name.replace('_', '-')}" for name in names if name in given]
        if options:
            warnings.append(f"{', '.join(options)}: no effect with {reason}, ignored")
    return warnings
