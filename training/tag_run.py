"""One multi-label or category-path training run: the single-label run's steps (`TrainingRun`)
with the tag catalog, the chunked multi-output forest and its thresholds, tag scores, and a gate
on the task's metric (`--gate-metric`)."""

from __future__ import annotations

import logging
import tempfile
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException

from product_model.tags import PATH, PATH_SEPARATOR, TagDecoder
from training import gate, tracking
from training.catalog_split import check_min_df, split_definition
from training.config import TrainConfig
from training.evaluate import Evaluation
from training.model_metadata import model_metadata
from training.pipeline import model_input
from training.retries import RetryPolicy
from training.run import TrainingRun, TrainResult
from training.run_writer import metric_name
from training.stages import stage
from training.tag_catalog import TagCatalog, load_tag_catalog, split_tag_catalog
from training.tag_evaluate import evaluate_tags, set_scores, write_tag_reports
from training.tag_model import fit_tag_model

log = logging.getLogger(__name__)
LABEL_JOIN = " | "  # how a row's tags are shown where one string is needed (dataset logging)


def imbalance_handling(config: TrainConfig) -> str:
    """What plays SMOTE's role in this run (logged as a parameter)."""
    thresholds = "per-tag thresholds chosen on out-of-bag training predictions"
    if config.tag_weighting == "rare_tags":
        return f"rare-tag row weights + {thresholds}"
    return thresholds


def train_tags(config: TrainConfig) -> TrainResult:
    """Run one multilabel or path training and return what was registered and decided."""
    timings: dict[str, float] = {}
    with stage("loading the catalog", timings):
        catalog = load_tag_catalog(config)
        definition = split_definition(config)
        train_rows, holdout, tags = split_tag_catalog(catalog, definition)
        check_min_df(config, train_rows)
    log.info(
        "%d rows with %d tags (%d train, %d holdout)",
        len(catalog.frame),
        len(tags),
        len(train_rows),
        len(holdout),
    )
    tracking_uri = tracking.resolve_tracking_uri(config.tracking_uri)
    policy = RetryPolicy(config.tracking_timeout_seconds)
    where = tracking.redact(tracking_uri)
    with stage(f"connecting to MLflow at {where}", timings, key="connecting to MLflow"):
        client = tracking.connect(tracking_uri, policy)
    steps = TagTrainingRun(config, client, tracking_uri, catalog, definition, timings, policy, tags)
    try:
        return steps.run(train_rows, holdout)
    except MlflowException as error:
        raise tracking.as_tracking_error(error, "training run") from None


@dataclass
class TagTrainingRun(TrainingRun):
    tags: list[str] = field(default_factory=list)
    decoder: TagDecoder | None = None

    def log_inputs(self, train_rows: pd.DataFrame, holdout: pd.DataFrame) -> None:
        params = self.config.model_dump() | {"tracking_uri": tracking.redact(self.tracking_uri)}
        params = {k: str(v) for k, v in params.items()}
        params["smote"] = "False (not defined for label sets)"
        self.writer.params(params | {"imbalance_handling": imbalance_handling(self.config)})
        joined = [
            frame.assign(label=frame["label"].map(LABEL_JOIN.join))
            for frame in (self.catalog.frame, train_rows, holdout)
        ]
        self.writer.catalog(replace(self.catalog, frame=joined[0]), joined[1], joined[2])
        counts = Counter(tag for tags in train_rows["label"] for tag in tags)
        self.writer.json({tag: counts[tag] for tag in self.tags}, "data/tag_counts.json")

    def fit(self, train_rows: pd.DataFrame, holdout: pd.DataFrame) -> tuple[Any, Evaluation]:
        config = self.config
        with stage(
            f"fitting {config.n_estimators} trees on {len(train_rows)} rows, {len(self.tags)} tags",
            self.timings,
            key="fitting",
        ):
            model = fit_tag_model(config, train_rows, self.tags, config.task, self.joiner())
        decoder = self.decoder = model.decoder
        with stage("evaluating", self.timings):
            proba = model.served.predict_proba(model_input(holdout, config))
            counts = Counter(tag for tags in train_rows["label"] for tag in tags)
            evaluation = evaluate_tags(
                holdout["label"].tolist(),
                decoder.label_sets(proba),
                proba,
                self.tags,
                dict(counts),
                decoder.separator if config.task == PATH else None,
            )
        thresholds = dict(zip(self.tags, decoder.thresholds, strict=True))
        with tempfile.TemporaryDirectory() as scratch:
            for path in write_tag_reports(evaluation, thresholds, Path(scratch)):
                self.writer.artifact(path, "evaluation")
        per_tag = evaluation.per_class["f1"].items()
        self.writer.metrics({f"f1_tag_{metric_name(k)}": float(v) for k, v in per_tag})
        return model.served, evaluation

    def joiner(self) -> str:
        """What joins a path's levels in the model's node names and answers: the catalog's
        (`Desktop/games` when trained with `--label-separator /`)."""
        catalog = self.catalog
        return catalog.joiner if isinstance(catalog, TagCatalog) else PATH_SEPARATOR

    def extra_metrics(self, train_rows: pd.DataFrame, holdout: pd.DataFrame) -> dict[str, float]:
        if self.config.cv_folds > 1 or self.config.compare_without_smote:
            log.warning("--cv-folds and --compare-without-smote apply to single_label only")
        return {}

    def metadata(self, evaluation: Evaluation, run_id: str) -> dict[str, Any]:
        assert self.decoder is not None
        metadata = model_metadata(self.config, self.catalog, self.split, evaluation, run_id)
        outputs = ["label", "probability", "top_labels", "top_probabilities"]
        outputs += (
            ["path", "path_probabilities"]
            if self.config.task == PATH
            else [
                "tags",
                "tag_probabilities",
            ]
        )
        metadata["contract"] |= {
            "task": self.config.task,
            "tags": self.decoder.to_dict(),
            "outputs": outputs,
        }
        metadata["gate_metric"] = self.config.task_gate_metric
        return metadata

    def predicted(self, served: Any, evaluation: Evaluation) -> Any:
        assert self.decoder is not None
        return self.decoder.label_sets(evaluation.proba)

    def challenge(
        self, champion: gate.ChampionScores | None, holdout: pd.DataFrame, labels: Any
    ) -> gate.GateDecision:
        return challenge_tags(champion, holdout, labels, self.config.task_gate_metric, self.config)


def challenge_tags(
    champion: gate.ChampionScores | None,
    holdout: pd.DataFrame,
    predicted: list[list[str]],
    metric: str,
    config: TrainConfig,
) -> gate.GateDecision:
    """The gate's decision for tag sets, compared on `metric` over rows both models held out."""
    min_rows, force = config.gate_min_rows, config.force_promote
    if champion is None:
        return gate.decide(None, None, len(holdout), min_rows, force, None, metric)
    if champion.split is None or champion.tag_sets is None:
        log.warning(
            "champion v%s answers no tag sets under a recorded split (another task, or an "
            "older model): it cannot be compared",
            champion.version,
        )
        return gate.decide(None, None, 0, min_rows, force, champion.version, metric)
    both = np.flatnonzero(champion.split.held_out(holdout))
    truth = [holdout["label"].iloc[i] for i in both]
    tags = sorted({tag for row in truth for tag in row})
    mine = set_scores(truth, [predicted[i] for i in both], tags)[metric] if tags else None
    theirs = set_scores(truth, [champion.tag_sets[i] for i in both], tags)[metric] if tags else None
    return gate.decide(mine, theirs, len(both), min_rows, force, champion.version, metric)
