"""The fast TF-IDF path builds exactly the matrix scikit-learn's `transform` builds."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer

from product_model import features
from product_model.features import ProductFeaturizer
from product_model.term_counts import (
    _counted_one_by_one,
    _counted_together,
    char_wb_ngrams,
    tfidf_transform,
    word_ngrams,
)

SAMPLE = Path(__file__).resolve().parents[3] / "training/data/sample_catalog.jsonl.gz"


@pytest.fixture(scope="module")
def products() -> list[dict]:
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


def same_matrix(a: sparse.spmatrix, b: sparse.spmatrix) -> bool:
    a, b = sparse.csr_matrix(a), sparse.csr_matrix(b)
    return (
        a.shape == b.shape
        and a.dtype == b.dtype
        and np.array_equal(a.indptr, b.indptr)
        and np.array_equal(a.indices, b.indices)
        and np.array_equal(a.data, b.data)  # bit for bit, not approximately
    )


def test_featurizer_matrix_identical_to_scikit_learns(products, monkeypatch) -> None:
    featurizer = ProductFeaturizer(min_df=2).fit(products[:4000])
    fast = featurizer.transform(products[4000:])
    monkeypatch.setattr(features, "tfidf_transform", lambda v, docs: v.transform(docs))
    assert same_matrix(fast, featurizer.transform(products[4000:]))


@pytest.mark.parametrize(
    "settings",
    [
        {"analyzer": "char_wb", "ngram_range": (2, 5)},
        {"analyzer": "char_wb", "ngram_range": (1, 3), "lowercase": False},
        {"analyzer": "word", "ngram_range": (1, 3), "tokenizer": str.split, "lowercase": False},
        {"analyzer": "word", "ngram_range": (1, 1), "tokenizer": str.split, "lowercase": False,
         "sublinear_tf": True, "norm": "l1", "binary": True},
        {"analyzer": "word", "stop_words": ["the"]},  # not covered: scikit-learn's own path
    ],
)  # fmt: skip
def test_each_vectorizer_setting_identical(settings) -> None:
    docs = ["the Cat  sat on the mat", "a", "", "b000 X1 x1 x1", "ab  cd\tef", "the the the"]
    vectorizer = TfidfVectorizer(token_pattern=None if "tokenizer" in settings else r"\S+")
    vectorizer.set_params(**settings).fit(docs)
    assert same_matrix(tfidf_transform(vectorizer, docs), vectorizer.transform(docs))


def test_ngram_helpers() -> None:
    assert word_ngrams(["a", "b", "c"], 2) == ["a", "b", "c", "a b", "b c"]
    assert char_wb_ngrams("ab", 2, 5) == [" a", "ab", "b ", " ab", "ab ", " ab "]
    assert char_wb_ngrams("x", 3, 5) == [" x "]


@pytest.mark.parametrize("size", [0, 1, 7, 8, 100, 2000])
def test_counting_a_batch_together_or_one_by_one_gives_the_same_counts(products, size) -> None:
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), min_df=3)
    vectorizer.fit(str(p.get("title", "")) for p in products[:3000])
    analyze = vectorizer.build_analyzer()
    documents = [analyze(str(p.get("title", ""))) for p in products[3000 : 3000 + size]]
    documents[size // 2 : size // 2 + 1] = [[], ["zzzz"]][: min(size, 2)]  # empty, all unknown
    for dtype in (np.float32, np.float64):
        one_by_one = _counted_one_by_one(documents, vectorizer.vocabulary_, dtype)
        together = _counted_together(documents, vectorizer.vocabulary_, dtype)
        assert same_matrix(together, one_by_one)
        assert together.has_sorted_indices and together.shape == (
            len(documents),
            len(vectorizer.vocabulary_),
        )
