"""What a logged model carries about itself (`metadata.json`): its input contract, split, metrics
and origin."""

from __future__ import annotations

import platform
import time
from importlib import metadata as package_metadata
from typing import Any

from training.catalog import Catalog
from training.config import TrainConfig
from training.evaluate import Evaluation
from training.pipeline import feature_spec
from training.split import SplitDefinition


def model_metadata(
    config: TrainConfig,
    catalog: Catalog,
    split: SplitDefinition,
    evaluation: Evaluation,
    run_id: str,
) -> dict[str, Any]:
    """What the model carries about itself: its input contract, split, metrics and origin."""
    contract = feature_spec(config).contract(catalog.frame, config.label_column)
    return {
        "model_name": config.model_name,
        "run_id": run_id,
        "metrics": evaluation.metrics,
        "contract": contract.to_dict(),
        "input_fields": list(contract.names),
        "split": split.to_dict(),
        "data_sha256": catalog.sha256,
        "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        "platform_version": platform_version(),
    }


def platform_version() -> str:
    """The installed version of this project, or "unknown" when it runs from a source tree."""
    try:
        return package_metadata.version("product-categorization")
    except package_metadata.PackageNotFoundError:
        return "unknown"
