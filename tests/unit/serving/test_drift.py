"""Drift signals of the served model: in-distribution traffic stays close to the reference the
model carries, a shifted stream does not, and the window slides and resets as it must."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from serving.answers import ranked_labels
from serving.drift import DriftWatch
from serving.drift_families import reference_bin
from serving.model import ServedModel
from tests.support import REPO, sample_records

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def feed(watch: DriftWatch, model: ServedModel, products: list[dict], at_once: int = 50) -> None:
    fields = set(model.contract.names)
    for start in range(0, len(products), at_once):
        rows = [
            {k: v for k, v in p.items() if k in fields and v is not None}
            for p in products[start : start + at_once]
        ]
        proba = model.predict_proba(rows)
        order = np.argsort(-proba, axis=1)[:, :3]
        watch.observe(model, rows, ranked_labels(proba, order, model.classes))


def samples(families, name: str) -> dict[tuple, float]:
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in families
        for s in family.samples
        if s.name == name
    }


@pytest.fixture(scope="module")
def unseen() -> list[dict]:
    """Products of the bundled sample beyond the 1,500 the tiny model was trained on."""
    return sample_records()[1500:3500]


def test_the_model_carries_a_reference_profile(served_model: ServedModel) -> None:
    profile = served_model.predictor.profile
    assert sum(profile["labels"].values()) == pytest.approx(1.0)
    assert set(profile["fill_rate"]) == set(served_model.contract.names)
    assert len(profile["oov"]["shares"]) == len(profile["oov"]["edges"]) - 1


def test_in_distribution_traffic_scores_lower_than_a_shifted_stream(
    served_model: ServedModel, unseen: list[dict]
) -> None:
    usual, shifted = DriftWatch(size=1000), DriftWatch(size=1000)
    feed(usual, served_model, unseen[:1000])
    top3 = [
        label
        for label, _ in sorted(
            served_model.predictor.profile["labels"].items(), key=lambda kv: -kv[1]
        )[:3]
    ]
    narrow = [p for p in unseen if p["main_cat"] in top3][:300]
    stripped = [{"title": p["title"][:12]} for p in narrow]
    feed(shifted, served_model, stripped)
    usual.update()
    shifted.update()
    calm, moved = usual.scores(), shifted.scores()
    assert set(calm) == {"label", "confidence", "oov"}
    for kind in calm:
        assert calm[kind] < moved[kind], (kind, calm, moved)
    assert moved["label"] > 0.3 and moved["oov"] > 0.25


def test_metrics_name_the_version_and_count_missing_fields(
    served_model: ServedModel, unseen: list[dict]
) -> None:
    watch = DriftWatch(size=100)
    feed(watch, served_model, [{"title": p["title"]} for p in unseen[:40]])
    families = list(watch.collect())
    version = served_model.ref.version
    assert samples(families, "prediction_drift_window_size") == {(("version", version),): 40}
    kinds = {dict(k)["kind"] for k in samples(families, "prediction_drift_score")}
    assert kinds == {"label", "confidence", "oov"}
    missing = samples(families, "prediction_input_missing_total")
    assert missing[(("field", "title"), ("version", version))] == 0
    assert missing[(("field", "description"), ("version", version))] == 40
    assert samples(families, "prediction_oov_share_count") == {(("version", version),): 40}


def test_the_window_keeps_the_newest_products_and_drops_old_ones(
    served_model: ServedModel, unseen: list[dict]
) -> None:
    watch = DriftWatch(size=30, max_age_seconds=3600)
    feed(watch, served_model, unseen[:100], at_once=10)
    watch.update()
    assert len(watch._window) == 30
    assert watch.unprofiled == 70
    watch.configure(30, 1e-9)
    feed(watch, served_model, unseen[:10])
    watch.update()
    assert len(watch._window) == 0 and watch.scores() == {}


def test_a_new_version_starts_an_empty_window(
    served_model: ServedModel, unseen: list[dict]
) -> None:
    watch = DriftWatch(size=100)
    feed(watch, served_model, unseen[:20])
    watch.update()
    newer = versioned(served_model, "999")
    feed(watch, newer, unseen[:5])
    families = list(watch.collect())
    assert samples(families, "prediction_drift_window_size") == {(("version", "999"),): 5}


def versioned(model: ServedModel, version: str) -> ServedModel:
    return dataclasses.replace(model, ref=dataclasses.replace(model.ref, version=version))


def test_a_swap_starts_the_new_versions_series_and_drops_the_previous_ones(
    served_model: ServedModel, unseen: list[dict]
) -> None:
    """After a hot swap the monitor judges the new champion: every series it reads names the
    version that answered, the previous version's leave /metrics, and its products still queued
    at the swap are counted for neither."""
    watch, old, new = (
        DriftWatch(size=100),
        versioned(served_model, "2"),
        versioned(served_model, "6"),
    )
    watch.expect(old)
    feed(watch, old, unseen[:30])
    list(watch.collect())
    feed(watch, old, unseen[30:40])  # answered by v2, queued when v6 comes in
    watch.expect(new)
    families = list(watch.collect())
    for name in (
        "prediction_top_class_total", "prediction_top_probability_count",
        "prediction_oov_share_count", "prediction_input_missing_total",
        "prediction_drift_window_size",
    ):  # fmt: skip
        assert {dict(k)["version"] for k in samples(families, name)} == {"6"}, name
    assert sum(samples(families, "prediction_top_class_total").values()) == 0
    assert samples(families, "prediction_drift_score") == {}  # no v6 traffic: no v6 score
    feed(watch, new, unseen[40:45])
    feed(watch, old, unseen[45:50])  # a late batch of the retired version
    families = list(watch.collect())
    assert sum(samples(families, "prediction_top_class_total").values()) == 5
    assert samples(families, "prediction_drift_window_size") == {(("version", "6"),): 5}


def test_a_rollback_serves_the_earlier_version_again(
    served_model: ServedModel, unseen: list[dict]
) -> None:
    watch, old, new = (
        DriftWatch(size=100),
        versioned(served_model, "2"),
        versioned(served_model, "6"),
    )
    for model in (old, new, old):
        watch.expect(model)
    feed(watch, old, unseen[:7])
    families = list(watch.collect())
    assert samples(families, "prediction_drift_window_size") == {(("version", "2"),): 7}


def test_metrics_endpoint_shows_drift_after_predictions(make_client) -> None:
    client = make_client()
    products = [{"title": r["title"]} for r in sample_records()[2000:2030]]
    assert client.post("/v1/predict", json={"products": products}).status_code == 200
    text = client.get("/metrics").text
    assert 'prediction_drift_score{kind="label"' in text
    assert "prediction_drift_window_size{" in text and "prediction_oov_share_bucket{" in text


def test_the_servers_distances_agree_with_the_models_profile_code() -> None:
    from product_model import profile
    from serving import distances, drift_families

    rng = np.random.default_rng(3)
    values = rng.beta(2, 5, 500).tolist()
    edges = profile.CONFIDENCE_EDGES
    assert distances.binned_shares(values, edges) == profile.binned_shares(values, edges)
    assert distances.OOV_EDGES == profile.OOV_EDGES
    assert drift_families.CONFIDENCE_EDGES == profile.CONFIDENCE_EDGES
    a, b = rng.dirichlet(np.ones(10)).tolist(), rng.dirichlet(np.ones(10)).tolist()
    assert distances.population_stability_index(a, b) == pytest.approx(
        profile.population_stability_index(a, b)
    )
    labels = [str(x) for x in rng.integers(0, 8, 300)]
    p, q = distances.label_shares(labels), profile.label_shares(labels[:100])
    assert p == pytest.approx(profile.label_shares(labels))
    assert distances.jensen_shannon_distance(p, q) == pytest.approx(
        profile.jensen_shannon_distance(p, q)
    )


def test_serving_never_imports_the_models_own_code() -> None:
    """The serving image does not install product_model: each model brings its own."""
    for path in (REPO / "serving").glob("*.py"):
        text = path.read_text("utf-8")
        assert "from product_model" not in text and "import product_model" not in text, path


def test_a_loaded_model_shows_every_field_missing_zero_times(served_model: ServedModel) -> None:
    watch = DriftWatch()
    watch.expect(served_model)
    missing = samples(list(watch.collect()), "prediction_input_missing_total")
    version = served_model.ref.version
    assert missing == {(("field", n), ("version", version)): 0 for n in served_model.contract.names}


def test_each_product_is_counted_once_by_its_most_probable_class(
    served_model: ServedModel, unseen: list[dict]
) -> None:
    """What `product-monitor` compares with the reference: one class per product, its
    probability binned as the reference bins (a value on an edge falls in the bin above)."""
    watch = DriftWatch(size=100)
    watch.expect(served_model)
    feed(watch, served_model, unseen[:40])
    families = list(watch.collect())
    top = samples(families, "prediction_top_class_total")
    assert {dict(k)["label"] for k in top} == {str(c) for c in served_model.classes}
    assert sum(top.values()) == 40
    version = ("version", served_model.ref.version)
    assert samples(families, "prediction_top_probability_count") == {(version,): 40}
    window = list(watch._window)
    expected = profile_shares([s.confidence for s in window])
    buckets = samples(families, "prediction_top_probability_bucket")
    bounds = ("0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "1.0")
    cumulative = [buckets[(("le", le), version)] for le in bounds]
    assert np.diff([0.0, *cumulative]) / 40 == pytest.approx(expected)


def test_reference_bins_put_an_edge_in_the_bin_above() -> None:
    edges = (0.0, 0.5, 1.0)
    assert [reference_bin(v, edges) for v in (-1, 0.0, 0.49, 0.5, 1.0, 2)] == [0, 0, 0, 1, 1, 1]


def profile_shares(values: list[float]) -> list[float]:
    from product_model import profile

    return profile.binned_shares(values, profile.CONFIDENCE_EDGES)
