"""Reading a prediction log: malformed lines skipped and named, gzip, and --window."""

from __future__ import annotations

import gzip
import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from training.drift_log import log_profile
from training.drift_log_lines import MAX_BAD_LINE_SHARE, Window, read_predictions
from training.errors import DataError

GOOD = 20


def entries(count: int, at: float = 1.0) -> list[dict[str, Any]]:
    """Lines as `serving.prediction_log` writes them, logged at `at`."""
    return [
        {"ts": at, "request_id": "r", "model": "m", "version": "1", "label": "AB"[i % 2],
         "confidence": 0.9, "top_k": [["AB"[i % 2], 0.9], ["C", 0.1]]}
        for i in range(count)
    ]  # fmt: skip


def write_log(path: Path, lines: list[dict[str, Any]], tail: str = "") -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines) + tail)
    return path


def skipped(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]


def test_a_last_line_cut_mid_write_is_skipped_with_one_warning(tmp_path: Path, caplog) -> None:
    """The whole log was refused: 'line 1 column 121' for line 21, exit 3."""
    whole = json.dumps(entries(1)[0])
    log = write_log(tmp_path / "pred.log", entries(GOOD), tail=whole[:60])
    assert len(read_predictions(log)) == GOOD
    [warning] = skipped(caplog)
    assert warning.startswith(f"{log}: skipped 1 of {GOOD + 1} lines (not predictions); ")
    assert f"the first, line {GOOD + 1}: cut short, the file ends mid-line (not JSON: " in warning
    assert "at column 61" in warning


def test_a_cut_last_line_does_not_count_towards_the_refused_share(tmp_path: Path) -> None:
    """A small log being written is read, however few its whole lines."""
    log = write_log(tmp_path / "pred.log", entries(3), tail='{"ts": 1.0, "mod')
    assert len(read_predictions(log)) == 3


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("{}", 'no "label" field'),
        ('{"label": "A"}', 'no "confidence" field'),
        ('{"label": null, "confidence": "high", "top_k": "x"}',
         '"top_k" is a string ("x"), not a list of [label, probability] pairs'),
        ('{"label": null, "confidence": 0.5}', '"label" is null, not a non-empty string'),
        ('{"label": "A", "confidence": "high"}', '"confidence" is a string ("high"), not a number'),
        ('{"label": "A", "confidence": true}', '"confidence" is a boolean (true), not a number'),
        ('{"label": "A", "confidence": 1.5}', '"confidence" is 1.5, not a probability from 0 to 1'),
        ('{"label": "A", "confidence": NaN}', '"confidence" is nan, not a probability from 0 to 1'),
        ('{"top_k": [["A", "x"]]}', "\"top_k\"'s first probability is a string (\"x\")"),
        ('{"top_k": [[1, 0.5]]}', '"top_k" is a list, not a list of [label, probability] pairs'),
        ('{"label": "A", "confidence": 0.5, "product": [1]}', '"product" is a list, not a JSON'),
        ('{"model": 7, "label": "A", "confidence": 0.5}', '"model" is a number (7), not a string'),
        ("[1, 2]", "not a JSON object but a list"),
        ("not json at all", "not JSON: Expecting value at column 1"),
    ],
)  # fmt: skip
def test_a_malformed_line_is_skipped_naming_its_number_and_field(
    tmp_path: Path, caplog, line: str, reason: str
) -> None:
    """Each was an exception's repr (KeyError('label'), IndexError(...)) and exit 3."""
    log = tmp_path / "pred.log"
    log.write_text(write_log(log, entries(GOOD)).read_text() + line + "\n")
    assert len(read_predictions(log)) == GOOD
    [warning] = skipped(caplog)
    assert f"the first, line {GOOD + 1}: {reason}" in warning


def test_line_numbers_count_blank_lines(tmp_path: Path, caplog) -> None:
    good = "".join(json.dumps(e) + "\n" for e in entries(GOOD))
    log = tmp_path / "pred.log"
    log.write_text("\n\n" + good + "{}\n")
    read_predictions(log)
    assert f"line {GOOD + 3}: " in skipped(caplog)[0]


def test_a_log_of_mostly_malformed_lines_is_refused_naming_the_first(tmp_path: Path) -> None:
    bad = int(GOOD * MAX_BAD_LINE_SHARE) + 2
    log = tmp_path / "pred.log"
    log.write_text(write_log(log, entries(GOOD)).read_text() + '{"label": "A"}\n' * bad)
    with pytest.raises(DataError) as refused:
        read_predictions(log)
    message = str(refused.value)
    assert message.startswith(f'{log}, line {GOOD + 1}: no "confidence" field ')
    assert f"({bad} of {GOOD + bad} lines are not predictions)" in message
    assert message.endswith("as the servers write with PREDICTION_LOG: check --prediction-log")
    assert refused.value.exit_code == 3


def test_a_gzip_compressed_log_is_read_as_the_plain_one(tmp_path: Path) -> None:
    """A rotated log (`pred.log.1.gz`) was exit 1, UnicodeDecodeError."""
    plain = write_log(tmp_path / "pred.log", entries(GOOD))
    packed = tmp_path / "pred.log.1.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert log_profile(packed, [], []) == log_profile(plain, [], [])


def test_a_damaged_gzip_log_is_a_data_error(tmp_path: Path) -> None:
    packed = tmp_path / "pred.log.gz"
    packed.write_bytes(gzip.compress(b'{"label": "A", "confidence": 0.5}\n' * 500)[:60])
    with pytest.raises(DataError, match=r"pred.log.gz: cannot read the prediction log \("):
        read_predictions(packed)


def test_the_window_keeps_the_lines_logged_within_it(tmp_path: Path, caplog) -> None:
    """--window was accepted and ignored: the whole log's history was judged."""
    now = time.time()
    log = write_log(tmp_path / "pred.log", entries(5, now - 7200) + entries(3, now - 60))
    caplog.set_level(logging.INFO)
    assert len(read_predictions(log, Window("1h", 3600))) == 3
    assert f"{log}: 5 lines older than --window 1h left out" in caplog.text
    assert len(read_predictions(log)) == 8


def test_a_window_with_no_line_in_it_says_when_the_newest_was_logged(tmp_path: Path) -> None:
    log = write_log(tmp_path / "pred.log", entries(5, 1_700_000_000.0))
    with pytest.raises(DataError) as refused:
        read_predictions(log, Window("30m", 1800))
    assert str(refused.value) == (
        f"{log}: no line of this prediction log is within --window 30m (the newest was logged "
        "at 2023-11-14 22:13:20 UTC); widen --window, or leave it out to read the whole log"
    )


def test_a_window_needs_the_lines_time(tmp_path: Path) -> None:
    log = tmp_path / "pred.log"
    log.write_text('{"label": "A", "confidence": 0.5}\n' * 3)
    with pytest.raises(DataError, match=r"line 1: no time \(ts, seconds since the epoch\), which"):
        read_predictions(log, Window("1h", 3600))
