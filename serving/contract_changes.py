"""What a hot swap changes for clients: the input fields a model reads and the classes it answers.

Requests are validated by the contract of the model serving them, so after a swap to a model with
other input fields every request written for the previous one is refused (422) while /readyz
stays 200; the swap says so in a WARNING (and `ProductClassifierRejectedInputSurge` alerts on the
refusals).
"""

from __future__ import annotations

import logging

from serving.model import ServedModel

log = logging.getLogger(__name__)
CHANGES_LOGGED = 50  # of each kind, as log fields (a retrain may rename hundreds of classes)


def contract_changes(before: ServedModel, after: ServedModel) -> dict[str, list[str]]:
    """What clients send or get that differs from `before` to `after`: input fields removed,
    added or given another role or type (`name (text string → tokens tokens)`), classes removed
    or added (in each model's order), the task; only the kinds that changed (empty: none)."""
    old = {f.name: f for f in before.contract.fields}
    new = {f.name: f for f in after.contract.fields}
    old_classes = [str(label) for label in before.classes]
    new_classes = [str(label) for label in after.classes]
    in_old, in_new = set(old_classes), set(new_classes)
    tasks = before.contract.task, after.contract.task
    changes = {
        "fields_removed": [name for name in old if name not in new],
        "fields_added": [name for name in new if name not in old],
        "fields_changed": [
            f"{name} ({old[name].role} {old[name].type} → {new[name].role} {new[name].type})"
            for name in old
            if name in new and old[name] != new[name]
        ],
        "classes_removed": [label for label in old_classes if label not in in_new],
        "classes_added": [label for label in new_classes if label not in in_old],
        "task": [f"{tasks[0]} → {tasks[1]}"] if tasks[0] != tasks[1] else [],
    }
    return {kind: items for kind, items in changes.items() if items}


def describe_changes(changes: dict[str, list[str]], first_few: int = 5) -> str:
    """`fields removed: title, description; classes added (12): a, b, c, d, e, …` for a log line."""
    parts = []
    for kind, items in changes.items():
        shown = ", ".join(items[:first_few]) + (", …" if len(items) > first_few else "")
        count = f" ({len(items)})" if kind.startswith("classes") else ""
        parts.append(f"{kind.replace('_', ' ')}{count}: {shown}")
    return "; ".join(parts)


def warn_of_contract_change(previous: ServedModel, model: ServedModel) -> None:
    """A WARNING when the model swapped in reads other input fields or answers other classes:
    requests validated since the swap follow its contract, so clients written for the previous
    one may now be refused (422) or get labels they do not know, while /readyz stays 200."""
    changes = contract_changes(previous, model)
    if not changes:
        return
    log.warning(
        "model contract changed: version %s → %s: %s",
        previous.ref.version,
        model.ref.version,
        describe_changes(changes),
        extra={
            "model_name": model.ref.name,
            "model_version": model.ref.version,
            "previous_version": previous.ref.version,
            **{kind: items[:CHANGES_LOGGED] for kind, items in changes.items()},
        },
    )
