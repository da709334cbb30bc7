"""The shared study: who sets it up, and how many trials it still wants (its storage is
`training.tuning.storage`).

Every process (a local worker, a pod of the Indexed Job) calls `create_or_join`. Creating a study
is atomic in the storage (a unique name), so exactly one process wins and sets the study up — the
MLflow parent run, the settings, the defaults trial — before marking it ready; the others wait for
that mark. Re-running with the same name joins the existing study: that is how a study resumes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import optuna
from optuna.exceptions import DuplicatedStudyError
from optuna.trial import FrozenTrial, TrialState

from training.errors import ConfigError, TrainingError
from training.tuning.objective import BASELINE
from training.tuning.storage import check_storage_url

log = logging.getLogger(__name__)

READY = "ready"
SETTINGS = "settings"
MAX_LISTED_DIFFERENCES = 4  # named in the refusal to resume; the rest are counted
# Trials that use up the budget: finished ones, and those running or queued now. Failed trials
# (a killed worker) do not, so a resumed or continuing study makes up for them.
BUDGET_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
# User attribute of a trial that two workers started at once for the budget's last place: the
# later one is stopped (PRUNED) before it draws options, and counts nowhere.
OVER_BUDGET = "over_budget"


def create_or_join(
    storage: optuna.storages.RDBStorage,
    name: str,
    settings: dict[str, Any],
    set_up: Callable[[optuna.Study], None],
    wait_seconds: float = 300,
    comparable: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    **study_options: Any,
) -> optuna.Study:
    """Create the study and set it up (if this process is first), or join it once it is ready.

    `settings` (base options, space, folds) must match those the study began with: trials scored
    under other settings are not comparable. `comparable` brings the stored settings into the
    form `settings` has now (e.g. paths stored before they were stored absolute).
    """
    try:
        study = optuna.create_study(
            storage=storage, study_name=name, direction="maximize", **study_options
        )
    except DuplicatedStudyError:
        study = optuna.load_study(storage=storage, study_name=name, **study_options)
        _wait_until_ready(study, wait_seconds)
        _check_same_settings(study, settings, comparable or (lambda stored: stored))
        return study
    study.set_user_attr(SETTINGS, settings)
    set_up(study)
    study.set_user_attr(READY, True)
    return study


def _wait_until_ready(study: optuna.Study, wait_seconds: float) -> None:
    deadline = time.monotonic() + wait_seconds
    while not study.user_attrs.get(READY):
        if time.monotonic() > deadline:
            raise TrainingError(
                f"study {study.study_name!r} exists but was never set up (its creator stopped "
                "early?); start again with another --study-name"
            )
        time.sleep(1)


def _check_same_settings(
    study: optuna.Study,
    settings: dict[str, Any],
    comparable: Callable[[dict[str, Any]], dict[str, Any]],
) -> None:
    stored = comparable(study.user_attrs.get(SETTINGS, {}))
    differences, fixes = describe_differences(stored, settings)
    if not differences:
        return
    more = len(differences) - MAX_LISTED_DIFFERENCES
    listed = "; ".join(differences[:MAX_LISTED_DIFFERENCES]) + (
        f"; and {more} more" if more > 0 else ""
    )
    resume = f"To resume it, {'; '.join(fixes)}; or pass" if fixes else "Pass"
    raise ConfigError(
        f"study {study.study_name!r} began with other settings, and trials scored under other "
        f"settings are not comparable: {listed}. {resume} a new --study-name to begin another "
        "study with these settings"
    )


def describe_differences(
    stored: dict[str, Any], settings: dict[str, Any]
) -> tuple[list[str], list[str]]:
    """What differs between the settings a study began with (`stored`) and these, one entry per
    option, search-space parameter or other setting; and how to resume it (what to give again)."""
    options = (_section(stored, "options"), _section(settings, "options"))
    space = (_section(stored, "space"), _section(settings, "space"))
    differences: list[str] = []
    give_again: list[str] = []  # `--flag value` pairs the study began with
    leave_out: list[str] = []  # flags fixed now that the study searches
    changed_options = _changed(*options)
    for name in changed_options:
        flag = "--" + name.replace("_", "-")
        if name in space[0] and name not in space[1]:  # fixed now, so no longer searched
            differences.append(
                f"{flag}: searched before ({_drawn(space[0][name])}), fixed at "
                f"{options[1].get(name)!r} now"
            )
            leave_out.append(flag)
            continue
        before, now = _value(options[0], name), _value(options[1], name)
        differences.append(f"{flag}: {before} before, {now} now")
        if name in options[0]:
            give_again.append(f"{flag} {before}")
    searched = [name for name in _changed(*space) if name not in changed_options]
    differences += [
        f"search-space parameter {name}: {_drawn(space[0].get(name))} before, "
        f"{_drawn(space[1].get(name))} now"
        for name in searched
    ]
    for key in sorted((set(stored) | set(settings)) - {"options", "space"}):
        if stored.get(key) != settings.get(key):
            differences.append(f"--{key}: {stored.get(key)!r} before, {settings.get(key)!r} now")
            give_again.append(f"--{key} {stored.get(key)!r}")
    fixes = [f"give {_some_of(give_again)} as before"] if give_again else []
    if leave_out:
        them = "them" if len(leave_out) > 1 else "it"
        fixes.append(f"leave {', '.join(leave_out)} out (the study searches {them})")
    if searched:
        fixes.append("use the --search-space it began with")
    return differences, fixes


def _some_of(flags: list[str]) -> str:
    """The first few `--flag value` pairs, and a note that there are more."""
    shown = " ".join(flags[:MAX_LISTED_DIFFERENCES])
    return f"{shown} and the other options listed" if len(flags) > MAX_LISTED_DIFFERENCES else shown


def _section(settings: dict[str, Any], key: str) -> dict[str, Any]:
    section = settings.get(key)
    return section if isinstance(section, dict) else {}


def _changed(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """The names whose value differs, or that only one side has."""
    return sorted(
        name
        for name in set(before) | set(now)
        if name not in before or name not in now or before[name] != now[name]
    )


def _value(values: dict[str, Any], name: str) -> str:
    return repr(values[name]) if name in values else "not set"


def _drawn(param: Any) -> str:
    """A stored search-space parameter in short: `int 1..4`, `one of [None, 40]`."""
    if not isinstance(param, dict):
        return "not searched" if param is None else repr(param)
    if param.get("type") == "categorical":
        return f"one of {param.get('choices')!r}"
    extras = [f"step {param['step']}"] if param.get("step") not in (None, 1) else []
    extras += ["log"] if param.get("log") else []
    shown = f"{param.get('type')} {param.get('low')}..{param.get('high')}"
    return f"{shown} ({', '.join(extras)})" if extras else shown


def remaining_trials(study: optuna.Study, budget: int | None) -> int | None:
    """How many more trials the study wants (None: no budget, only a timeout)."""
    if budget is None:
        return None
    return max(0, budget - len(_budget_trials(study)))


def over_budget(trial: optuna.Trial, budget: int | None) -> bool:
    """Whether a trial just started finds the budget spent by trials started before it.

    Workers check the budget before starting a trial, but two can pass that check at once for
    its last place; each then counts the trials started before its own (the storage numbers them
    in order), so exactly the later one is over. Queued trials already held their place."""
    if budget is None or trial.user_attrs.get(BASELINE):
        return False
    earlier = [t for t in _budget_trials(trial.study) if t._trial_id < trial._trial_id]
    return len(earlier) >= budget


def _budget_trials(study: optuna.Study) -> list[FrozenTrial]:
    trials = study.get_trials(deepcopy=False, states=BUDGET_STATES)
    return [trial for trial in trials if not trial.user_attrs.get(OVER_BUDGET)]


def count_states(study: optuna.Study) -> dict[str, int]:
    """Trials by state, leaving out those stopped as over the budget (they never ran)."""
    counts: dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False):
        if not trial.user_attrs.get(OVER_BUDGET):
            counts[trial.state.name.lower()] = counts.get(trial.state.name.lower(), 0) + 1
    return counts


def wait_until_finished(
    study: optuna.Study, budget: int | None, workers: int, wait_seconds: float
) -> None:
    """Block until no trial runs or waits and the budget is spent or every worker said done."""
    deadline = time.monotonic() + wait_seconds
    while True:
        active = study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING))
        done = sum(1 for key in study.user_attrs if key.startswith("worker_done_"))
        if not active and (remaining_trials(study, budget) == 0 or done >= workers):
            return
        if time.monotonic() > deadline:
            raise TrainingError(
                f"study {study.study_name!r} still has {len(active)} running trial(s) and "
                f"{done} of {workers} worker(s) done after {wait_seconds:.0f}s"
            )
        time.sleep(5)


ENQUEUED_WAIT_SECONDS = 120.0


def leave_enqueued_trials_to_worker_0(
    study: optuna.Study, storage: str, worker_index: int, timeout: float = ENQUEUED_WAIT_SECONDS
) -> None:
    """On SQLite, wait (at most `timeout`) until worker 0 has taken the queued defaults trial.

    Optuna takes a queued trial by reading it as WAITING, then marking it RUNNING. PostgreSQL
    locks the row in between; SQLite cannot, so two workers asking at the same moment both take
    it, both run it, and the second one's result is refused ("Cannot tell a COMPLETE trial"),
    which stops that worker. Measured: 27 of 30 simultaneous asks on SQLite took the same trial.
    """
    if worker_index == 0 or check_storage_url(storage).get_backend_name() != "sqlite":
        return
    deadline = time.monotonic() + timeout
    while study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        if time.monotonic() > deadline:
            log.warning("worker 0 has not taken the defaults trial in %.0fs; going on", timeout)
            return
        time.sleep(0.2)
