"""The compact forest is lossless: same probabilities as scikit-learn's, also after pickling."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from scipy import sparse
from sklearn.datasets import make_classification
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier

from product_model.forest import CompactForest
from product_model.forest_build import round_down_to_float32
from product_model.node_order import side_by_side_state


@pytest.fixture(scope="module")
def data() -> tuple[sparse.csr_matrix, np.ndarray]:
    X, y = make_classification(1200, 40, n_informative=15, n_classes=7, random_state=3)
    X = np.abs(X) * (np.random.default_rng(3).random(X.shape) > 0.6)  # sparse-ish, >= 0
    return sparse.csr_matrix(X, dtype=np.float32), np.array(list("abcdefg"))[y]


@pytest.mark.parametrize("kind", [RandomForestClassifier, ExtraTreesClassifier])
@pytest.mark.parametrize("leaf", [1, 3])
def test_same_probabilities_as_stock_forest(data, kind, leaf) -> None:
    X, y = data
    forest = kind(
        n_estimators=25, min_samples_leaf=leaf, class_weight="balanced", random_state=0
    ).fit(X[:900], y[:900])
    compact = CompactForest.from_forest(forest)
    for rows in (X[900:], X[900:901], X[900:].toarray()):
        assert np.abs(compact.predict_proba(rows) - forest.predict_proba(rows)).max() < 1e-9
    assert (compact.predict(X[900:]) == forest.predict(X[900:])).all()
    assert list(compact.classes_) == list(forest.classes_)


def test_much_smaller_than_the_forest(data) -> None:
    X, y = data
    forest = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y)
    compact = CompactForest.from_forest(forest)
    assert len(pickle.dumps(compact)) * 3 < len(pickle.dumps(forest))


def test_pickle_round_trip(data) -> None:
    X, y = data
    compact = CompactForest.from_forest(RandomForestClassifier(10, random_state=1).fit(X, y))
    restored = pickle.loads(pickle.dumps(compact))
    assert np.array_equal(restored.predict_proba(X), compact.predict_proba(X))


@pytest.fixture(scope="module")
def signed_data() -> tuple[sparse.csr_matrix, np.ndarray]:
    """Sparse, with negative values: some thresholds are negative, and a zero goes right there."""
    X, y = make_classification(1200, 40, n_informative=15, n_classes=5, random_state=4)
    X = X * (np.random.default_rng(4).random(X.shape) > 0.6)
    return sparse.csr_matrix(X, dtype=np.float32), y


@pytest.mark.parametrize("kind", [RandomForestClassifier, ExtraTreesClassifier])
def test_same_probabilities_as_stock_forest_with_negative_values(signed_data, kind) -> None:
    X, y = signed_data
    forest = kind(n_estimators=25, min_samples_leaf=2, random_state=0).fit(X[:900], y[:900])
    compact = CompactForest.from_forest(forest)
    inner = compact.child_ >= 0
    assert (compact.threshold_[inner] < 0).any() and (compact.threshold_[inner] > 0).any()
    rows = sparse.vstack([X[900:], sparse.csr_matrix((1, X.shape[1]), dtype=np.float32)])
    assert np.abs(compact.predict_proba(rows) - forest.predict_proba(rows)).max() < 1e-9


def test_a_zero_goes_to_the_next_node_and_every_subtree_is_one_run(signed_data) -> None:
    """An inner node's zero child is stored right after it, followed by its subtree, then the
    other child (`child`) and its subtree."""
    X, y = signed_data
    forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y)
    compact = CompactForest.from_forest(forest)
    ends = [*compact.roots_[1:], len(compact.child_)]
    for root, end, tree in zip(compact.roots_, ends, forest.estimators_, strict=True):
        child = compact.child_[root:end].astype(np.int64) - root
        size = np.ones(len(child), dtype=np.int64)
        for node in reversed(range(len(child))):  # children are stored after their parent
            if child[node] >= 0:
                assert child[node] == node + 1 + size[node + 1]
                size[node] += size[node + 1] + size[child[node]]
        assert size[0] == len(child) == tree.tree_.node_count
        zero_path = [0]  # from the root, always the next node: the all-zero row's path
        while child[zero_path[-1]] >= 0:
            zero_path.append(zero_path[-1] + 1)
        assert len(zero_path) == len(tree.decision_path(np.zeros((1, X.shape[1]))).indices)


def test_a_forest_saved_with_children_side_by_side_is_reordered_at_load(signed_data) -> None:
    """A model saved before the zero-first order, read by this code, walks its trees right."""
    X, y = signed_data
    compact = CompactForest.from_forest(RandomForestClassifier(8, random_state=0).fit(X, y))
    old = side_by_side_state(compact)
    assert not np.array_equal(old["child_"], compact.child_)
    restored = CompactForest.__new__(CompactForest)
    restored.__setstate__(old)
    for name in ("feature_", "threshold_", "child_", "roots_"):
        assert np.array_equal(getattr(restored, name), getattr(compact, name)), name
    assert np.array_equal(restored.predict_proba(X), compact.predict_proba(X))


def test_thresholds_rounded_down_keep_every_comparison() -> None:
    thresholds = np.array([0.1, 1 / 3, 2.5, 1e-8, 7.0000001], dtype=np.float64)
    rounded = round_down_to_float32(thresholds)
    assert (rounded.astype(np.float64) <= thresholds).all()
    for t, r in zip(thresholds, rounded, strict=True):
        above = np.nextafter(r, np.float32(np.inf))
        assert above > t  # nothing float32 lies strictly between r and t
        assert (np.float32(r) <= t) and not (above <= t)


def test_refuses_to_fit() -> None:
    with pytest.raises(TypeError, match="from_forest"):
        CompactForest().fit(np.zeros((2, 2)), [0, 1])


def test_folded_column_selection_reads_the_wider_matrix(data) -> None:
    X, y = data
    columns = np.arange(0, 40, 2)
    forest = RandomForestClassifier(15, random_state=2).fit(X[:900][:, columns], y[:900])
    compact = CompactForest.from_forest(forest)
    compact.select_columns(columns)
    expected = forest.predict_proba(X[900:][:, columns])
    assert np.abs(compact.predict_proba(X[900:]) - expected).max() < 1e-9


def test_float64_and_duplicate_entries_read_as_scikit_learn_reads_them(data) -> None:
    X, y = data
    forest = ExtraTreesClassifier(15, random_state=4).fit(X[:900], y[:900])
    compact = CompactForest.from_forest(forest)
    rows = X[900:].tocoo()
    # Every stored value split in two halves at the same position: a CSR with duplicates.
    doubled = sparse.csr_matrix(
        (
            np.concatenate([rows.data / 2, rows.data / 2]).astype(np.float64),
            (np.concatenate([rows.row, rows.row]), np.concatenate([rows.col, rows.col])),
        ),
        shape=rows.shape,
    )
    expected = forest.predict_proba(doubled.toarray())
    assert np.abs(compact.predict_proba(doubled) - expected).max() < 1e-9


def test_empty_batch_gives_no_rows(data) -> None:
    X, y = data
    compact = CompactForest.from_forest(RandomForestClassifier(5, random_state=0).fit(X, y))
    assert compact.predict_proba(X[:0]).shape == (0, 7)


@pytest.fixture(scope="module")
def tag_data(data) -> tuple[sparse.csr_matrix, np.ndarray]:
    """A 0/1 label matrix of 6 tags, one of them never set and one always set."""
    X, y = data
    codes = np.searchsorted(np.array(list("abcdefg")), y)
    rng = np.random.default_rng(5)
    tags = np.column_stack(
        [codes % 2, codes < 3, (codes + rng.integers(0, 2, len(codes))) % 3 == 0, codes == 6]
    ).astype(int)
    never, always = np.zeros(len(codes), dtype=int), np.ones(len(codes), dtype=int)
    return X, np.column_stack([tags, never, always])


@pytest.mark.parametrize("kind", [RandomForestClassifier, ExtraTreesClassifier])
@pytest.mark.parametrize("leaf", [1, 4])
def test_multi_output_same_probabilities_as_stock_forest(tag_data, kind, leaf) -> None:
    X, Y = tag_data
    forest = kind(n_estimators=20, min_samples_leaf=leaf, random_state=0).fit(X[:900], Y[:900])
    names = [f"tag{k}" for k in range(Y.shape[1])]
    compact = CompactForest.from_forest(forest, names)
    for rows in (X[900:], X[900:901]):
        stock = np.column_stack(
            [
                p[:, list(c).index(1)] if 1 in c else np.zeros(p.shape[0])
                for p, c in zip(forest.predict_proba(rows), forest.classes_, strict=True)
            ]
        )
        assert np.abs(compact.predict_proba(rows) - stock).max() < 1e-9
    assert list(compact.classes_) == names
    restored = pickle.loads(pickle.dumps(compact))
    assert np.array_equal(restored.predict_proba(X), compact.predict_proba(X))


def test_forests_fitted_in_chunks_are_one_forest(tag_data) -> None:
    X, Y = tag_data
    chunks = [RandomForestClassifier(10, random_state=s).fit(X[:900], Y[:900]) for s in (1, 2)]
    merged = CompactForest.from_forests(chunks, list("abcdef"))
    each = [
        CompactForest.from_forest(chunk, list("abcdef")).predict_proba(X[900:]) for chunk in chunks
    ]
    assert merged.n_trees == 20
    assert np.abs(merged.predict_proba(X[900:]) - (each[0] + each[1]) / 2).max() < 1e-12


def test_forests_joined_are_the_mean_of_all_their_trees(data) -> None:
    """Training fits the forest in chunks; joined, every tree weighs the same."""
    X, y = data
    small = RandomForestClassifier(3, random_state=1).fit(X[:900], y[:900])
    large = RandomForestClassifier(9, random_state=2).fit(X[:900], y[:900])
    joined = CompactForest.from_forests(iter([small, large]))
    expected = (3 * small.predict_proba(X[900:]) + 9 * large.predict_proba(X[900:])) / 12
    assert joined.n_trees == 12
    assert np.abs(joined.predict_proba(X[900:]) - expected).max() < 1e-9


def test_forests_of_other_classes_are_not_joined(data) -> None:
    X, y = data
    first = RandomForestClassifier(2, random_state=1).fit(X, y)
    other = RandomForestClassifier(2, random_state=1).fit(X[y != "a"], y[y != "a"])
    with pytest.raises(ValueError, match="different classes"):
        CompactForest.from_forests([first, other])
    with pytest.raises(ValueError, match="no forest"):
        CompactForest.from_forests([])
