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
    assert missing[(("field", "title"),)] == 0
    assert missing[(("field", "description"),)] == 40
    assert samples(families, "prediction_oov_share_count") == {(): 40}


def test_the_window_keeps_the_newest_products_and_drops_old_ones(
    served_model: ServedModel, unseen: list[dict]
) -> None:
    watch = DriftWatch(size=30, max_age_seconds=3600)
    feed(watch, served_model, unseen[:100], at_once=10)
    watch.update()
    assert len(watch._window) == 30
    assert watch.totals.unprofiled == 70
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
    newer = dataclasses.replace(
        served_model, ref=dataclasses.replace(served_model.ref, version="999")
    )
    feed(watch, newer, unseen[:5])
    families = list(watch.collect())
    assert samples(families, "prediction_drift_window_size") == {(("version", "999"),): 5}


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
    assert missing == {(("field", name),): 0 for name in served_model.contract.names}


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
    assert samples(families, "prediction_top_probability_count") == {(): 40}
    window = list(watch._window)
    expected = profile_shares([s.confidence for s in window])
    buckets = samples(families, "prediction_top_probability_bucket")
    cumulative = [buckets[(("le", le),)] for le in ("0.1", "0.2", "0.3", "0.4", "0.5", "0.6",
                                                       "0.7", "0.8", "0.9", "1.0")]  # fmt: skip
    assert np.diff([0.0, *cumulative]) / 40 == pytest.approx(expected)


def test_reference_bins_put_an_edge_in_the_bin_above() -> None:
    edges = (0.0, 0.5, 1.0)
    assert [reference_bin(v, edges) for v in (-1, 0.0, 0.49, 0.5, 1.0, 2)] == [0, 0, 0, 1, 1, 1]


def profile_shares(values: list[float]) -> list[float]:
    from product_model import profile

    return profile.binned_shares(values, profile.CONFIDENCE_EDGES)
