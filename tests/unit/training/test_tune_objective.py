"""A trial's MLflow run ends as its Optuna trial does, wherever a SIGTERM lands (the signal
handler raises `KeyboardInterrupt` in the main thread; here the client raises it right after one
of its real calls to a SQLite store has been made)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from tests.support import tracking_uri_restored
from training.config import TrainConfig
from training.errors import ConfigError
from training.tuning.objective import Folds, Objective, ParentRun, make_folds
from training.tuning.run import MAX_REJECTED_IN_A_ROW, run_trials
from training.tuning.space import space_from_dict
from training.tuning.study_setup import TuneOptions, connect_mlflow, join_study

pytestmark = pytest.mark.usefixtures("signals_since_now")


class InterruptedClient(MlflowClient):
    """A real client; an interrupt arrives just after the call named by `after` returned."""

    def __init__(self, tracking_uri: str, after: str) -> None:
        super().__init__(tracking_uri=tracking_uri)
        self.after = after

    def _interrupt(self, call: str) -> None:
        if self.after == call:
            self.after = ""
            raise KeyboardInterrupt("signal 15")

    def log_metric(self, run_id: str, key: str, *args: Any, **kwargs: Any) -> Any:
        result = super().log_metric(run_id, key, *args, **kwargs)
        self._interrupt(f"log_metric:{key}")
        return result

    def set_tag(self, run_id: str, key: str, value: Any, *args: Any, **kwargs: Any) -> Any:
        result = super().set_tag(run_id, key, value, *args, **kwargs)
        self._interrupt("set_tag")
        return result

    def set_terminated(self, run_id: str, status: str | None = None, *args: Any) -> None:
        super().set_terminated(run_id, status, *args)
        self._interrupt(f"set_terminated:{status}")


@pytest.fixture(scope="module")
def config_and_folds(small_catalog: Path) -> tuple[TrainConfig, Folds]:
    config = TrainConfig(data=str(small_catalog), n_estimators=8, smote_strategy="min:20", n_jobs=1)
    return config, make_folds(config, 2)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One SQLite store for the module (each test its own experiment)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/mlflow.db"


@pytest.mark.parametrize(
    "after",
    [
        "log_metric:cv_f1_macro_fold",  # while fitting folds
        "log_metric:trial_seconds",  # the last thing logged inside the run
        "set_tag",  # while the run is being ended
        "set_terminated:FINISHED",  # the run has just been ended as finished
    ],
)
def test_an_interrupt_anywhere_in_a_trial_fails_it_and_kills_its_run(
    store: str, config_and_folds: tuple[TrainConfig, Folds], after: str
) -> None:
    config, folds = config_and_folds
    client = InterruptedClient(store, after)
    experiment = client.create_experiment(f"tune-{after}")
    parent = client.create_run(experiment).info.run_id
    space = space_from_dict({"n_estimators": {"type": "int", "low": 4, "high": 8}})
    objective = Objective(config, space, folds, ParentRun(client, experiment, parent, "s"), 0)
    study = optuna.create_study(direction="maximize")

    with pytest.raises(KeyboardInterrupt):
        study.optimize(objective, n_trials=1)

    assert client.after == "", "the interrupt was never raised"
    trial = study.trials[0]
    assert trial.state == TrialState.FAIL
    assert client.get_run(trial.user_attrs["mlflow_run_id"]).info.status == "KILLED"


def test_a_trial_that_ends_normally_finishes_its_run(
    store: str, config_and_folds: tuple[TrainConfig, Folds]
) -> None:
    config, folds = config_and_folds
    client = InterruptedClient(store, "")
    experiment = client.create_experiment("tune-normal")
    parent = client.create_run(experiment).info.run_id
    space = space_from_dict({"n_estimators": {"type": "int", "low": 4, "high": 8}})
    objective = Objective(config, space, folds, ParentRun(client, experiment, parent, "s"), 0)
    study = optuna.create_study(direction="maximize")

    study.optimize(objective, n_trials=1)

    run = client.get_run(study.trials[0].user_attrs["mlflow_run_id"])
    assert (run.info.status, run.data.tags["optuna.state"]) == ("FINISHED", "COMPLETE")


def run_study(
    store: str, data: tuple[TrainConfig, Folds], tmp_path: Path, space: dict[str, Any], trials: int
) -> tuple[optuna.Study, MlflowClient]:
    """`run_trials` of one worker on `space` as stored (a study begun before the space checks
    refused such a space), in a SQLite study and the module's MLflow store."""
    config, folds = data
    base = TrainConfig(
        data=config.data, n_estimators=8, smote_strategy="min:20", n_jobs=1,
        tracking_uri=store, experiment_name=f"tune-{tmp_path.name}",
    )  # fmt: skip
    options = TuneOptions(
        space=space_from_dict(space), trials=trials, timeout=None, workers=1,
        storage=f"sqlite:///{tmp_path}/optuna.db", study_name="drawn", folds=2,
        output=tmp_path / "best.yaml",
    )  # fmt: skip
    with tracking_uri_restored():
        client, experiment_id = connect_mlflow(base)
        study = join_study(base, options, client, experiment_id)
        try:
            run_trials(base, options, study, client, folds)
        finally:
            study = optuna.load_study(study_name="drawn", storage=options.storage)
    return study, client


def test_a_trial_that_draws_invalid_options_fails_alone_and_the_study_goes_on(
    store: str, config_and_folds: tuple[TrainConfig, Folds], tmp_path: Path
) -> None:
    space = {"min_samples_leaf": {"type": "categorical", "choices": [1, 2.5, 2]}}
    study, client = run_study(store, config_and_folds, tmp_path, space, trials=3)

    complete = study.get_trials(states=(TrialState.COMPLETE,))
    failed = study.get_trials(states=(TrialState.FAIL,))
    assert len(complete) == 3  # the budget is met by the valid draws
    assert failed and {t.params["min_samples_leaf"] for t in failed} == {2.5}
    run = client.get_run(failed[0].user_attrs["mlflow_run_id"])
    assert (run.info.status, run.data.tags["optuna.state"]) == ("FAILED", "FAIL")
    assert run.data.params["min_samples_leaf"] == "2.5"  # what was drawn, to see why


def test_a_space_whose_every_draw_is_invalid_stops_with_exit_2_not_a_traceback(
    store: str, config_and_folds: tuple[TrainConfig, Folds], tmp_path: Path
) -> None:
    space = {"min_samples_leaf": {"type": "float", "low": 1.1, "high": 1.9}}
    with pytest.raises(ConfigError) as raised:
        run_study(store, config_and_folds, tmp_path, space, trials=3)
    message = str(raised.value)
    assert raised.value.exit_code == 2 and "\n" not in message
    assert (
        f"the last {MAX_REJECTED_IN_A_ROW} trials all drew options product-train rejects" in message
    )
    assert "min_samples_leaf (--min-samples-leaf): Input should be a valid integer" in message
    assert "fix the --search-space" in message
