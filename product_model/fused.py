"""The saved pipeline's prediction in one pass, without its intermediate sparse matrices.

`Pipeline.predict_proba` on a few products builds about ten scipy sparse matrices on the way to
the forest: one per TF-IDF block, the numeric block, their `hstack`, the fixed column selection,
the linear scores and their `hstack`. For a batch of 15 products each costs tens of microseconds
of checks and copies, a third of the featurizer's time. `FusedPredictor` keeps the batch as
(row, column, value) arrays from the terms to the forest instead:

- every TF-IDF block's terms are looked up at once and counted by one `np.unique` over
  (row, column) keys, which also sorts the entries as `hstack` lays them out;
- the weighting is `tfidf_weights`' arithmetic on all blocks' entries at once, and scikit-learn's
  own L2 normalisation runs on (row, block) segments;
- the column selection is a lookup table; one CSR matrix is built, for the linear scores' sparse
  product; the forest walks the arrays.

Every value goes through the same operations as in the pipeline, so the probabilities are the
same bit for bit (`tests/unit/product_model/test_fused.py`). A pipeline of any other shape, or a
vectorizer setting this does not cover, has no fused form: `fused_predictor` returns None and the
pipeline predicts as usual.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import chain, repeat
from typing import Any, NamedTuple

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.utils.sparsefuncs_fast import inplace_csr_row_normalize_l2

from product_model.features import FixedColumns, ProductFeaturizer, _min_max_scaled, _records
from product_model.forest import CompactForest
from product_model.stacking import FLOOR, LinearScores
from product_model.term_counts import _fast_analyzer


@dataclass(frozen=True)
class TermBlock:
    """One TF-IDF block of the featurizer's matrix: its documents' name in the featurizer's raw
    blocks, how a document becomes terms, and where its columns start."""

    name: str
    analyze: Any
    vocabulary: dict[str, int]
    offset: int


@dataclass
class Entries:
    """A batch's non-zero features, sorted by row then column."""

    rows: np.ndarray
    columns: np.ndarray
    values: np.ndarray


class FusedPredictor:
    """`pipeline.predict_proba` for features → [select] → [scores] → compact forest."""

    def __init__(
        self,
        featurizer: ProductFeaturizer,
        select: FixedColumns | None,
        scores: LinearScores | None,
        forest: CompactForest,
    ) -> None:
        self.featurizer = featurizer
        self.scores = scores
        self.forest = forest
        vectorizers = _term_vectorizers(featurizer)
        n_numeric = featurizer.scaler_.n_features_in_ if featurizer.scaler_ is not None else 0
        self.numeric_offset = sum(
            len(v.vocabulary_) for name, v in vectorizers if name != "linear_chars"
        )
        self.width = self.numeric_offset + n_numeric + getattr(featurizer, "linear_chars", 0)
        self.blocks: list[TermBlock] = []
        self.idf = np.zeros(self.width, dtype=np.float64)
        offset = 0
        for name, vectorizer in vectorizers:
            if name == "linear_chars":  # the last block, after the numeric one
                offset = self.numeric_offset + n_numeric
            analyze = _fast_analyzer(vectorizer)
            self.blocks.append(TermBlock(name, analyze, vectorizer.vocabulary_, offset))
            idf = vectorizer._tfidf.idf_
            self.idf[offset : offset + idf.size] = idf
            offset += idf.size
        self.selected = _selection_table(select, self.width)
        selected = self.selected
        self.selected_width = self.width if selected is None else int((selected >= 0).sum())

    def predict_proba(
        self, products: Any, before_walk: Callable[[], None] | None = None
    ) -> np.ndarray:
        """The pipeline's `predict_proba(products)`; `before_walk()` is called between the
        features (built under the GIL) and the forest walk (without it)."""
        rows = self.forest_input(products)
        if before_walk is not None:
            before_walk()
        return self.forest.proba_of_rows(*rows)

    def forest_input(self, products: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The matrix the pipeline's last step gets, as CSR arrays (indptr, indices, data)."""
        records = _records(products)
        raw = self.featurizer._blocks(records)
        terms, numeric = self._term_weights(raw, len(records)), self._numeric(raw["numeric"])
        entries = _merged(terms, numeric, self.width)
        if self.selected is not None:
            entries = _kept(entries, self.selected)
        if self.scores is not None:
            entries = self._with_scores(entries, len(records))
        return _indptr(entries.rows, len(records)), entries.columns, entries.values

    def _term_weights(self, raw: dict[str, Any], n_rows: int) -> Entries:
        """The TF-IDF blocks' entries: terms counted per (row, column), weighted as
        `term_counts.tfidf_weights` weights each block."""
        terms = [[block.analyze(doc) for doc in raw[block.name]] for block in self.blocks]
        lengths = np.array([len(doc) for docs in terms for doc in docs], dtype=np.int64)
        # A list, converted once: `np.fromiter` over the lookups took twice as long.
        looked_up: list[int] = []
        for block, docs in zip(self.blocks, terms, strict=True):
            looked_up += map(block.vocabulary.get, chain.from_iterable(docs), repeat(-1))
        local = np.array(looked_up, dtype=np.int64)
        segment_rows = np.tile(np.arange(n_rows, dtype=np.int64), len(terms))
        segment_offsets = np.repeat([block.offset for block in self.blocks], n_rows)
        keys = np.repeat(segment_rows * self.width + segment_offsets, lengths) + local
        keys, counts = np.unique(keys[local >= 0], return_counts=True)
        rows = keys // self.width
        columns = keys - rows * self.width
        values = counts.astype(np.float32)
        np.log(values, values)  # sublinear_tf
        values += 1.0
        values *= self.idf[columns]
        self._normalize(keys, rows, columns, values, n_rows)
        return Entries(rows, columns, values)

    def _normalize(
        self,
        keys: np.ndarray,
        rows: np.ndarray,
        columns: np.ndarray,
        values: np.ndarray,
        n_rows: int,
    ) -> None:
        """Each block of each row scaled to unit L2 norm, by scikit-learn's own function (the
        same float32 squares summed in float64, in the same order)."""
        starts = np.add.outer(
            np.arange(n_rows, dtype=np.int64) * self.width,
            [block.offset for block in self.blocks],
        ).ravel()
        segments = np.append(np.searchsorted(keys, starts), keys.size).astype(np.int64, copy=False)
        inplace_csr_row_normalize_l2(
            _Segments(values, (segments.size - 1, self.width), columns, segments)
        )

    def _numeric(self, numeric: np.ndarray) -> Entries:
        """The scaled numeric block's non-zero entries, as `csr_matrix(scaled, float32)` keeps."""
        if self.featurizer.scaler_ is None:
            empty = np.empty(0, dtype=np.int64)
            return Entries(empty, empty, np.empty(0, dtype=np.float32))
        scaled = _min_max_scaled(self.featurizer.scaler_, numeric)
        rows, columns = np.nonzero(scaled)
        values = scaled[rows, columns].astype(np.float32)
        return Entries(rows.astype(np.int64), columns + self.numeric_offset, values)

    def _with_scores(self, entries: Entries, n_rows: int) -> Entries:
        """The linear scores' step (`LinearScores.transform`)."""
        assert self.scores is not None
        width = self.selected_width
        matrix = sparse.csr_matrix(
            (entries.values, entries.columns, _indptr(entries.rows, n_rows)),
            shape=(n_rows, width),
            copy=False,
        )
        shifted = np.clip(self.scores._scores(matrix), FLOOR, None) - FLOOR
        shifted = shifted.astype(np.float32)
        kept = width - getattr(self.scores, "linear_only", 0)
        passed = entries.columns < kept
        if not passed.all():
            entries = Entries(entries.rows[passed], entries.columns[passed], entries.values[passed])
        score_rows, score_columns = np.nonzero(shifted)
        scores = Entries(score_rows, score_columns + kept, shifted[score_rows, score_columns])
        return _merged(entries, scores, kept + shifted.shape[1])  # a row's features, then scores


class _Segments(NamedTuple):
    """What `inplace_csr_row_normalize_l2` reads of a CSR matrix, without building one (scipy's
    constructor checks cost more than the normalisation for a few products); `indices` and
    `indptr` of one integer type."""

    data: np.ndarray
    shape: tuple[int, int]
    indices: np.ndarray
    indptr: np.ndarray


def _selection_table(select: FixedColumns | None, width: int) -> np.ndarray | None:
    """For every featurizer column, its index after the selection, or -1."""
    if select is None:
        return None
    table = np.full(width, -1, dtype=np.int64)
    table[np.asarray(select.columns)] = np.arange(len(select.columns))
    return table


def _merged(first: Entries, second: Entries, width: int) -> Entries:
    """Two sets of entries, each sorted by row then column (in a matrix `width` columns wide),
    in one sorted the same way."""
    if second.rows.size == 0:
        return first
    size = first.rows.size + second.rows.size
    at = np.searchsorted(first.rows * width + first.columns, second.rows * width + second.columns)
    from_second = np.zeros(size, dtype=bool)
    from_second[at + np.arange(second.rows.size)] = True
    merged = []
    for mine, theirs in zip(
        (first.rows, first.columns, first.values),
        (second.rows, second.columns, second.values),
        strict=True,
    ):
        both = np.empty(size, dtype=mine.dtype)
        both[from_second] = theirs
        both[~from_second] = mine
        merged.append(both)
    return Entries(*merged)


def _kept(entries: Entries, table: np.ndarray) -> Entries:
    columns = table[entries.columns]
    keep = columns >= 0
    return Entries(entries.rows[keep], columns[keep], entries.values[keep])


def _indptr(rows: np.ndarray, n_rows: int) -> np.ndarray:
    return np.searchsorted(rows, np.arange(n_rows + 1)).astype(np.int64)


def fused_predictor(pipeline: Any) -> FusedPredictor | None:
    """The fused form of a saved pipeline, or None when its steps or settings are not covered."""
    steps = dict(getattr(pipeline, "steps", []))
    if list(steps) not in (
        ["features", "forest"],
        ["features", "select", "forest"],
        ["features", "scores", "forest"],
        ["features", "select", "scores", "forest"],
    ):
        return None
    featurizer, forest = steps["features"], steps["forest"]
    select, scores = steps.get("select"), steps.get("scores")
    if not (
        isinstance(featurizer, ProductFeaturizer)
        and isinstance(forest, CompactForest)
        and (select is None or _increasing(select))
        and (scores is None or isinstance(scores, LinearScores))
    ):
        return None
    if not all(_covered(v) for _, v in _term_vectorizers(featurizer)):
        return None
    return FusedPredictor(featurizer, select, scores, forest)


def _term_vectorizers(featurizer: ProductFeaturizer) -> list[tuple[str, TfidfVectorizer]]:
    """The featurizer's TF-IDF blocks by name, in column order, then its linear characters'
    block when it has a fitted one (its columns come after the numeric block's)."""
    vectorizers = list(featurizer.vectorizers_.items())
    linear = getattr(featurizer, "linear_chars_", None)
    if getattr(featurizer, "linear_chars", 0) and linear is not None:
        vectorizers.append(("linear_chars", linear))
    return vectorizers


def _increasing(select: Any) -> bool:
    """A FixedColumns whose columns are strictly increasing (the selection keeps their order)."""
    if not isinstance(select, FixedColumns) or select.columns is None:
        return False
    columns = np.asarray(select.columns)
    return columns.ndim == 1 and columns.dtype.kind in "iu" and bool(np.all(np.diff(columns) > 0))


def _covered(vectorizer: TfidfVectorizer) -> bool:
    """Settings the fused weighting reproduces: analysis `tfidf_transform` does itself, float32
    counts, sublinear TF, IDF weights and L2 norm."""
    tfidf = getattr(vectorizer, "_tfidf", None)
    return (
        _fast_analyzer(vectorizer) is not None
        and tfidf is not None
        and hasattr(tfidf, "idf_")
        and tfidf.sublinear_tf
        and tfidf.norm == "l2"
        and not vectorizer.binary
        and np.dtype(vectorizer.dtype) == np.float32
    )
