"""What a training run writes to MLflow, each write retried on transient failures and safe to
repeat: a retry after an answer that was cut (the server had done the work) stores nothing twice.

Parameters, tags, artifacts and aliases are set by name, so a repeat rewrites the same value.
Metrics get an explicit timestamp and step, fixed before the first attempt: MLflow stores a metric
whose key, value, timestamp and step are all equal only once.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import mlflow.data
import pandas as pd

from training.catalog import Catalog
from training.retries import RetryPolicy

MAX_TAG_CHARS = 5000  # what every MLflow store keeps of a tag's value


@dataclass(frozen=True)
class RunWriter:
    """The active run's writes, retried within `policy`."""

    policy: RetryPolicy

    def params(self, params: dict[str, Any]) -> None:
        self.policy.call("logging parameters", mlflow.log_params, params)

    def metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        stamp = int(time.time() * 1000)
        self.policy.call("logging metrics", mlflow.log_metrics, metrics, step=step, timestamp=stamp)

    def tags(self, tags: dict[str, str]) -> None:
        self.policy.call("setting tags", mlflow.set_tags, tags)

    def json(self, data: dict[str, Any], path: str) -> None:
        self.policy.call(f"logging {path}", mlflow.log_dict, data, path)

    def artifact(self, path: Path, folder: str) -> None:
        self.policy.call(
            f"logging {folder}/{path.name}", mlflow.log_artifact, str(path), artifact_path=folder
        )

    def dataset(self, dataset: Any, context: str) -> None:
        self.policy.call(f"logging the {context} dataset", mlflow.log_input, dataset, context)

    def catalog(self, catalog: Catalog, train: pd.DataFrame, test: pd.DataFrame) -> None:
        """What the run trained and was evaluated on: counts, source, digest, the two datasets."""
        counts = {f"data_{metric_name(k)}": float(v) for k, v in catalog.counts.items()}
        counts.update({"data_train_rows": float(len(train)), "data_eval_rows": float(len(test))})
        self.metrics(counts)
        self.tags({"data.source": catalog.source, "data.sha256": catalog.sha256})
        summary = {
            "source": catalog.source,
            "sha256": catalog.sha256,
            "counts": catalog.counts,
            "class_counts": catalog.labels.value_counts().to_dict(),
        }
        self.json(summary, "data/summary.json")
        for frame, context in ((train, "training"), (test, "evaluation")):
            with warnings.catch_warnings():  # MLflow registers two local-file source types
                warnings.simplefilter("ignore", UserWarning)
                dataset = mlflow.data.from_pandas(  # type: ignore[attr-defined]
                    frame[["label"]],
                    source=catalog.source,
                    name=f"{Path(catalog.source).name}@{catalog.sha256[:12]}",
                    targets="label",
                )
            self.dataset(dataset, context)


def metric_name(text: str) -> str:
    return "".join(c if c.isalnum() or c in "_-." else "_" for c in str(text).lower())[:200]
