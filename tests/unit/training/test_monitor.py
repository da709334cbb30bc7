"""The retraining decision and the drift report's arithmetic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from product_model.profile import CONFIDENCE_EDGES, OOV_EDGES, build_profile
from tests.support import tracking_uri_restored
from training.drift_report import Comparison, compare, log_profile, shares_from_buckets
from training.errors import DataError
from training.monitor import Champion, decide, main

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
    with pytest.raises(SystemExit) as stop:
        main(["should-retrain", "--data", str(tmp_path / "missing.jsonl.gz")])
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


def test_report_without_a_champion_exits_3(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = f"sqlite:///{tmp_path}/mlflow.db"
    log = tmp_path / "predictions.jsonl"
    log.write_text('{"label": "A", "confidence": 0.9}\n')
    with tracking_uri_restored(), pytest.raises(SystemExit) as stop:
        main(["report", "--tracking-uri", store, "--prediction-log", str(log)])
    assert stop.value.code == 3
    assert "product-classifier: no champion with a reference profile" in capsys.readouterr().err
