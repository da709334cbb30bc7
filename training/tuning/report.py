"""The study's result: the best trial as a `product-train` config file, and the summary that sets
it against the defaults scored on the same folds."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import optuna
import yaml
from optuna.trial import FrozenTrial, TrialState

from training.config_files import file_paths, make_config
from training.errors import ConfigError, TrainingError
from training.tracking_uri import sqlite_file, without_password
from training.tuning.folds import metric_label
from training.tuning.objective import BASELINE
from training.tuning.study import count_states

# Set by the study's creator: the options the user gave, which the output file repeats.
OUTPUT_OPTIONS = "output_options"


@dataclass
class TuningResult:
    study_name: str
    best: FrozenTrial
    baseline: FrozenTrial | None
    states: dict[str, int]
    config: dict[str, Any]
    output: Path
    metric: str = "f1_macro"  # what the trials were scored by (the task's gate metric)


def baseline_trial(study: optuna.Study) -> FrozenTrial | None:
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if trial.user_attrs.get(BASELINE):
            return trial
    return None


def best_config(study: optuna.Study, best: FrozenTrial) -> dict[str, Any]:
    """The options the user fixed plus the best trial's; `product-train` validates it as is."""
    values = dict(study.user_attrs.get(OUTPUT_OPTIONS, {})) | dict(best.params)
    make_config(values, "best config")  # a ConfigError here would be a bug in the space checks
    # product-train reads relative paths in a config file as relative to the file's folder.
    return with_absolute_paths(values)


def with_absolute_paths(values: dict[str, Any]) -> dict[str, Any]:
    """`values` with the catalog and label-map paths absolute (relative ones are relative to the
    working directory; URIs stay as they are)."""
    return values | {name: str(Path(value).resolve()) for name, value in file_paths(values).items()}


def portable_tracking_uri(uri: str) -> str:
    """`uri` as `product-train` reads it from any folder: a relative SQLite file made absolute
    (relative to the working directory, as MLflow reads it), and without its password, which a
    config file must not hold (MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD give it to a
    tracking server, PGPASSWORD to a PostgreSQL store)."""
    store = sqlite_file(uri)
    if store is not None and not store.is_absolute():
        scheme, _, rest = uri.partition("://")
        query = rest.partition("?")[1:]
        return f"{scheme}:///{quote(str(store.resolve()))}{''.join(query)}"
    return without_password(uri)


def write_config(values: dict[str, Any], path: Path, header: str) -> None:
    """Write the YAML atomically (a reader sees the old file or the whole new one), with the
    permissions of any file the user creates (0644 under umask 022): a teammate or another
    container on a shared volume trains from it too."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(f"# {line}\n" for line in header.splitlines())
    text += yaml.safe_dump(values, sort_keys=False, allow_unicode=True)
    scratch = path.parent / f".{path.name}.{secrets.token_hex(6)}"
    # os.open applies the umask to 0o666, as open() does; mkstemp would make it 0600.
    handle = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        scratch.replace(path)
    except BaseException:
        scratch.unlink(missing_ok=True)
        raise


def check_output(path: Path) -> None:
    """Stop before the study begins when the best config could not be written to `path`: a
    folder, or a path under a file or under a folder this user cannot write to (a missing folder
    is created at the end)."""
    if path.is_dir():
        raise ConfigError(
            f"--output {path} is a folder; give a file name, such as {path / 'best.yaml'}"
        )
    folder = path.absolute().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise ConfigError(f"--output {path}: {folder} is a file, not a folder; give another path")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"--output {path}: cannot write in {folder}; give a path you can write")


def collect_result(study: optuna.Study, output: Path, metric: str = "f1_macro") -> TuningResult:
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        raise TrainingError(
            f"study {study.study_name!r} has no completed trial yet "
            f"({_states(count_states(study))}); run more trials (--trials, --timeout) "
            "before exporting"
        )
    best = max(complete, key=lambda trial: float(trial.value or 0.0))
    baseline = baseline_trial(study)
    config = best_config(study, best)
    header = (
        f"product-tune: best of study {study.study_name!r}, trial {best.number}, "
        f"mean {len(best.intermediate_values)}-fold {metric_label(metric)} {best.value:.4f}\n"
        "train with: product-train --config THIS_FILE"
    )
    write_config(config, output, header)
    states = count_states(study)
    return TuningResult(study.study_name, best, baseline, states, config, output, metric)


def _states(states: dict[str, int]) -> str:
    return ", ".join(f"{n} {state}" for state, n in sorted(states.items())) or "no trials"


def format_summary(result: TuningResult) -> str:
    best, baseline = result.best, result.baseline
    folds = len(best.intermediate_values)
    lines = [
        "tuning summary",
        f"  study:           {result.study_name}",
        f"  trials:          {_states(result.states)}",
        f"  score:           mean {folds}-fold {metric_label(result.metric)} on the training split",
    ]
    if baseline is None:
        lines.append("  defaults:        not scored (their trial did not complete)")
    else:
        lines.append(f"  defaults:        {baseline.value:.4f} (trial {baseline.number})")
    gain = ""
    if baseline is not None:
        gain = f", {float(best.value or 0) - float(baseline.value or 0):+.4f}"
    which = " = the defaults" if baseline and best.number == baseline.number else ""
    lines.append(f"  best:            {best.value:.4f} (trial {best.number}{which}{gain})")
    changed = {
        name: value
        for name, value in best.params.items()
        if baseline is None or baseline.params.get(name, "unset") != value
    }
    shown = ", ".join(f"{k}={v}" for k, v in changed.items()) or "(same as the defaults)"
    lines.append(f"  best options:    {shown}")
    lines.append(f"  config:          {result.output} (product-train --config {result.output})")
    return "\n".join(lines)
