"""The shared study on a real SQLite storage: one creator sets it up, joiners must bring the same
settings, the budget counts what runs and what finished; and the exported config file."""

from __future__ import annotations

import multiprocessing
import os
import stat
import threading
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from tests.support import tracking_uri_restored
from training.config_files import make_config, read_config_file
from training.errors import ConfigError
from training.tuning.objective import MLFLOW_RUN, WORKER_PID
from training.tuning.report import (
    OUTPUT_OPTIONS,
    collect_result,
    format_summary,
    portable_tracking_uri,
    write_config,
)
from training.tuning.run import _fail_trials_of, _within_budget
from training.tuning.space import SearchSpace
from training.tuning.storage import open_storage, redact
from training.tuning.study import (
    READY,
    count_states,
    create_or_join,
    describe_differences,
    leave_enqueued_trials_to_worker_0,
    remaining_trials,
)
from training.tuning.study_setup import (
    TuneOptions,
    comparable_settings,
    connect_mlflow,
    output_options,
    study_settings,
)

SETTINGS = {"options": {"seed": 42}, "space": {"n_estimators": {"type": "int"}}, "folds": 3}


@pytest.fixture
def storage(tmp_path: Path) -> optuna.storages.RDBStorage:
    return open_storage(f"sqlite:///{tmp_path}/optuna.db", heartbeat_seconds=1)


def test_the_first_process_sets_the_study_up_and_the_next_joins(storage: Any) -> None:
    calls: list[str] = []
    first = create_or_join(storage, "s", SETTINGS, lambda study: calls.append(study.study_name))
    second = create_or_join(storage, "s", SETTINGS, lambda study: calls.append("again"))
    assert calls == ["s"]
    assert first._study_id == second._study_id
    assert second.user_attrs[READY] is True


def test_joining_with_other_settings_is_refused_with_what_differs(storage: Any) -> None:
    create_or_join(storage, "s", SETTINGS, lambda study: None)
    changed = SETTINGS | {"options": {"seed": 7}}
    with pytest.raises(ConfigError, match=r"other settings.*: --seed: 42 before, 7 now\.") as error:
        create_or_join(storage, "s", changed, lambda study: None)
    assert "To resume it, give --seed 42 as before; or pass a new --study-name" in str(error.value)


def test_resuming_with_a_searched_option_fixed_names_it_and_says_to_leave_it_out() -> None:
    space = {"min_samples_leaf": {"type": "int", "low": 1, "high": 4, "step": 1, "log": False}}
    stored = {"options": {"min_samples_leaf": 1, "seed": 42}, "space": space, "folds": 3}
    now = {"options": {"min_samples_leaf": 3, "seed": 42}, "space": {}, "folds": 3}
    differences, fixes = describe_differences(stored, now)
    assert differences == ["--min-samples-leaf: searched before (int 1..4), fixed at 3 now"]
    assert fixes == ["leave --min-samples-leaf out (the study searches it)"]


def test_each_differing_option_space_parameter_and_setting_is_named() -> None:
    stored = {
        "options": {"seed": 42, "test_size": 0.2, "data": "/p/a.csv"},
        "space": {"max_depth": {"type": "categorical", "choices": [None, 40]}},
        "folds": 3,
    }
    now = {
        "options": {"seed": 42, "test_size": 0.3, "data": "/p/b.csv"},
        "space": {
            "max_depth": {"type": "categorical", "choices": [None, 80]},
            "n_estimators": {"type": "int", "low": 100, "high": 500, "step": 50, "log": False},
        },
        "folds": 5,
    }
    differences, fixes = describe_differences(stored, now)
    assert differences == [
        "--data: '/p/a.csv' before, '/p/b.csv' now",
        "--test-size: 0.2 before, 0.3 now",
        "search-space parameter max_depth: one of [None, 40] before, one of [None, 80] now",
        "search-space parameter n_estimators: not searched before, int 100..500 (step 50) now",
        "--folds: 3 before, 5 now",
    ]
    assert fixes == [
        "give --data '/p/a.csv' --test-size 0.2 --folds 3 as before",
        "use the --search-space it began with",
    ]


def test_a_refusal_lists_a_few_differences_and_counts_the_rest(storage: Any) -> None:
    options = {f"option_{i}": i for i in range(7)}
    create_or_join(storage, "s", SETTINGS | {"options": options}, lambda study: None)
    changed = SETTINGS | {"options": dict.fromkeys(options, -1)}
    with pytest.raises(ConfigError) as error:
        create_or_join(storage, "s", changed, lambda study: None)
    message = str(error.value)
    assert "--option-3: 3 before, -1 now; and 3 more." in message and "--option-4:" not in message
    assert "give --option-0 0 --option-1 1 --option-2 2 --option-3 3 and the other" in message


def test_a_study_resumes_from_another_folder_with_its_files_named_otherwise(
    storage: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "cwd").mkdir()
    (tmp_path / "other").mkdir()
    options = TuneOptions(
        space=SearchSpace.model_validate({}), trials=2, timeout=None, workers=1,
        storage="sqlite://", study_name="s", folds=2, output=tmp_path / "best.yaml",
    )  # fmt: skip
    monkeypatch.chdir(tmp_path / "cwd")
    typed = make_config({"data": "../proj/c.tsv", "label_map": "../proj/m.yaml"})
    settings = study_settings(typed, options)
    assert settings["options"]["data"] == str(tmp_path / "proj" / "c.tsv")
    create_or_join(storage, "s", settings, lambda study: None, comparable=comparable_settings)
    # a study stored before paths were stored absolute: the paths as typed
    old = SETTINGS | {"options": {"data": "../proj/c.tsv", "label_map": "s3://b/m.yaml"}}
    create_or_join(storage, "old", old, lambda study: None)

    monkeypatch.chdir(tmp_path / "other")
    absolute = make_config({"data": f"{tmp_path}/cwd/../proj/c.tsv", "label_map": "../proj/m.yaml"})
    joined = create_or_join(
        storage,
        "s",
        study_settings(absolute, options),
        lambda s: None,
        comparable=comparable_settings,
    )
    assert joined.study_name == "s"
    now = old | {"options": {"data": str(tmp_path / "proj/c.tsv"), "label_map": "s3://b/m.yaml"}}
    create_or_join(storage, "old", now, lambda study: None, comparable=comparable_settings)
    other_file = make_config({"data": "../proj/d.tsv", "label_map": "../proj/m.yaml"})
    with pytest.raises(ConfigError, match=r"--data: .*c\.tsv. before, .*d\.tsv. now"):
        create_or_join(
            storage, "s", study_settings(other_file, options), lambda s: None,
            comparable=comparable_settings,
        )  # fmt: skip


def test_a_study_whose_creator_died_before_set_up_is_reported(storage: Any) -> None:
    optuna.create_study(storage=storage, study_name="half")
    with pytest.raises(Exception, match="never set up"):
        create_or_join(storage, "half", SETTINGS, lambda study: None, wait_seconds=0.1)


def test_the_budget_counts_queued_running_and_finished_trials_not_failed(storage: Any) -> None:
    study = create_or_join(storage, "s", SETTINGS, lambda study: None)
    assert remaining_trials(study, 5) == 5
    study.enqueue_trial({})
    running = study.ask()  # takes the queued one
    study.tell(study.ask(), 0.5)
    study.tell(study.ask(), state=optuna.trial.TrialState.FAIL)
    assert remaining_trials(study, 5) == 3
    study.tell(running, state=optuna.trial.TrialState.PRUNED)
    assert remaining_trials(study, 5) == 3
    assert remaining_trials(study, None) is None


def test_of_two_trials_started_at_once_for_the_last_place_only_the_first_runs(
    storage: Any,
) -> None:
    """Two workers can both see one place left and both start a trial (on PostgreSQL a study
    of 3 ran 4): the later one is stopped before it draws options, and counts nowhere."""
    study = create_or_join(storage, "s", SETTINGS, lambda study: None)
    study.tell(study.ask(), 0.5)
    first = study.ask()  # the other worker's trial, started a moment earlier
    ran = []

    def objective(trial: optuna.Trial) -> float:
        ran.append(trial.number)
        return 0.7

    study.optimize(_within_budget(objective, 2), n_trials=1)  # passed the check with `first`
    assert ran == []
    assert study.trials[2].state is TrialState.PRUNED and study.trials[2].params == {}
    study.tell(first, 0.6)
    assert remaining_trials(study, 2) == 0
    assert count_states(study) == {"complete": 2}
    # With a place left, a trial runs; the baseline trial, queued earlier, always does.
    study.optimize(_within_budget(objective, 3), n_trials=1)
    study.enqueue_trial({}, user_attrs={"baseline": True})
    study.optimize(_within_budget(objective, 3), n_trials=1)
    assert ran == [3, 4]


def test_on_sqlite_the_queued_defaults_trial_is_left_to_worker_0(storage: Any) -> None:
    study = create_or_join(storage, "s", SETTINGS, lambda study: None)
    url = storage.url
    study.enqueue_trial({}, user_attrs={"baseline": True})
    taker = threading.Timer(0.6, study.ask)  # worker 0 takes it a little later
    taker.start()
    started = time.monotonic()
    leave_enqueued_trials_to_worker_0(study, url, worker_index=1)
    waited = time.monotonic() - started
    taker.join()
    assert waited >= 0.5
    assert study.trials[0].state is TrialState.RUNNING and len(study.trials) == 1


def _ask_at(url: str, index: int, start: float, taken: Any) -> None:
    study = optuna.load_study(study_name="s", storage=url)
    while time.time() < start:  # both ask at the same moment
        pass
    leave_enqueued_trials_to_worker_0(study, url, index)
    taken.put(study.ask()._trial_id)


def test_two_workers_asking_at_once_never_take_the_same_trial(storage: Any) -> None:
    """Without the wait, 27 of 30 such pairs took the same queued trial on SQLite."""
    study = create_or_join(storage, "s", SETTINGS, lambda study: None)
    study.enqueue_trial({})
    context = multiprocessing.get_context("fork")
    taken = context.Queue()
    start = time.time() + 1  # after both processes have started
    workers = [context.Process(target=_ask_at, args=(storage.url, i, start, taken)) for i in (0, 1)]
    for worker in workers:
        worker.start()
    ids = sorted(taken.get(timeout=60) for _ in workers)
    for worker in workers:
        worker.join(timeout=60)
    assert ids[0] != ids[1]
    assert {t.state for t in study.trials} == {TrialState.RUNNING}


def test_worker_0_and_other_storages_never_wait(storage: Any) -> None:
    study = create_or_join(storage, "s", SETTINGS, lambda study: None)
    study.enqueue_trial({})
    for url, index in ((storage.url, 0), ("postgresql://u@h/db", 1)):
        started = time.monotonic()
        leave_enqueued_trials_to_worker_0(study, url, worker_index=index, timeout=5)
        assert time.monotonic() - started < 0.1


def test_a_worker_0_that_never_comes_delays_the_others_only_until_the_timeout(
    storage: Any, caplog: pytest.LogCaptureFixture
) -> None:
    study = create_or_join(storage, "s", SETTINGS, lambda study: None)
    study.enqueue_trial({})
    started = time.monotonic()
    leave_enqueued_trials_to_worker_0(study, storage.url, worker_index=2, timeout=0.3)
    assert 0.3 <= time.monotonic() - started < 2
    assert "has not taken the defaults trial" in caplog.text


def test_a_storage_url_that_is_no_database_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a database URL; use sqlite:///PATH"):
        open_storage(str(tmp_path / "optuna.log"))


def test_passwords_never_reach_messages() -> None:
    assert redact("postgresql://u:secret@db:5432/x") == "postgresql://u:***@db:5432/x"


def test_the_best_trial_becomes_a_config_product_train_reads(storage: Any, tmp_path: Path) -> None:
    study = create_or_join(storage, "s", SETTINGS, lambda study: None)
    study.set_user_attr(OUTPUT_OPTIONS, {"data": "c.jsonl", "text_columns": ["title"]})
    defaults = study.ask({"n_estimators": optuna.distributions.IntDistribution(10, 500)})
    defaults.set_user_attr("baseline", True)
    defaults.report(0.5, 0)
    study.tell(defaults, 0.5)
    better = study.ask()
    better.suggest_int("n_estimators", 10, 500)
    better.suggest_categorical("max_depth", [None, 40])
    better.report(0.6, 0)
    study.tell(better, 0.6)
    output = tmp_path / "out" / "best.yaml"
    result = collect_result(study, output)
    values = read_config_file(output)
    assert values == result.config
    # the catalog as the user named it, absolute: product-train reads a config file's relative
    # paths as relative to the file
    assert values["data"] == str(Path("c.jsonl").resolve()) and values["text_columns"] == ["title"]
    assert values["n_estimators"] == better.params["n_estimators"]
    assert make_config(values).max_depth == better.params["max_depth"]
    assert yaml.safe_load(output.read_text())  # comments are only a header
    summary = format_summary(result)
    assert "defaults:        0.5000 (trial 0)" in summary
    assert "best:            0.6000 (trial 1, +0.1000)" in summary
    assert [p.name for p in output.parent.iterdir()] == ["best.yaml"]  # no scratch left


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640)])
def test_the_best_config_is_written_as_any_file_the_user_creates(
    tmp_path: Path, umask: int, mode: int
) -> None:
    """It was 0600 (mkstemp's), unreadable for a teammate or another container user."""
    before = os.umask(umask)
    try:
        write_config({"n_estimators": 5}, tmp_path / "best.yaml", "header")
    finally:
        os.umask(before)
    assert stat.S_IMODE((tmp_path / "best.yaml").stat().st_mode) == mode
    assert [p.name for p in tmp_path.iterdir()] == ["best.yaml"]  # no scratch left


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("sqlite:////data/mlflow.db", "sqlite:////data/mlflow.db"),
        ("sqlite:///mlflow.db", f"sqlite:///{Path('mlflow.db').resolve()}"),
        ("sqlite:///store/m.db?timeout=20", f"sqlite:///{Path('store/m.db').resolve()}?timeout=20"),
        ("http://mlflow:5000", "http://mlflow:5000"),
        ("https://alice:secret@mlflow.example", "https://alice@mlflow.example"),
        ("postgresql://u:pw@db:5432/mlflow", "postgresql://u@db:5432/mlflow"),
    ],
)
def test_the_tracking_uri_given_is_kept_so_that_it_works_from_any_folder_without_a_password(
    given: str, kept: str
) -> None:
    assert portable_tracking_uri(given) == kept
    base = make_config({"tracking_uri": given, "run_name": "r", "force_promote": True})
    assert output_options(base) == {"tracking_uri": kept}


def test_exporting_a_study_without_a_completed_trial_says_so(storage: Any, tmp_path: Path) -> None:
    study = create_or_join(storage, "s", SETTINGS, lambda study: None)
    study.tell(study.ask(), state=optuna.trial.TrialState.FAIL)
    with pytest.raises(Exception, match=r"no completed trial yet \(1 fail\)"):
        collect_result(study, tmp_path / "best.yaml")
    assert not (tmp_path / "best.yaml").exists()


def test_postgresql_urls_use_the_driver_the_images_ship() -> None:
    from training.tuning.storage import check_storage_url

    assert check_storage_url("postgresql://u@db:5432/x").drivername == "postgresql+psycopg2"
    assert check_storage_url("sqlite:///o.db").drivername == "sqlite"


def test_trials_left_running_by_dead_workers_are_failed_and_their_runs_killed(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path}/optuna.db"
    base = make_config({"tracking_uri": f"sqlite:///{tmp_path}/mlflow.db", "seed": 42})
    options = TuneOptions(
        space=SearchSpace.model_validate({}), trials=3, timeout=None, workers=2,
        storage=url, study_name="s", folds=2, output=tmp_path / "best.yaml",
    )  # fmt: skip
    with tracking_uri_restored():
        client, experiment_id = connect_mlflow(base)
        study = create_or_join(open_storage(url), "s", SETTINGS, lambda study: None)
        trials = {pid: study.ask() for pid in (111, 222)}  # 111 died; 222 still runs
        for pid, trial in trials.items():
            trial.set_user_attr(WORKER_PID, pid)
            trial.set_user_attr(MLFLOW_RUN, client.create_run(experiment_id).info.run_id)
        study.tell(study.ask(), 0.5)

        left = _fail_trials_of(base, options, 111)

        states = {
            t.user_attrs[WORKER_PID]: t.state for t in left.trials if WORKER_PID in t.user_attrs
        }
        assert states == {111: TrialState.FAIL, 222: TrialState.RUNNING}
        run = client.get_run(trials[111].user_attrs[MLFLOW_RUN])
        assert run.info.status == "KILLED"
        assert client.get_run(trials[222].user_attrs[MLFLOW_RUN]).info.status == "RUNNING"
        assert remaining_trials(left, options.trials) == 1  # the failed trial's place is free
