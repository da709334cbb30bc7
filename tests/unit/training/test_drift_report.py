"""The drift report's files: the picture copes with data a live source lacks, and the report is
written whole or not at all."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from product_model.profile import build_profile
from training.drift_report import log_profile, write_report_files
from training.errors import ConfigError, DataError

REFERENCE = build_profile(
    [{"title": "a", "brand": "b"}] * 4, ["A", "A", "B", "C"], [0.9, 0.8, 0.7, 0.6],
    [0.0, 0.1, 0.2, 0.0], ["title", "brand"], ["title"],
)  # fmt: skip


def prediction_log_profile(tmp_path: Path) -> dict[str, Any]:
    log = tmp_path / "predictions.jsonl"
    log.write_text('{"label": "A", "confidence": 0.9}\n{"label": "B", "confidence": 0.4}\n')
    return log_profile(log, ["title", "brand"], ["title"])


def test_the_picture_of_a_prediction_log_has_every_panel(tmp_path: Path) -> None:
    """A prediction log has no out-of-vocabulary shares and, without product fields, no fill
    rates: those panels say so instead of crashing."""
    from training.profile import plot_profiles

    live = prediction_log_profile(tmp_path)
    assert live["oov"] is None and live["fill_rate"] == {}
    picture = tmp_path / "drift.png"
    plot_profiles({"reference": REFERENCE, "live": live}, picture, "live vs. reference")
    assert picture.stat().st_size > 10_000


def test_the_report_is_written_whole(tmp_path: Path) -> None:
    out = tmp_path / "a" / "report"
    paths = write_report_files(out, {"level": "ok"}, {"reference": REFERENCE}, "t")
    assert [p.name for p in paths] == ["drift_report.json", "drift_report.png"]
    assert sorted(p.name for p in out.iterdir()) == ["drift_report.json", "drift_report.png"]
    assert json.loads(paths[0].read_text()) == {"level": "ok"}


def test_a_failed_report_keeps_the_previous_one(tmp_path: Path, monkeypatch) -> None:
    write_report_files(tmp_path, {"level": "ok"}, {"reference": REFERENCE}, "t")

    def broken_plot(*args: object) -> None:
        raise RuntimeError("no picture")

    monkeypatch.setattr("training.profile.plot_profiles", broken_plot)
    with pytest.raises(RuntimeError):
        write_report_files(tmp_path, {"level": "critical"}, {"reference": REFERENCE}, "t")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["drift_report.json", "drift_report.png"]
    assert json.loads((tmp_path / "drift_report.json").read_text()) == {"level": "ok"}


def test_the_report_folder_under_a_file_is_a_config_error(tmp_path: Path) -> None:
    afile = tmp_path / "notes.txt"
    afile.write_text("x")
    with pytest.raises(ConfigError, match=f"{afile} is a file"):
        write_report_files(afile / "report", {}, {"reference": REFERENCE}, "t")


def test_a_missing_prediction_log_names_the_option(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"cannot read the prediction log .*--prediction-log"):
        log_profile(tmp_path / "missing.log", [], [])
