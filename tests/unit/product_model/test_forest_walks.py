"""The two forest walks: the NumPy walk a server answers with while numba compiles gives the
compiled walk's probabilities bit for bit, and nothing is compiled until asked for."""

from __future__ import annotations

import pickle
import threading

import numpy as np
import pytest
from scipy import sparse
from sklearn.datasets import make_classification
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier

from product_model import forest, tree_walk
from product_model.forest import CompactForest


@pytest.fixture(scope="module")
def data() -> tuple[sparse.csr_matrix, np.ndarray]:
    X, y = make_classification(1500, 60, n_informative=20, n_classes=6, random_state=7)
    X = np.abs(X) * (np.random.default_rng(7).random(X.shape) > 0.5)
    return sparse.csr_matrix(X, dtype=np.float32), y


@pytest.fixture
def not_compiled(monkeypatch: pytest.MonkeyPatch) -> None:
    """As in a fresh process: numba's dispatcher not created, nothing compiled."""
    monkeypatch.setattr(tree_walk, "_compiled", None)


def single_output(X, y) -> CompactForest:
    """Weighted classes and leaves of 5 samples: most leaves hold fractions, whose sums depend
    on the order they are added in."""
    forest = RandomForestClassifier(
        40, min_samples_leaf=5, class_weight="balanced", random_state=0
    ).fit(X[:1000], y[:1000])
    return CompactForest.from_forest(forest)


def multi_output(X, y) -> CompactForest:
    tags = np.column_stack([y % 2, y < 3, (y * 7) % 5 == 1]).astype(int)
    forest = ExtraTreesClassifier(30, min_samples_leaf=3, random_state=0).fit(X[:1000], tags[:1000])
    return CompactForest.from_forest(forest, ["odd", "low", "other"])


def folded_columns(X, y) -> CompactForest:
    columns = np.arange(0, 60, 3)
    forest = RandomForestClassifier(25, min_samples_leaf=4, random_state=1)
    compact = CompactForest.from_forest(forest.fit(X[:1000][:, columns], y[:1000]))
    compact.select_columns(columns)
    return compact


def signed_values(X, y) -> CompactForest:
    """Negative values too: at nodes with a negative threshold a zero goes right."""
    signed = X.multiply(np.where(np.arange(X.shape[1]) % 2, -1.0, 1.0)).tocsr()
    forest = RandomForestClassifier(30, min_samples_leaf=3, random_state=2)
    return CompactForest.from_forest(forest.fit(signed[:1000], y[:1000]))


@pytest.mark.parametrize("build", [single_output, multi_output, folded_columns, signed_values])
def test_numpy_walk_gives_the_compiled_walks_probabilities_bit_for_bit(
    data, not_compiled, build
) -> None:
    X, y = data
    compact = build(X, y)
    compact.answer_before_compiled()
    batches = (X[1000:], X[1000:1001], X[1000:1000], X[1000:].toarray())
    before = [compact.predict_proba(rows) for rows in batches]
    assert not tree_walk.walk_is_compiled()
    assert (before[0] * compact.n_trees % 1 != 0).any()  # fractions: the order of sums matters
    compact.compile_walk()
    assert tree_walk.walk_is_compiled()
    for rows, numpy_walk in zip(batches, before, strict=True):
        assert np.array_equal(compact.predict_proba(rows), numpy_walk)


def test_compiles_at_the_first_prediction_unless_asked_to_wait(data, not_compiled) -> None:
    """Batch scoring and `mlflow models serve` keep compiling at once; a server opts in."""
    X, y = data
    compact = single_output(X, y)
    compact.predict_proba(X[1000:1002])
    assert tree_walk.walk_is_compiled()


def test_waiting_is_not_saved_with_the_model(data, not_compiled) -> None:
    X, y = data
    compact = single_output(X, y)
    compact.answer_before_compiled()
    restored = pickle.loads(pickle.dumps(compact))
    restored.predict_proba(X[1000:1002])
    assert tree_walk.walk_is_compiled()


@pytest.mark.parametrize("build", [single_output, multi_output, folded_columns, signed_values])
def test_a_large_batch_walked_in_parts_on_threads_gives_the_same_probabilities(
    data, build, monkeypatch: pytest.MonkeyPatch
) -> None:
    X, y = data
    compact = build(X, y)
    monkeypatch.setattr(tree_walk.joblib, "cpu_count", lambda: 1)
    one_part = compact.predict_proba(X)
    walk = tree_walk.compiled_forest_votes()
    threads: list[str] = []

    def walk_noting_the_thread(*arguments):
        threads.append(threading.current_thread().name)
        walk(*arguments)

    monkeypatch.setattr(tree_walk.joblib, "cpu_count", lambda: 3)
    monkeypatch.setattr(forest, "compiled_forest_votes", lambda: walk_noting_the_thread)
    monkeypatch.setattr(tree_walk, "_parts_pool", None)
    in_parts = compact.predict_proba(X)  # 1,500 rows: 3 parts of 500
    assert np.array_equal(in_parts, one_part)
    assert len(threads) == 3 and sum(name.startswith("forest-walk") for name in threads) == 2
    threads.clear()
    compact.predict_proba(X[:511])  # under two parts' worth of rows: the calling thread alone
    assert threads == [threading.current_thread().name]
