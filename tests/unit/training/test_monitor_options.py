"""`product-monitor`'s options: --prometheus must be a URL, --window a PromQL range that also
selects a prediction log's lines."""

from __future__ import annotations

import pytest

from training.drift_log_lines import Window
from training.monitor import main
from training.monitor_options import DEFAULT_WINDOW, parse_arguments


@pytest.mark.parametrize(
    ("url", "example"),
    [
        ("localhost:9090", "http://localhost:9090"),
        ("prometheus", "http://prometheus"),
        ("ftp://prometheus:9090", "http://prometheus:9090"),
        ("http://", "http://prometheus:9090"),
        ("http://prometheus:port", "http://prometheus:9090"),
    ],
)
def test_a_prometheus_url_without_http_is_a_bad_option(capsys, url: str, example: str) -> None:
    """`localhost:9090` was read as a URL of the scheme `localhost`: exit 4, "did not answer"."""
    with pytest.raises(SystemExit) as stop:
        main(["report", "--prometheus", url])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        f"product-monitor report: error: argument --prometheus: {url!r} is not an http:// or "
        f"https:// URL of Prometheus; give e.g. {example}"
    )


@pytest.mark.parametrize(
    "url", ["http://prometheus:9090", "https://p.example/prom/", "http://[::1]:9"]
)
def test_http_urls_are_taken_as_given(url: str) -> None:
    assert parse_arguments(["report", "--prometheus", url]).prometheus == url


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30m", 1800), ("1h30m", 5400), ("1d", 86400), ("2w", 1_209_600), ("1y", 31_536_000),
     ("1500ms", 1.5)],
)  # fmt: skip
def test_a_window_is_its_promql_text_and_its_seconds(text: str, seconds: float) -> None:
    args = parse_arguments(["report", "--prediction-log", "x.log", "--window", text])
    assert args.window == Window(text, seconds) and str(args.window) == text


def test_prometheus_looks_back_6h_unless_told_and_a_log_is_read_whole() -> None:
    assert parse_arguments(["report", "--prometheus", "http://p:9090"]).window == DEFAULT_WINDOW
    assert parse_arguments(["report", "--prometheus", "http://p"]).window == Window("6h", 21600)
    assert parse_arguments(["report", "--prediction-log", "x.log"]).window is None
    assert parse_arguments(["should-retrain"]).window is None


def test_the_window_help_says_what_it_does_to_a_prediction_log(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "(default: 6h with --prometheus; the whole log with --prediction-log" in out
