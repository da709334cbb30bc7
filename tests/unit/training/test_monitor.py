"""The retraining decision and the drift report's arithmetic."""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from product_model.profile import CONFIDENCE_EDGES, OOV_EDGES, build_profile
from tests.support import Registry, refused_port, sqlite_store, tracking_uri_restored, train_tiny
from training.drift_log import log_profile
from training.drift_log_lines import Window
from training.drift_report import Comparison, compare, shares_from_buckets
from training.errors import DataError
from training.monitor import check_own_labels, live_drift, main, no_traffic
from training.retrain_decision import Champion, decide, load_champion
from training.tracking import retry_settings

REFERENCE = build_profile(
    [{"title": "a"}] * 4,
    ["A", "A", "B", "C"],
    [0.9, 0.8, 0.7, 0.6],
    [0.0, 0.1, 0.2, 0.0],
    ["title"],
    ["title"],
)
CHAMPION = Champion("3", "run", REFERENCE, "abc123")


def test_no_champion_means_retrain() -> None:
    assert decide(None, "x", None).retrain


def test_the_champions_own_catalog_is_never_retrained_even_when_drifting() -> None:
    decision = decide(CHAMPION, "abc123", Comparison({"label": 0.9}, 5000))
    assert not decision.retrain and "add recent products" in decision.reason


@pytest.mark.parametrize(
    ("scores", "products", "retrain"),
    [
        ({"label": 0.05, "confidence": 0.02, "oov": 0.03}, 5000, False),  # ok
        ({"label": 0.05, "confidence": 0.12}, 5000, True),  # warning
        ({"label": 0.5}, 5000, True),  # critical
        ({"label": 0.9}, 100, True),  # too few products: no verdict, the catalog decides
    ],
)
def test_a_changed_catalog_is_retrained_unless_traffic_still_matches(
    scores: dict[str, float], products: int, retrain: bool
) -> None:
    assert decide(CHAMPION, "new", Comparison(scores, products)).retrain is retrain


def test_levels() -> None:
    assert Comparison({"label": 0.19, "oov": 0.09}, 600).level() == "ok"
    assert Comparison({"label": 0.2}, 600).level() == "warning"
    assert Comparison({"oov": 0.25}, 600).level() == "critical"
    assert Comparison({"oov": 0.25}, 499).level() == "unknown"


def test_shares_from_prometheus_buckets_merge_finer_bounds() -> None:
    cumulative = {
        "0.1": 1,
        "0.2": 1,
        "0.3": 1,
        "0.4": 1,
        "0.5": 2,
        "0.6": 2,
        "0.7": 2,
        "0.8": 2,
        "0.9": 2,
        "0.95": 3,
        "0.99": 3,
        "1.0": 4,
        "+Inf": 4,
    }
    shares = shares_from_buckets(cumulative, CONFIDENCE_EDGES)["shares"]
    assert shares == [0.25, 0, 0, 0, 0.25, 0, 0, 0, 0, 0.5]


def test_identical_traffic_compares_to_zero() -> None:
    assert compare(REFERENCE, REFERENCE).scores == {"label": 0.0, "confidence": 0.0, "oov": 0.0}


def test_prediction_log_profile(tmp_path: Path) -> None:
    log = tmp_path / "predictions.jsonl"
    entries = [
        {"label": "A", "confidence": 0.95, "product": {"title": "x"}},
        {"label": "B", "confidence": 0.55, "product": {}},
    ]
    log.write_text("".join(json.dumps(e) + "\n" for e in entries))
    profile = log_profile(log, ["title", "brand"], ["title"])
    assert profile["labels"] == {"A": 0.5, "B": 0.5}
    assert profile["fill_rate"] == {"title": 0.5, "brand": 0.0}
    assert len(OOV_EDGES) and profile["oov"] is None


def test_a_broken_prediction_log_is_a_data_error(tmp_path: Path) -> None:
    log = tmp_path / "predictions.jsonl"
    log.write_text('{"label": "A"}\n')
    with pytest.raises(DataError, match="label and confidence"):
        log_profile(log, [], [])


def test_should_retrain_without_the_catalog_exits_3(tmp_path: Path, capsys) -> None:
    (tmp_path / "mlflow.db").touch()  # a store, so that only the catalog is missing
    store = f"sqlite:///{tmp_path}/mlflow.db"
    with pytest.raises(SystemExit) as stop:
        main(["should-retrain", "--tracking-uri", store, "--data", str(tmp_path / "missing.gz")])
    assert stop.value.code == 3
    assert "no such catalog file" in capsys.readouterr().err


def test_should_retrain_always(tmp_path: Path, caplog) -> None:
    data = tmp_path / "catalog.jsonl"
    data.write_text("{}\n")
    caplog.set_level("INFO")
    with pytest.raises(SystemExit) as stop:
        main(["should-retrain", "--data", str(data), "--always"])
    assert stop.value.code == 0
    assert "decision: retrain: --always given" in caplog.text


def test_an_empty_store_is_no_report_and_a_first_training(
    tmp_path: Path, capsys, caplog, monkeypatch
) -> None:
    """`report` has nothing to compare with; `should-retrain` says retrain, saying why."""
    monkeypatch.chdir(tmp_path)
    store = f"sqlite:///{tmp_path}/mlflow.db"
    (tmp_path / "mlflow.db").touch()  # an empty file: MLflow sets its tables up in it
    log = tmp_path / "predictions.jsonl"
    log.write_text('{"label": "A", "confidence": 0.9}\n')
    with tracking_uri_restored(), pytest.raises(SystemExit) as stop:
        main(["report", "--tracking-uri", store, "--prediction-log", str(log)])
    assert stop.value.code == 3
    err = capsys.readouterr().err
    assert "product-classifier: no registered model of that name in the store" in err
    assert "(it has none)" in err
    caplog.set_level("INFO")
    with tracking_uri_restored(), pytest.raises(SystemExit) as stop:
        main(["should-retrain", "--tracking-uri", store, "--data", str(log)])
    assert stop.value.code == 0
    assert (
        "decision: retrain: no model is registered in the store yet (first training of "
        "product-classifier)"
    ) in caplog.text


# -- the CLI on a real champion (a tiny model trained into a SQLite store) ---------------------


@pytest.fixture(scope="module")
def tiny_champion(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    root = tmp_path_factory.mktemp("monitor-mlflow")
    with tracking_uri_restored():
        return train_tiny(sqlite_store(root), "monitor-tiny", root)


@pytest.fixture(autouse=True)
def no_mlflow_retry_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """`main` sets MLflow's retry variables with setdefault and filters urllib3's retry lines:
    start without them, and leave nothing behind for the tests that follow."""
    for name in [*retry_settings(1), "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"]:
        monkeypatch.setenv(name, "")  # records the value to restore
        monkeypatch.delenv(name)
    pool = logging.getLogger("urllib3.connectionpool")
    filters = list(pool.filters)
    yield
    pool.filters[:] = filters


def write_prediction_log(
    path: Path, labels: list[str], rows: int, model: tuple[str, str] = ("m", "1")
) -> Path:
    """A prediction log as `serving.prediction_log` writes it (no product fields) for `model`."""
    entries = [
        {"ts": 1.0, "request_id": "r", "model": model[0], "version": model[1],
         "label": labels[i % len(labels)], "confidence": 0.3 + 0.6 * (i % 10) / 10, "top_k": []}
        for i in range(rows)
    ]  # fmt: skip
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    return path


def own(registry: Registry) -> tuple[str, str]:
    """What the prediction log names for the servers of `registry`'s champion."""
    return registry.model_name, registry.version


def champion_labels(registry: Registry) -> list[str]:
    """The labels of the champion's reference profile."""
    with tracking_uri_restored():
        champion = load_champion(registry.tracking_uri, registry.model_name)
    assert champion is not None and champion.profile is not None
    return sorted(champion.profile["labels"])


def monitor(registry: Registry, *args: str) -> int:
    with tracking_uri_restored(), pytest.raises(SystemExit) as stop:
        main([args[0], "--tracking-uri", registry.tracking_uri, "--model-name",
              registry.model_name, *args[1:]])  # fmt: skip
    return int(stop.value.code or 0)


def test_report_from_a_prediction_log_writes_json_and_picture(
    tiny_champion: Registry, tmp_path: Path, capsys
) -> None:
    """A prediction log has no out-of-vocabulary shares: the picture says so, it does not crash."""
    labels = champion_labels(tiny_champion)
    log = write_prediction_log(tmp_path / "predictions.jsonl", labels, 600, own(tiny_champion))
    out = tmp_path / "report"
    assert monitor(tiny_champion, "report", "--prediction-log", str(log), "--out", str(out)) == 0
    printed = capsys.readouterr()
    assert "Traceback" not in printed.err
    assert "oov: not scored" in printed.out
    report = json.loads((out / "drift_report.json").read_text())
    assert report["live"]["rows"] == 600 and report["live"]["oov"] is None
    assert set(report["scores"]) == {"label", "confidence"}
    assert (out / "drift_report.png").stat().st_size > 10_000
    assert sorted(p.name for p in out.iterdir()) == ["drift_report.json", "drift_report.png"]


def test_a_log_being_written_is_reported_on_its_lines_within_the_window(
    tiny_champion: Registry, tmp_path: Path, capsys, caplog
) -> None:
    """A last line cut mid-write made the whole log exit 3 ("line 1 column 121"), and --window
    was ignored: yesterday's lines counted."""
    labels = champion_labels(tiny_champion)
    log = write_prediction_log(tmp_path / "pred.log", labels, 600, own(tiny_champion))
    old = log.read_text()  # logged at ts 1.0
    recent = old.replace('"ts": 1.0', f'"ts": {time.time() - 60}')
    crashed = old.splitlines()[5][:40]  # a server killed mid-line, then restarted
    log.write_text("".join(old.splitlines(True)[:5]) + crashed + "\n" + recent + crashed)
    caplog.set_level("INFO")
    out = tmp_path / "report"
    code = monitor(tiny_champion, "report", "--prediction-log", str(log), "--window", "1h",
                   "--out", str(out))  # fmt: skip
    assert code == 0, capsys.readouterr().err
    report = json.loads((out / "drift_report.json").read_text())
    assert report["live"]["rows"] == 600
    skipped = f"{log}: skipped 2 of 607 lines (not predictions); the first, line 6: not JSON"
    assert skipped in caplog.text
    assert f"{log}: 5 lines older than --window 1h left out" in caplog.text


@pytest.mark.parametrize("command", ["report", "should-retrain"])
def test_an_empty_prediction_log_is_one_line_and_exit_3(
    tiny_champion: Registry, tmp_path: Path, capsys, caplog, command: str
) -> None:
    """No live predictions: nothing to compare, so neither a report nor a retraining decision."""
    empty = tmp_path / "empty.log"
    empty.write_text("\n")
    out = tmp_path / "report"
    extra = ["--out", str(out)] if command == "report" else ["--data", str(empty)]
    caplog.set_level("INFO")
    assert monitor(tiny_champion, command, "--prediction-log", str(empty), *extra) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{empty}: no predictions in this prediction log" in err[0]
    assert "drift over" not in caplog.text and "decision:" not in caplog.text
    assert not out.exists()


def test_a_failed_report_leaves_no_report_folder(
    tiny_champion: Registry, tmp_path: Path, capsys, monkeypatch
) -> None:
    def broken_plot(*args: object) -> None:
        raise RuntimeError("the plot broke")

    monkeypatch.setattr("training.profile.plot_profiles", broken_plot)
    labels = champion_labels(tiny_champion)
    log = write_prediction_log(tmp_path / "predictions.jsonl", labels, 50, own(tiny_champion))
    out = tmp_path / "new" / "report"
    assert monitor(tiny_champion, "report", "--prediction-log", str(log), "--out", str(out)) == 1
    err = capsys.readouterr().err
    assert "RuntimeError: the plot broke" in err and "Traceback" not in err
    assert not (tmp_path / "new").exists()


def test_report_into_a_file_is_a_bad_option(tmp_path: Path, capsys) -> None:
    log = write_prediction_log(tmp_path / "predictions.jsonl", ["a"] * 7, 3)
    (tmp_path / "mlflow.db").touch()  # a store, so that only --out is wrong
    store = f"sqlite:///{tmp_path}/mlflow.db"
    with pytest.raises(SystemExit) as stop:
        main(["report", "--prediction-log", str(log), "--out", str(log), "--tracking-uri", store])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"--out {log}: {log} is a file" in err[0]


@pytest.mark.parametrize("window", ["abc", "6", "0h", "-1h", "6 hours"])
def test_window_must_be_a_promql_duration(tmp_path: Path, capsys, window: str) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["should-retrain", "--prometheus", "http://127.0.0.1:9", f"--window={window}"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "argument --window" in err[0] and "PromQL duration" in err[0]


@pytest.mark.usefixtures("no_mlflow_retry_env")
def test_an_unreachable_mlflow_is_given_up_within_the_timeout(tmp_path: Path, capsys) -> None:
    log = write_prediction_log(tmp_path / "predictions.jsonl", ["a"] * 7, 3)
    started = time.monotonic()
    with refused_port() as port, tracking_uri_restored(), pytest.raises(SystemExit) as stop:
        main(["report", "--prediction-log", str(log), "--out", str(tmp_path / "report"),
              "--tracking-uri", f"http://127.0.0.1:{port}",
              "--tracking-timeout-seconds", "3"])  # fmt: skip
    assert stop.value.code == 4
    assert time.monotonic() - started < 20
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "MLflow did not answer" in err[0]
    assert not (tmp_path / "report").exists()


def test_a_selector_prometheus_cannot_parse_exits_2_naming_it(
    tiny_champion: Registry, tmp_path: Path, capsys, monkeypatch
) -> None:
    from tests.unit.training.test_drift_report import PARSE_ERROR, answer_400

    body = {"status": "error", "errorType": "bad_data", "error": PARSE_ERROR}
    monkeypatch.setattr("urllib.request.urlopen", answer_400(json.dumps(body).encode()))
    data = tmp_path / "catalog.jsonl"
    data.write_text("{}\n")
    code = monitor(tiny_champion, "should-retrain", "--prometheus", "http://prometheus:9090",
                   "--selector", "job=product", "--data", str(data))  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--selector 'job=product'" in err[0] and PARSE_ERROR in err[0]


def test_the_champion_names_its_task(tiny_champion: Registry) -> None:
    """The live side reads other series for a multilabel or path model (see drift_report)."""
    with tracking_uri_restored():
        champion = load_champion(tiny_champion.tracking_uri, tiny_champion.model_name)
    assert champion is not None and champion.task == "single_label"


# -- only the judged model's traffic -----------------------------------------------------------


def test_a_log_of_another_model_only_is_exit_3_naming_it(
    tiny_champion: Registry, tmp_path: Path, capsys
) -> None:
    """Another model's log was scored against this champion (label 1.000, exit 0)."""
    labels = champion_labels(tiny_champion)
    capsys.readouterr()  # MLflow's download progress
    log = write_prediction_log(tmp_path / "other.jsonl", labels, 600, ("tags17", "1"))
    out = tmp_path / "report"
    assert monitor(tiny_champion, "report", "--prediction-log", str(log), "--out", str(out)) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "every line of this prediction log is another model's" in err[0]
    assert "tags17 v1: 600 lines" in err[0] and "--model-name" in err[0]
    assert not out.exists()


def test_other_models_lines_are_left_out_with_a_warning(
    tiny_champion: Registry, tmp_path: Path, caplog
) -> None:
    labels = champion_labels(tiny_champion)
    log = write_prediction_log(tmp_path / "mine.jsonl", labels, 600, own(tiny_champion))
    other = write_prediction_log(tmp_path / "other.jsonl", ["role::program"], 300, ("tags17", "1"))
    log.write_text(log.read_text() + other.read_text())
    caplog.set_level("INFO")
    out = tmp_path / "report"
    assert monitor(tiny_champion, "report", "--prediction-log", str(log), "--out", str(out)) == 0
    assert "300 lines of other models left out (tags17 v1: 300 lines)" in caplog.text
    report = json.loads((out / "drift_report.json").read_text())
    assert report["live"]["rows"] == 600 and "role::program" not in report["live"]["labels"]


def test_labels_the_champion_does_not_know_are_refused_naming_the_selector() -> None:
    """A selector matching several models' servers summed their labels (62 for a 3-class model)."""
    args = argparse.Namespace(prediction_log=None, selector="", model_name="path17")
    live = {"labels": {"A": 0.5, "role::program": 0.3, "games": 0.2}}
    with pytest.raises(DataError) as raised:
        check_own_labels(args, CHAMPION, live)
    message = str(raised.value)
    assert message.startswith("2 live labels (role::program, games; 50% of the live products)")
    assert "champion v3's 3 classes" in message and "narrow --selector ('')" in message
    check_own_labels(args, CHAMPION, {"labels": {"A": 0.96, "new": 0.04}})  # a rare new class


def prometheus_args(command: str = "report") -> argparse.Namespace:
    return argparse.Namespace(
        command=command, prediction_log=None, prometheus="http://prometheus:9090",
        selector='job="shop"', window=Window("6h", 21600), model_name="shop",
    )  # fmt: skip


def test_a_champion_swapped_in_without_traffic_yet_is_said_plainly(monkeypatch, caplog) -> None:
    """Right after a swap the servers served the champion, but only the previous version
    answered: no live products of the champion, so no verdict (the other version's answers are
    not the champion's), and no advice to widen --window."""
    served = ["shop v2", "shop v3"]
    monkeypatch.setattr("training.drift_report.Prometheus.models_served", lambda self: served)
    message = no_traffic(prometheus_args(), CHAMPION)
    assert message.startswith(
        'champion shop v3 has answered no predictions yet on the servers {job="shop"}'
    )
    assert "the answers of shop v2 in that time are not the champion's" in message
    assert "--window" not in message
    empty = {"rows": 0, "labels": {}}
    monkeypatch.setattr("training.drift_report.Prometheus.live_profile", lambda self, task: empty)
    with caplog.at_level(logging.INFO, logger="product-monitor"):
        assert live_drift(prometheus_args("should-retrain"), CHAMPION) is None
    assert "champion shop v3 has answered no predictions yet" in caplog.text
    assert decide(CHAMPION, "changed", None).reason.endswith(
        "no drift verdict (too little live traffic)"
    )


def test_no_traffic_of_a_model_the_servers_did_not_serve_names_the_options(monkeypatch) -> None:
    monkeypatch.setattr("training.drift_report.Prometheus.models_served", lambda self: ["a v1"])
    message = no_traffic(prometheus_args(), CHAMPION)
    assert message.startswith("Prometheus at http://prometheus:9090 has no predictions of shop v3")
    assert "(those servers served a v1); widen --window or check --selector" in message


# -- the store and the model name --------------------------------------------------------------


def test_a_store_file_that_is_not_sqlite_is_a_bad_option(tmp_path: Path, capsys) -> None:
    (tmp_path / "text.db").write_text("hello\n")
    log = write_prediction_log(tmp_path / "predictions.jsonl", ["a"], 3)
    with pytest.raises(SystemExit) as stop:
        main(["report", "--prediction-log", str(log), "--out", str(tmp_path / "report"),
              "--tracking-uri", f"sqlite:///{tmp_path}/text.db"])  # fmt: skip
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{tmp_path}/text.db is not an SQLite database" in err[0]
    assert "not an MLflow store" in err[0] and "DatabaseError" not in err[0]


def test_should_retrain_refuses_a_model_name_the_store_lacks_beside_others(
    tiny_champion: Registry, tmp_path: Path, capsys, caplog
) -> None:
    """A typo said "retrain: no champion yet" (exit 0): the CronJob then trained and registered
    a model no server serves. A store holding no model at all is a first training (above)."""
    data = tmp_path / "catalog.jsonl"
    data.write_text("{}\n")
    caplog.set_level("INFO")
    with tracking_uri_restored(), pytest.raises(SystemExit) as stop:
        main(["should-retrain", "--tracking-uri", tiny_champion.tracking_uri,
              "--model-name", "monitor-tyny", "--data", str(data)])  # fmt: skip
    assert stop.value.code == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "monitor-tyny: no registered model of that name" in err[0]
    assert f"(it has {tiny_champion.model_name})" in err[0]
    assert err[0].endswith("pass --always (ALWAYS_TRAIN=true in the retraining CronJob) or run "
                           "product-train once")  # fmt: skip
    assert "decision:" not in caplog.text


def test_a_model_name_the_store_lacks_is_named_with_those_it_has(
    tiny_champion: Registry, tmp_path: Path, capsys
) -> None:
    log = write_prediction_log(tmp_path / "predictions.jsonl", ["a"], 3)
    with tracking_uri_restored(), pytest.raises(SystemExit) as stop:
        main(["report", "--tracking-uri", tiny_champion.tracking_uri, "--model-name", "nope",
              "--prediction-log", str(log), "--out", str(tmp_path / "report")])  # fmt: skip
    assert stop.value.code == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope: no registered model of that name in the store" in err[0]
    assert f"it has {tiny_champion.model_name}" in err[0] and "older version" not in err[0]


def test_an_in_memory_store_says_it_is_empty(tmp_path: Path, capsys, monkeypatch) -> None:
    # the module's file stores set NullPool for this process; an in-memory database cannot use it
    monkeypatch.delenv("MLFLOW_SQLALCHEMYSTORE_POOLCLASS", raising=False)
    log = write_prediction_log(tmp_path / "predictions.jsonl", ["a"], 3)
    with tracking_uri_restored(), pytest.raises(SystemExit) as stop:
        main(["report", "--tracking-uri", "sqlite://", "--prediction-log", str(log),
              "--out", str(tmp_path / "report")])  # fmt: skip
    assert stop.value.code == 3
    assert "it has none (an in-memory database starts empty)" in capsys.readouterr().err


def test_the_prediction_log_option_has_help(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--prediction-log FILE the JSON lines the servers append with PREDICTION_LOG" in out


def test_a_registered_model_without_a_champion_says_so(tmp_path: Path, capsys, caplog) -> None:
    """`report` has no reference; `should-retrain` retrains (no version passed the gate yet)."""
    caplog.set_level("INFO")
    from mlflow.tracking import MlflowClient

    store = f"sqlite:///{tmp_path}/mlflow.db"
    with tracking_uri_restored():
        MlflowClient(store).create_registered_model("unpromoted")
    capsys.readouterr()
    log = write_prediction_log(tmp_path / "predictions.jsonl", ["a"], 3)
    with tracking_uri_restored(), pytest.raises(SystemExit) as stop:
        main(["report", "--tracking-uri", store, "--model-name", "unpromoted",
              "--prediction-log", str(log), "--out", str(tmp_path / "report")])  # fmt: skip
    assert stop.value.code == 3
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "unpromoted: no version has the champion alias" in err and "older version" not in err
    with tracking_uri_restored(), pytest.raises(SystemExit) as stop:
        main(["should-retrain", "--tracking-uri", store, "--model-name", "unpromoted",
              "--data", str(log)])  # fmt: skip
    assert stop.value.code == 0
    assert "no champion yet: no version of unpromoted has the champion alias" in caplog.text


def test_should_retrain_given_a_folder_says_it_is_one(tmp_path: Path, capsys) -> None:
    (tmp_path / "mlflow.db").touch()
    (tmp_path / "parts").mkdir()
    store = f"sqlite:///{tmp_path}/mlflow.db"
    with pytest.raises(SystemExit) as stop:
        main(["should-retrain", "--tracking-uri", store, "--data", str(tmp_path / "parts")])
    assert stop.value.code == 3
    assert "parts is a folder, not a catalog file (--data)" in capsys.readouterr().err
