"""Whether `product-monitor should-retrain` retrains: the champion vs. the catalog and live drift.

The champion is read from the registry with what its training run logged: the reference profile
(live traffic is compared with it) and the training data's hash (an unchanged catalog would only
reproduce the champion).
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.drift_report import Comparison
from training.errors import DataError

IN_MEMORY = re.compile(r"sqlite(\+\w+)?:///?(:memory:)?")


@dataclass(frozen=True)
class Champion:
    """The registry's champion and what its training run logged (None: the run predates it)."""

    version: str
    run_id: str
    profile: dict[str, Any] | None
    data_sha256: str | None
    task: str = "single_label"


@dataclass(frozen=True)
class Decision:
    """Retrain or keep the champion, and why (logged for whoever reads the CronJob's output)."""

    retrain: bool
    reason: str


def load_champion(tracking_uri: str | None, model_name: str) -> Champion | None:
    """The champion's version, reference profile and training-data hash (None: no champion)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from training import registry, tracking

    uri = tracking.resolve_tracking_uri(tracking_uri)
    client = tracking.connect(uri)
    try:
        version = registry.current_champion(client, model_name)
        if version is None:
            return None
        run = client.get_run(str(version.run_id))
        with tempfile.TemporaryDirectory() as scratch:
            try:
                path = mlflow.artifacts.download_artifacts(
                    run_id=run.info.run_id,
                    artifact_path="monitoring/reference_profile.json",
                    dst_path=scratch,
                )
                profile = json.loads(Path(path).read_text("utf-8"))
            except (MlflowException, OSError):  # trained before reference profiles existed
                profile = None
    except MlflowException as error:
        raise tracking.as_tracking_error(error, f"reading the champion of {model_name}") from None
    sha = run.data.tags.get("data.sha256")
    task = run.data.params.get("task", "single_label")  # runs before tasks were single-label
    return Champion(str(version.version), run.info.run_id, profile, sha, task)


def decide(champion: Champion | None, catalog_sha: str, drift: Comparison | None) -> Decision:
    """Retrain when there is something new to learn and live traffic has moved (or cannot tell)."""
    if champion is None:
        return Decision(True, "no champion yet")
    level = drift.level() if drift is not None else "unknown"
    if champion.data_sha256 == catalog_sha:
        advice = " add recent products to the catalog" if level in ("warning", "critical") else ""
        return Decision(
            False,
            f"the catalog is champion v{champion.version}'s training data "
            f"(sha256 {catalog_sha[:12]}); retraining would reproduce it; drift is {level}"
            + (f":{advice}" if advice else ""),
        )
    if level == "ok":
        return Decision(
            False,
            f"the catalog changed, but live traffic still matches champion v{champion.version}'s "
            "reference (drift below the warning level); --always trains anyway",
        )
    why = "no drift verdict (too little live traffic)" if level == "unknown" else f"drift {level}"
    return Decision(True, f"the catalog changed and {why}")


def unregistered_model(tracking_uri: str | None, name: str) -> str | None:
    """Why `name` has no champion when the store has no registered model of that name, naming a
    few that it has (None: `name` is registered)."""
    found = other_models(tracking_uri, name)
    return None if found is None else not_registered(tracking_uri, name, found)


def without_champion(tracking_uri: str | None, name: str) -> Decision:
    """`should-retrain`'s decision when `name` has no champion: retrain when `name` is registered
    (no version passed the gate yet) or the store holds no model at all (the first training); a
    store holding only other models is a `DataError`, as `name` is more likely a typo than a new
    model (a retraining would register a model no server serves)."""
    others = other_models(tracking_uri, name)
    if others is None:
        return Decision(True, f"no champion yet: no version of {name} has the champion alias")
    if not others:
        return Decision(True, f"no model is registered in the store yet (first training of {name})")
    raise DataError(
        not_registered(tracking_uri, name, others) + "; to train a new model beside them, pass "
        "--always (ALWAYS_TRAIN=true in the retraining CronJob) or run product-train once"
    )


def other_models(tracking_uri: str | None, name: str) -> list[str] | None:
    """None when `name` is a registered model; else up to 6 names of those the store holds."""
    from mlflow.exceptions import MlflowException

    from training import tracking

    client = tracking.connect(tracking.resolve_tracking_uri(tracking_uri))
    try:
        client.get_registered_model(name)
        return None
    except MlflowException as error:
        if error.error_code not in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
            raise tracking.as_tracking_error(error, f"reading the model {name}") from None
    try:
        return [model.name for model in client.search_registered_models(max_results=6)]
    except MlflowException as error:
        raise tracking.as_tracking_error(error, "listing the registered models") from None


def not_registered(tracking_uri: str | None, name: str, others: list[str]) -> str:
    """`name` is not registered in the store, which holds `others` (a few of them)."""
    from training import tracking
    from training.tracking_uri import redact

    uri = tracking.resolve_tracking_uri(tracking_uri)
    there = f"it has {', '.join(others[:5])}" + (", ..." if len(others) > 5 else "")
    if not others:
        memory = " (an in-memory database starts empty)" if IN_MEMORY.fullmatch(uri) else ""
        there = f"it has none{memory}"
    return (
        f"{name}: no registered model of that name in the store {redact(uri)!r} ({there}); "
        "give --model-name (or the config's model_name) of a registered model, or --tracking-uri "
        "of the store that holds it"
    )
