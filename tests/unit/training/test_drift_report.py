"""The drift report's files: the picture copes with data a live source lacks, and the report is
written whole or not at all."""

from __future__ import annotations

import io
import json
import logging
import urllib.error
from email.message import Message
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from product_model.profile import build_profile
from product_model.tags import TagDecoder
from serving.answers import as_prediction
from serving.metrics import ServingMetrics
from serving.prediction_log import PredictionLog
from serving.service import PredictionService
from serving.validation import RequestContract
from training.drift_log import log_profile
from training.drift_report import Prometheus, compare
from training.errors import ConfigError, DataError, TrackingError

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


def test_a_missing_prediction_log_names_the_option(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"cannot read the prediction log .*--prediction-log"):
        log_profile(tmp_path / "missing.log", [], [])


# -- live label shares count what the reference counts, for every task ------------------------

PATH_NODES = (
    "Desktop", "Desktop > games", "Desktop > sound", "Development", "Development > perl",
    "Development > python", "System", "System > net",
)  # fmt: skip
TAGS = ("role::program", "use::editing", "interface::x11", "devel::lang:perl", "works-with::text")


def fake_probabilities(task: str, rows: int) -> tuple[tuple[str, ...], np.ndarray]:
    """Per-class probabilities shaped like each task's forest: one distribution of 300 trees'
    votes (single label: many on a bin's edge, 0.9 = 270/300), independent tags, or path nodes
    no more probable than their parent."""
    rng = np.random.default_rng(7)
    if task == "single_label":
        shares = rng.dirichlet(np.full(len(TAGS), 0.4), rows)
        return TAGS, rng.multinomial(300, shares).reshape(rows, len(TAGS)) / 300
    if task == "multilabel":
        return TAGS, rng.beta(0.6, 0.9, (rows, len(TAGS)))
    proba = rng.beta(0.5, 0.5, (rows, len(PATH_NODES)))
    for column, node in enumerate(PATH_NODES):
        if " > " in node:
            parent = PATH_NODES.index(node.rsplit(" > ", 1)[0])
            proba[:, column] *= proba[:, parent]
    return PATH_NODES, proba


def serve(
    task: str, rows: int, metrics: ServingMetrics | None = None, version: str = "1"
) -> tuple[dict[str, Any], ServingMetrics, list[dict[str, Any]]]:
    """Run the server's own ranking and metrics on a `task` model's probabilities, as `version`
    loaded into `metrics` (default: new ones); returns the model's reference profile (as training
    makes it: argmax class, max probability), the server's metrics and its answers."""
    classes, proba = fake_probabilities(task, rows)
    decoder = TagDecoder(task, classes, (0.5,) * len(classes)) if task != "single_label" else None
    products = [{"title": f"product {i}"} for i in range(rows)]
    labels = [classes[i] for i in np.argmax(proba, axis=1)]
    reference = build_profile(products, labels, proba.max(axis=1).tolist(), [0.0] * rows, [], [])
    model = SimpleNamespace(
        ref=SimpleNamespace(version=version),
        classes=np.asarray(classes),
        contract=RequestContract((), task),
        predictor=SimpleNamespace(profile=reference),
        path_separator=" > ",
        predict_proba=lambda products, overlap=None: proba,
        answers=lambda p: decoder.answers(p) if decoder else None,
    )
    metrics = metrics if metrics is not None else ServingMetrics()
    metrics.model_loaded(("m", version, "champion"), [str(c) for c in classes], 1.0, 0.0)
    metrics.drift.expect(model)
    job = SimpleNamespace(products=products, top_k=3)
    rank: Any = PredictionService._rank  # the server's own ranking, on a stand-in model
    ranked, extras = rank(SimpleNamespace(metrics=metrics), model, [job])
    answers = [as_prediction(r[:3]) | e for r, e in zip(ranked[0], extras[0], strict=True)]
    return reference, metrics, answers


class ScrapedPrometheus(Prometheus):
    """Prometheus over scrapes of a server that started at zero: increase() is the value (the
    samples of every scrape added; a series that left /metrics keeps its last value)."""

    def __init__(
        self, *scrapes: ServingMetrics | str, model: tuple[str, str] | None = None
    ) -> None:
        super().__init__("http://prometheus", 'job="x"', "1h", model)
        last: dict[tuple[str, tuple], Any] = {}
        for scrape in scrapes:
            text = scrape if isinstance(scrape, str) else scrape.render()[0].decode()
            for sample in (s for f in text_string_to_metric_families(text) for s in f.samples):
                last[(sample.name, tuple(sorted(sample.labels.items())))] = sample
        self.samples = list(last.values())

    def increase_by(self, series: str, by: str, version: str | None = None) -> dict[str, float]:
        """As Prometheus answers `increase_by`'s query: the judged version's series only."""
        version = self.model[1] if version is None and self.model else version
        totals: dict[str, float] = {}
        for sample in (s for s in self.samples if s.name == series):
            if version is None or sample.labels.get("version", "") == version:
                key = sample.labels.get(by, "")
                totals[key] = totals.get(key, 0.0) + sample.value
        return totals


@pytest.mark.parametrize("task", ["single_label", "multilabel", "path"])
def test_in_distribution_traffic_reads_as_no_drift_from_prometheus(task: str, monkeypatch) -> None:
    """A multilabel or path model's predictions_total counts every tag or node (shares summing
    to about 2 for paths), and a path's prediction_confidence its deepest level: the live side
    must count one most probable class per product, as the reference does. A single-label
    model's prediction_confidence puts a probability on a bin's edge in the bin below (as
    Prometheus' `le` does), where the reference puts it above: the confidence PSI of like traffic
    read 0.031 there, against 0.011 from the server itself."""
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    reference, metrics, _ = serve(task, 600)
    live = ScrapedPrometheus(metrics).live_profile(task)
    assert live["rows"] == 600 and sum(live["labels"].values()) == pytest.approx(1.0)
    drift = compare(live, reference)
    assert drift.scores["label"] == pytest.approx(0.0, abs=1e-6)
    assert drift.scores["confidence"] == pytest.approx(0.0, abs=1e-6)
    assert drift.level() == "ok"


@pytest.mark.parametrize("task", ["single_label", "multilabel", "path"])
def test_in_distribution_traffic_reads_as_no_drift_from_a_prediction_log(
    task: str, tmp_path: Path
) -> None:
    """A path model logs the whole path as `label` (`Desktop > sound`) and its deepest level's
    probability; the reference holds the most probable class (`Desktop`): read the top-k's first."""
    reference, _, answers = serve(task, 600)
    log = tmp_path / "predictions.jsonl"
    PredictionLog(str(log), False).write("r", ("m", "1"), [{}] * len(answers), answers)
    if task == "path":
        assert " > " in "".join(json.loads(line)["label"] for line in log.read_text().splitlines())
    drift = compare(log_profile(log, [], []), reference)
    assert drift.scores["label"] == pytest.approx(0.0, abs=1e-6)
    assert drift.scores["confidence"] == pytest.approx(0.0, abs=1e-6)


def test_after_a_swap_only_the_champions_own_answers_count(monkeypatch) -> None:
    """A server that answered 600 products with v2, then swapped to v6: v6 is judged on its own
    answers (none yet, then 40), never on v2's, whatever the task."""
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    for task in ("single_label", "multilabel"):
        _, metrics, _ = serve(task, 600, version="2")
        before = metrics.render()[0].decode()  # the scrape before the swap
        metrics.model_retired(("m", "2", "champion"))
        metrics.model_loaded(("m", "6", "champion"), [], 1.0, 0.0)
        assert (
            ScrapedPrometheus(before, metrics, model=("m", "2")).live_profile(task)["rows"] == 600
        )
        assert ScrapedPrometheus(before, metrics, model=("m", "6")).live_profile(task)["rows"] == 0
        reference, _, _ = serve(task, 40, metrics, version="6")
        live = ScrapedPrometheus(before, metrics, model=("m", "6")).live_profile(task)
        assert live["rows"] == 40
        assert compare(live, reference).scores["label"] == pytest.approx(0.0, abs=1e-6)


def test_servers_without_version_labels_are_named(monkeypatch) -> None:
    """Servers older than the version label: their answers cannot be told from a previous
    version's, so the monitor says so rather than reporting no traffic."""
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    _, metrics, _ = serve("single_label", 50)
    older = ScrapedPrometheus(metrics, model=("m", "1"))
    for sample in older.samples:
        sample.labels.pop("version", None)
    with pytest.raises(DataError, match=r"carry no version label .*--prediction-log"):
        older.live_profile("single_label")


def test_servers_without_version_labels_beside_newer_ones_are_left_out_with_a_warning(
    monkeypatch, caplog: pytest.LogCaptureFixture
) -> None:
    """During a rolling upgrade some servers carry the version label and some do not: the
    champion is judged on the former, and the latter's answers are said to be left out."""
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    _, newer, _ = serve("single_label", 600)
    _, older, _ = serve("single_label", 50)
    both = ScrapedPrometheus(newer, model=("m", "1"))
    unlabelled = ScrapedPrometheus(older).samples
    for sample in unlabelled:
        sample.labels.pop("version", None)
    both.samples += unlabelled
    with caplog.at_level(logging.WARNING, logger="training.drift_report"):
        assert both.live_profile("single_label")["rows"] == 600
    assert any("about 50 predictions" in r.getMessage() for r in caplog.records)


def test_servers_without_the_top_class_series_are_named_for_a_path_model(monkeypatch) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    _, metrics, _ = serve("path", 50)
    older = ScrapedPrometheus(metrics)
    older.samples = [s for s in older.samples if not s.name.startswith("prediction_top_")]
    with pytest.raises(DataError, match=r"export no prediction_top_probability.*--prediction-log"):
        older.live_profile("path")


def test_single_label_servers_without_the_top_class_series_are_read_with_a_warning(
    monkeypatch, caplog
) -> None:
    """Older servers export only prediction_confidence: still read, saying its edge binning
    may show drift that is not there."""
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    reference, metrics, _ = serve("single_label", 600)
    older = ScrapedPrometheus(metrics)
    older.samples = [s for s in older.samples if not s.name.startswith("prediction_top_")]
    with caplog.at_level(logging.WARNING, logger="training.drift_report"):
        live = older.live_profile("single_label")
    assert live["rows"] == 600
    assert compare(live, reference).scores["label"] == pytest.approx(0.0, abs=1e-6)
    assert any("bin's edge in the bin below" in r.getMessage() for r in caplog.records)


# -- a selector Prometheus cannot parse ----------------------------------------------------------

PARSE_ERROR = (
    'invalid parameter "query": 1:48: parse error: unexpected identifier "product" in label '
    "matching, expected string"
)


def answer_400(body: bytes) -> Any:
    def urlopen(address: str, timeout: float) -> Any:
        raise urllib.error.HTTPError(address, 400, "Bad Request", Message(), io.BytesIO(body))

    return urlopen


def test_a_selector_prometheus_cannot_parse_is_a_bad_option(monkeypatch) -> None:
    body = json.dumps({"status": "error", "errorType": "bad_data", "error": PARSE_ERROR})
    monkeypatch.setattr("urllib.request.urlopen", answer_400(body.encode()))
    with pytest.raises(ConfigError) as raised:
        Prometheus("http://prometheus:9090", "job=product", "6h").live_profile()
    message = str(raised.value)
    assert message.startswith("--selector 'job=product' is not valid PromQL label matchers")
    assert PARSE_ERROR in message and 'e.g. job="product-classifier"' in message


def test_an_error_page_that_is_not_prometheus_names_the_url(monkeypatch) -> None:
    monkeypatch.setattr("urllib.request.urlopen", answer_400(b"<html>bad request</html>"))
    with pytest.raises(TrackingError, match="with HTTP 400, not as Prometheus' query API"):
        Prometheus("http://shop:8080", 'job="x"', "6h").live_profile()


# -- only the judged model's servers -------------------------------------------------------------


class RecordingPrometheus(Prometheus):
    """Prometheus answering every query with nothing, keeping the queries asked."""

    def __init__(self, model: tuple[str, str] | None) -> None:
        super().__init__("http://prometheus", "", "1h", model)
        self.asked: list[str] = []

    def query(self, expr: str) -> list[dict[str, Any]]:
        self.asked.append(expr)
        return []


def test_every_query_keeps_the_judged_versions_series_on_the_servers_of_the_judged_model() -> None:
    """A selector matching several servers summed every model's labels (62 for a 3-class model),
    and a server's series before a swap counted as the new champion's: each series is matched on
    its version, and the servers are picked by their model_info (which names the model)."""
    prometheus = RecordingPrometheus(("path17", "1"))
    prometheus.live_profile("path")
    prometheus.server_scores()
    served = 'model_info{name="path17",version="1"}'
    window = f"and on (job, instance) (max_over_time({served}[1h]) > 0)"
    assert all(window in expr for expr in prometheus.asked[:-1]) and len(prometheus.asked) > 4
    older = [
        expr for expr in prometheus.asked if '{version=""}' in expr
    ]  # no traffic: old servers?
    assert len(older) == 1 and "prediction_confidence_count" in older[0]
    counted = [expr for expr in prometheus.asked[:-1] if expr not in older]
    assert all('{version="1"}[1h]' in expr for expr in counted)
    assert prometheus.asked[-1] == (
        'max by (kind) ((prediction_drift_score{version="1"}) '
        f"and on (job, instance) ({served} > 0))"
    )


def test_the_version_is_matched_beside_the_selector() -> None:
    prometheus = Prometheus("http://p", 'job="shop",namespace="prod"', "6h", ("m", "7"))
    assert prometheus.series("predictions_total") == (
        'predictions_total{job="shop",namespace="prod",version="7"}'
    )
    assert Prometheus("http://p", 'job="shop"', "6h").series("x") == 'x{job="shop"}'
    assert (
        Prometheus("http://p", 'job="a",', "6h", ("m", "7")).series("x") == 'x{job="a",version="7"}'
    )


def test_without_a_model_the_queries_are_the_selectors_alone() -> None:
    prometheus = RecordingPrometheus(None)
    prometheus.live_profile("single_label")
    assert not any("model_info" in expr for expr in prometheus.asked)


def test_a_model_name_is_quoted_as_promql_reads_it() -> None:
    prometheus = RecordingPrometheus(('shop "eu"\\2', "3"))
    assert 'model_info{name="shop \\"eu\\"\\\\2",version="3"}' in prometheus.of_model("x", None)


def test_the_models_the_selectors_servers_served_are_named(monkeypatch) -> None:
    prometheus = Prometheus("http://prometheus", 'job=~".+"', "6h", ("path17", "1"))
    found = [
        {"metric": {"name": "tags17", "version": "1"}},
        {"metric": {"name": "a", "version": "2"}},
    ]
    monkeypatch.setattr(prometheus, "query", lambda expr: found)
    assert prometheus.models_served() == ["a v2", "tags17 v1"]


def test_a_prediction_log_keeps_the_judged_models_lines(tmp_path: Path) -> None:
    log = tmp_path / "predictions.jsonl"
    lines = [
        {"model": "path17", "version": "1", "label": "A", "confidence": 0.9},
        {"model": "path17", "version": "3", "label": "B", "confidence": 0.9},
        {"model": "tags17", "version": "1", "label": "role::program", "confidence": 0.9},
        {"label": "A", "confidence": 0.5},  # names no model: cannot tell, kept
    ]
    log.write_text("".join(json.dumps(line) + "\n" for line in lines))
    profile = log_profile(log, [], [], ("path17", "1"))
    assert profile["rows"] == 2 and profile["labels"] == {"A": 1.0}
    only_others = log.with_name("others.jsonl")
    only_others.write_text(json.dumps(lines[2]) + "\n")
    with pytest.raises(DataError, match=r"another model's: tags17 v1: 1 line; champion v1 of x"):
        log_profile(only_others, [], [], ("x", "1"))
