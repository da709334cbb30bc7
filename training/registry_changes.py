"""What one training run changes in the registry, and how a run that fails takes it back: the
version it registered is deleted (MLflow keeps the run's logged model) and the aliases it moved
go back where they were."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from training.registry import CHALLENGER, CHAMPION, register, runs_versions
from training.retries import DEFAULT_POLICY, RetryPolicy

log = logging.getLogger(__name__)


@dataclass
class RunChanges:
    """What one run changes in the registry, so that a run that fails takes it all back: the
    version it registers, and the aliases it moves with the versions they named before."""

    client: MlflowClient
    name: str
    run_id: str
    policy: RetryPolicy = DEFAULT_POLICY
    registering: bool = False  # from the first request on: its answer may be lost, not its work
    version: str | None = None
    moved: dict[str, str | None] = field(default_factory=dict)

    def register(self, model_uri: str) -> ModelVersion:
        """`register` this run's model, remembered as this run's to take back."""
        self.registering = True
        registered = register(self.client, model_uri, self.run_id, self.name, self.policy)
        self.version = str(registered.version)
        return registered

    def publish(self, version: str, promote: bool) -> None:
        """Point `challenger` at `version`, and `champion` too when the gate promotes it."""
        self.version = version
        before = self.aliases()
        for alias in (CHALLENGER, CHAMPION) if promote else (CHALLENGER,):
            self.moved[alias] = before.get(alias)  # recorded first: a cut answer may hide a move
            self.set_alias(alias, version)

    def aliases(self) -> dict[str, str]:
        """Each alias of the model and the version it names (asked with retries)."""
        return self.policy.call(
            f"reading {self.name}'s aliases", aliases_of, self.client, self.name
        )

    def set_alias(self, alias: str, version: str | None) -> None:
        """Point `alias` at `version`, or remove it when `version` is None."""
        what, client = f"{self.name}@{alias}", self.client
        if version is None:
            self.policy.call(
                f"removing {what}", client.delete_registered_model_alias, self.name, alias
            )
        else:
            self.policy.call(
                f"setting {what}", client.set_registered_model_alias, self.name, alias, version
            )

    def take_back(self) -> None:
        """On the way out of a failed run: the aliases it moved back where they were, then the
        version it registered deleted. The first step that fails ends it, with a warning that
        names what is left to undo by hand."""
        try:
            self.put_aliases_back()
            self.delete_versions()
        except Exception as error:  # the run's own error stays the one reported
            log.warning(
                "could not undo what this failed run changed in the registry (%s): %s; undo it "
                "in the MLflow UI or with MlflowClient",
                error,
                self.left_over(),
            )

    def put_aliases_back(self) -> None:
        """Each moved alias that still names this run's version back on the one it named."""
        now = self.aliases() if self.moved else {}
        for alias, before in list(self.moved.items()):
            if now.get(alias) == self.version:
                self.set_alias(alias, before)
                back = f"back on version {before}, as before" if before else "removed, as before"
                log.warning("%s@%s is %s this run", self.name, alias, back)
            del self.moved[alias]

    def delete_versions(self) -> None:
        """Delete the versions this run registered (MLflow keeps the run's logged model)."""
        if not self.registering:
            return
        finding = f"finding {self.name}'s version of run {self.run_id}"
        for found in self.policy.call(finding, runs_versions, self.client, self.name, self.run_id):
            number, what = str(found.version), f"{self.name}/{found.version}"
            self.policy.call(f"deleting {what}", delete_version, self.client, self.name, number)
            log.warning("deleted %s: its run failed (the run keeps the logged model)", what)
        self.registering = False

    def left_over(self) -> str:
        """What `take_back` did not undo, for the user to undo by hand."""
        mine = f"version {self.version}" if self.version else f"the version of run {self.run_id}"
        parts = [
            f"{self.name}@{alias} may still name {mine} (it named {before or 'no version'} before)"
            for alias, before in self.moved.items()
        ]
        if self.registering:
            parts.append(f"{mine} of {self.name}, registered by this run, may still be there")
        return "; ".join(parts)


def aliases_of(client: MlflowClient, name: str) -> dict[str, str]:
    """Each alias of the registered model `name` and the version it names."""
    model = client.get_registered_model(name)
    return {alias: str(version) for alias, version in model.aliases.items()}


def delete_version(client: MlflowClient, name: str, version: str) -> None:
    """Delete one version of `name`; one already gone is fine (a retried call)."""
    try:
        client.delete_model_version(name, version)
    except MlflowException as error:
        if error.error_code not in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
            raise


def delete_abandoned_versions(client: MlflowClient, name: str, run_id: str) -> None:
    """Delete the versions of `name` that the abandoned run `run_id` registered (its process died
    before it could take them back, as a killed pod's does), except one an alias names: that
    one is named in a warning, as only its user knows where the alias belongs."""
    found_versions = runs_versions(client, name, run_id)
    if not found_versions:
        return
    aliases = aliases_of(client, name)  # search results do not carry them
    for found in found_versions:
        what = f"{name}/{found.version}"
        naming = sorted(
            alias for alias, version in aliases.items() if version == str(found.version)
        )
        if naming:
            named = ", ".join(f"{name}@{alias}" for alias in naming)
            log.warning("%s of abandoned run %s is kept: %s names it", what, run_id, named)
            continue
        delete_version(client, name, str(found.version))
        log.warning(
            "deleted %s: its run %s was abandoned (it keeps the logged model)", what, run_id
        )
