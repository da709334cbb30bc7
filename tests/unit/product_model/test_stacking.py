"""Linear class scores: out of fold on training rows, robust to tiny and two-class catalogs."""

from __future__ import annotations

import pickle

import numpy as np
from scipy import sparse
from sklearn.datasets import make_classification
from sklearn.feature_extraction.text import TfidfVectorizer

from product_model.stacking import FLOOR, LinearScores
from tests.support import sample_records


def data(n_classes: int = 4, rows: int = 400) -> tuple[sparse.csr_matrix, np.ndarray]:
    X, y = make_classification(rows, 30, n_informative=10, n_classes=n_classes, random_state=0)
    return sparse.csr_matrix(np.abs(X), dtype=np.float32), np.array(list("abcdefgh"))[y]


def test_appends_one_non_negative_score_per_class() -> None:
    X, y = data()
    scores = LinearScores(random_state=0)
    out = scores.fit_transform(X, y)
    assert out.shape == (400, 30 + 4)
    assert (out[:, 30:].toarray() >= 0).all()
    assert np.array_equal(out[:, :30].toarray(), X.toarray())
    served = scores.transform(X[:5])
    assert served.shape == (5, 34)


def test_training_rows_get_out_of_fold_scores() -> None:
    """In-sample scores would be over-confident; the forest must learn from honest ones."""
    X, y = data()
    scores = LinearScores(random_state=0)
    out_of_fold = scores.fit_transform(X, y)[:, 30:].toarray()
    in_sample = scores.transform(X)[:, 30:].toarray()
    assert not np.allclose(out_of_fold, in_sample)
    classes = scores.classes_
    right_oof = (classes[out_of_fold.argmax(axis=1)] == y).mean()
    right_in = (classes[in_sample.argmax(axis=1)] == y).mean()
    assert right_oof < right_in


def test_same_seed_same_scores() -> None:
    # Sparse, wider than tall, labels at random: liblinear stops before an exact optimum, so the
    # order it visits rows in (its shuffle) shows in the scores.
    X = sparse.random(300, 2000, density=0.01, format="csr", dtype=np.float32, random_state=0)
    y = np.random.RandomState(0).randint(0, 5, 300)
    np.random.seed(1)  # whatever else drew from NumPy's global generator in between
    first = LinearScores(random_state=3).fit_transform(X, y)
    np.random.seed(2)
    second = LinearScores(random_state=3).fit_transform(X, y)
    assert (first != second).nnz == 0


def test_a_class_rarer_than_the_folds_and_two_classes() -> None:
    X, y = data(n_classes=2, rows=60)
    y = y.copy()
    y[:2] = "z"  # a class of 2 rows, fewer than 3 folds
    out = LinearScores(random_state=0).fit_transform(X, y)
    assert out.shape == (60, 33)
    X2, y2 = data(n_classes=2, rows=60)
    scores = LinearScores(random_state=0)
    two = scores.fit_transform(X2, y2)
    assert two.shape == (60, 32)
    assert np.allclose(scores.transform(X2)[:, 30].toarray(), 0.0)  # first class keeps FLOOR
    assert FLOOR < 0


def test_saved_without_the_derived_weights_and_scores_the_same_after_loading() -> None:
    X, y = data()
    scores = LinearScores(random_state=0).fit(X, y)
    before = scores.transform(X[:7]).toarray()
    expected = np.clip(X[:7] @ scores.coef_.T + scores.intercept_, FLOOR, None) - FLOOR
    assert np.allclose(before[:, 30:], expected, atol=1e-6)
    assert "weights_" in scores.__dict__  # made by the first transform
    loaded = pickle.loads(pickle.dumps(scores))
    assert "weights_" not in loaded.__dict__
    assert np.array_equal(loaded.transform(X[:7]).toarray(), before)


def catalog_text(rows: int) -> tuple[sparse.csr_matrix, np.ndarray]:
    """TF-IDF of the bundled sample's first titles and descriptions, and their main_cat."""
    records = sample_records(limit=rows)
    text = [f"{r.get('title', '')} {' '.join(r.get('description') or [])}" for r in records]
    X = TfidfVectorizer(sublinear_tf=True, dtype=np.float32).fit_transform(text)
    return X, np.array([r["main_cat"] for r in records])


def test_fits_side_by_side_give_the_same_scores_as_one_at_a_time() -> None:
    """On real catalog text, where liblinear needs many passes: fits that ran in threads drew
    their row order from one shared generator, and the same seed gave other scores."""
    X, y = catalog_text(3000)
    serial = LinearScores(random_state=1, n_jobs=1).fit(X, y)
    for _ in range(2):
        side_by_side = LinearScores(random_state=1, n_jobs=2).fit(X, y)
        assert np.array_equal(side_by_side.coef_, serial.coef_)
