"""One training run, end to end: load → split → fit → evaluate → log → register → gate.

The catalog is read and split before MLflow is contacted, so bad data fails fast. Aliases move only
at the very end, once the gate has decided. A run that fails or is interrupted, even after that,
takes back what it changed in the registry (the aliases it moved go back, the version it
registered is deleted; the run keeps its logged model) and is marked FAILED on the way out.
"""

from __future__ import annotations

import logging
import tempfile
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from product_model.contract import InputContract
from training import gate, gate_contract, registry, tracking
from training.catalog import Catalog, load_catalog
from training.catalog_split import check_cv_folds, check_min_df, split_catalog, split_definition
from training.config import TrainConfig
from training.evaluate import Evaluation, write_reports
from training.fit_evaluate import compare_without_smote, cross_validate, fit_and_evaluate
from training.interrupts import raise_if_interrupted
from training.model_metadata import model_metadata
from training.pipeline import feature_spec, model_input
from training.profile import plot_profiles, reference_profile
from training.registry_changes import RunChanges, delete_abandoned_versions
from training.retries import RetryPolicy
from training.run_writer import RunWriter, metric_name
from training.split import SplitDefinition
from training.stages import stage

log = logging.getLogger(__name__)
ABANDONED_RUN_HOURS = 24.0


@dataclass
class TrainResult:
    run_id: str
    model_uri: str
    model_version: str
    promoted: bool
    decision: str
    metrics: dict[str, float] = field(default_factory=dict)
    champion_f1: float | None = None
    classes_changed: str | None = None  # how the classes differ from the champion's, if they do
    inputs_changed: str | None = None  # how the input fields differ from the champion's, the same


def train(config: TrainConfig) -> TrainResult:
    """Run one training and return what was registered and decided."""
    if config.task != "single_label":
        from training.tag_run import train_tags

        return train_tags(config)
    timings: dict[str, float] = {}
    with stage("loading the catalog", timings):
        catalog = load_catalog(config)
        definition = split_definition(config)
        train_rows, holdout = split_catalog(catalog, definition)
        check_min_df(config, train_rows)
        check_cv_folds(config, train_rows)
    log.info(
        "%d rows in %d classes (%d train, %d holdout)",
        len(catalog.frame),
        catalog.counts["classes"],
        len(train_rows),
        len(holdout),
    )
    tracking_uri = tracking.resolve_tracking_uri(config.tracking_uri)
    policy = RetryPolicy(config.tracking_timeout_seconds)
    where = tracking.redact(tracking_uri)
    with stage(f"connecting to MLflow at {where}", timings, key="connecting to MLflow"):
        client = tracking.connect(tracking_uri, policy)
    steps = TrainingRun(config, client, tracking_uri, catalog, definition, timings, policy)
    try:
        return steps.run(train_rows, holdout)
    except MlflowException as error:
        raise tracking.as_tracking_error(error, "training run") from None


@dataclass
class TrainingRun:
    """The steps of one run inside MLflow, sharing what every step needs."""

    config: TrainConfig
    client: MlflowClient
    tracking_uri: str
    catalog: Catalog
    split: SplitDefinition
    timings: dict[str, float]
    policy: RetryPolicy

    @property
    def writer(self) -> RunWriter:
        return RunWriter(self.policy)

    def run(self, train_rows: pd.DataFrame, holdout: pd.DataFrame) -> TrainResult:
        name = self.config.experiment_name
        experiment = self.policy.call(f"experiment {name}", mlflow.set_experiment, name)
        experiment_id = str(experiment.experiment_id)
        abandoned = self.policy.call(
            "failing abandoned runs",
            tracking.fail_abandoned_runs,
            self.client,
            experiment_id,
            ABANDONED_RUN_HOURS,
        )
        for run_id in abandoned:
            what, name = f"deleting the versions of abandoned run {run_id}", self.config.model_name
            self.policy.call(what, delete_abandoned_versions, self.client, name, run_id)
        run_id = tracking.start_run_once(
            self.policy, self.client, experiment_id, self.config.run_name
        )
        changes = RunChanges(self.client, self.config.model_name, run_id, self.policy)
        try:
            result = self.in_run(changes, train_rows, holdout)
            tracking.end_run(self.policy, self.client, run_id, "FINISHED")
        except BaseException:
            changes.take_back()
            tracking.end_failed_run(self.policy, self.client, run_id)
            raise
        return result

    def in_run(
        self, changes: RunChanges, train_rows: pd.DataFrame, holdout: pd.DataFrame
    ) -> TrainResult:
        run_id = changes.run_id
        self.log_inputs(train_rows, holdout)
        served, evaluation = self.fit(train_rows, holdout)
        metrics = self.extra_metrics(train_rows, holdout) | evaluation.metrics
        self.writer.metrics(metrics)
        with stage("profiling the holdout", self.timings):
            profile = self.profile(served, holdout, evaluation)
        with stage("logging and registering the model", self.timings):
            example = model_input(holdout, self.config).head(3)
            metadata = self.metadata(evaluation, run_id) | {"profile": profile}
            model_uri = registry.log_model(served, metadata, example, self.policy)
            version = changes.register(model_uri)
        labels = self.predicted(served, evaluation)
        with stage("comparing with the champion", self.timings):
            decision = self.judge(holdout, labels, [str(c) for c in served.classes_])
        self.log_decision(decision, str(version.version))
        raise_if_interrupted()
        changes.publish(str(version.version), decision.promote)
        return TrainResult(
            run_id,
            model_uri,
            str(version.version),
            decision.promote,
            decision.reason,
            metrics,
            decision.champion_f1,
            decision.class_change.describe() if decision.class_change else None,
            decision.input_change.describe() if decision.input_change else None,
        )

    def predicted(self, served: Any, evaluation: Evaluation) -> Any:
        """The model's answers on the holdout, as the gate compares them."""
        return served.classes_[np.argmax(evaluation.proba, axis=1)]

    def log_inputs(self, train_rows: pd.DataFrame, holdout: pd.DataFrame) -> None:
        params = self.config.model_dump() | {"tracking_uri": tracking.redact(self.tracking_uri)}
        params["linear_char_features"] = self.config.resolved_linear_char_features()  # not None
        self.writer.params({k: str(v) for k, v in params.items()})
        self.writer.catalog(self.catalog, train_rows, holdout)
        if self.catalog.variants:
            groups = [dict(group.labels) for group in self.catalog.variants]
            self.writer.json({"groups": groups}, "data/label_variants.json")

    def fit(self, train_rows: pd.DataFrame, holdout: pd.DataFrame) -> tuple[Any, Evaluation]:
        served, evaluation, after = fit_and_evaluate(
            self.config, train_rows, holdout, self.config.smote, self.timings
        )
        before = {str(k): int(v) for k, v in Counter(train_rows["label"]).items()}
        with tempfile.TemporaryDirectory() as scratch:
            for path in write_reports(evaluation, before, after, Path(scratch)):
                self.writer.artifact(path, "evaluation")
        per_class = evaluation.per_class["f1"].items()
        self.writer.metrics({f"f1_class_{metric_name(k)}": float(v) for k, v in per_class})
        return served, evaluation

    def extra_metrics(self, train_rows: pd.DataFrame, holdout: pd.DataFrame) -> dict[str, float]:
        metrics: dict[str, float] = {}
        if self.config.compare_without_smote and self.config.smote:
            metrics |= compare_without_smote(
                self.config, self.policy, self.client, train_rows, holdout, self.timings
            )
        if self.config.cv_folds > 1:
            folds = self.config.cv_folds
            with stage(f"{folds}-fold cross-validation", self.timings, key="cross-validation"):
                metrics |= cross_validate(self.config, train_rows)
        return metrics

    def profile(self, served: Any, holdout: pd.DataFrame, evaluation: Evaluation) -> dict[str, Any]:
        """The reference profile the model carries, logged to the run as JSON and a picture."""
        rows = model_input(holdout, self.config)
        profile = reference_profile(served, rows, evaluation.proba, self.contract())
        self.writer.json(profile, "monitoring/reference_profile.json")
        with tempfile.TemporaryDirectory() as scratch:
            picture = Path(scratch) / "reference_profile.png"
            plot_profiles({"reference (holdout)": profile}, picture, "Reference profile")
            self.writer.artifact(picture, "monitoring")
        return profile

    def contract(self) -> InputContract:
        """The input contract of the model this run trains."""
        return feature_spec(self.config).contract(self.catalog.frame, self.config.label_column)

    def metadata(self, evaluation: Evaluation, run_id: str) -> dict[str, Any]:
        return model_metadata(self.config, self.catalog, self.split, evaluation, run_id)

    def judge(
        self, holdout: pd.DataFrame, labels: Any, classes: list[str] | None = None
    ) -> gate.GateDecision:
        """Re-score the champion on `holdout` and compare it with this model's `labels`; the
        decision also says how this model's `classes` and input fields differ from the
        champion's."""
        config, rows = self.config, holdout.reset_index(drop=True)
        champion = self.policy.call(
            "reading the champion", registry.current_champion, self.client, config.model_name
        )
        if champion is None:
            return self.challenge(None, rows, labels)
        record = self.policy.call(
            "reading the champion's run", registry.training_record, self.client, champion
        )
        theirs, mine = gate.TrainingOrigin.from_run(*record), self.origin()
        version = str(champion.version)
        unfit = gate.unfit_champion(theirs, mine, version, config.force_promote) if theirs else None
        if unfit is not None:
            if unfit.promote:
                log.warning("gate: %s", unfit.reason)
            return unfit
        scores = self.rescore(version, rows)
        decision = self.compare(scores, rows, labels, theirs)
        change = gate_contract.class_change(scores, classes) if classes is not None else None
        inputs = gate_contract.input_change(scores, self.contract().fields)
        return replace(decision, class_change=change, input_change=inputs)

    def compare(
        self,
        scores: gate.ChampionScores,
        rows: pd.DataFrame,
        labels: Any,
        theirs: gate.TrainingOrigin | None,
    ) -> gate.GateDecision:
        """The decision on the champion's answers `scores`: none when `rows` lack fields it reads
        (its score would not be its own), else the gate's rule, with a shortfall explained."""
        unreadable = gate_contract.unreadable_champion(scores, rows, self.config.force_promote)
        if unreadable is not None:
            if unreadable.promote:
                log.warning("gate: %s", unreadable.reason)
            return unreadable
        decision = self.challenge(scores, rows, labels)
        splits = (scores.split, self.split)
        return gate.explain_shortfall(
            decision, theirs, self.origin(), splits, len(rows), self.config.gate_min_rows
        )

    def origin(self) -> gate.TrainingOrigin:
        """What this model is trained for and on, as the gate compares it with the champion."""
        config, catalog = self.config, self.catalog
        return gate.TrainingOrigin(config.task, config.label_column, catalog.source, catalog.sha256)

    def rescore(self, version: str, holdout: pd.DataFrame) -> gate.ChampionScores:
        """The champion's answers on `holdout`, by its own code; none if it cannot answer."""
        uri = f"models:/{self.config.model_name}/{version}"
        try:
            scores: gate.ChampionScores = self.policy.call(
                f"re-scoring champion v{version}",
                gate.score_champion,
                self.tracking_uri,
                uri,
                version,
                holdout.drop(columns=["label"]),
            )
        except Exception as error:  # a broken artifact or a champion of another schema
            log.warning("could not re-score champion v%s: %s", version, error)
            return gate.ChampionScores(version, None, np.array([]))
        return scores

    def challenge(
        self, champion: gate.ChampionScores | None, holdout: pd.DataFrame, labels: Any
    ) -> gate.GateDecision:
        """The gate's rule for this task: macro-F1 of single labels."""
        return gate.challenge(
            champion, holdout, labels, self.config.gate_min_rows, self.config.force_promote
        )

    def log_decision(self, decision: gate.GateDecision, version: str) -> None:
        short = decision.champion_f1 is None or decision.compared_rows < self.config.gate_min_rows
        undecided = not decision.promote and short  # the gate could not compare: say so loudly
        log.log(logging.WARNING if undecided else logging.INFO, "gate: %s", decision.reason)
        gate_contract.log_changes(decision, self.writer)
        self.writer.metrics(
            {f"time_{metric_name(k)}_seconds": v for k, v in self.timings.items()}
            | {"gate_compared_rows": float(decision.compared_rows)}
        )
        self.writer.tags(
            {
                "promotion.decision": "promoted" if decision.promote else "kept",
                "promotion.reason": decision.reason,
                "model.version": version,
            }
        )
        metric = self.config.task_gate_metric  # f1_macro for single-label models
        scores = {
            f"champion_{metric}_rescored": decision.champion_f1,
            f"challenger_{metric}_on_shared_holdout": decision.challenger_f1,
        }
        self.writer.metrics({k: v for k, v in scores.items() if v is not None})
