"""A faster `TfidfVectorizer.transform` for the featurizer's word and token blocks, same matrix.

scikit-learn counts terms with a Python loop that looks every term up in the vocabulary one at a
time and builds word n-grams with another. Here the n-grams are joined by `map`; a batch's terms
are looked up by `map` and counted by NumPy (a few documents: by `collections.Counter`, each
intersected with the vocabulary as sets), all in C. The counts matrix is built exactly as
scikit-learn builds it (float32, sorted indices) and weighted by the same NumPy and scikit-learn
operations as `TfidfTransformer.transform`, in the same order, minus its input checks, so the
result is identical;
`tests/unit/product_model/test_term_counts.py` compares both on real catalog text.

Character n-grams inside words ("char_wb") are generated the same way, with slices instead of a
Python loop per n-gram. Vectorizers this does not cover (plain "char" n-grams, stop words, a
preprocessor...) go through scikit-learn's own `transform`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from itertools import chain, repeat
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfTransformer, TfidfVectorizer
from sklearn.preprocessing import normalize
from sklearn.utils.sparsefuncs_fast import inplace_csr_row_normalize_l2

_WHITE_SPACES = re.compile(r"\s\s+")  # scikit-learn's own pattern for char_wb


def tfidf_transform(vectorizer: TfidfVectorizer, docs: Sequence[Any]) -> Any:
    """`vectorizer.transform(docs)`, computed faster when the vectorizer's settings allow it."""
    analyze = _fast_analyzer(vectorizer)
    tfidf = getattr(vectorizer, "_tfidf", None)
    if analyze is None or tfidf is None:
        return vectorizer.transform(docs)
    counts = term_counts([analyze(doc) for doc in docs], vectorizer.vocabulary_, vectorizer.dtype)
    if vectorizer.binary:
        counts.data.fill(1)
    return tfidf_weights(tfidf, counts)


def tfidf_weights(tfidf: TfidfTransformer, counts: sparse.csr_matrix) -> sparse.csr_matrix:
    """`tfidf.transform(counts, copy=False)`: the same operations in the same order, without the
    input validation, which costs more than the arithmetic for a few products."""
    if tfidf.sublinear_tf:
        np.log(counts.data, counts.data)
        counts.data += 1.0
    if hasattr(tfidf, "idf_"):
        counts.data *= tfidf.idf_[counts.indices]
    if tfidf.norm == "l2":
        inplace_csr_row_normalize_l2(counts)
    elif tfidf.norm is not None:
        counts = normalize(counts, norm=tfidf.norm, copy=False)
    return counts


def term_counts(
    documents: Sequence[Sequence[str]], vocabulary: dict[str, int], dtype: Any
) -> sparse.csr_matrix:
    """Document-term counts of the terms in `vocabulary`, as scikit-learn's CountVectorizer."""
    if len(documents) < FEW_DOCUMENTS:
        return _counted_one_by_one(documents, vocabulary, dtype)
    return _counted_together(documents, vocabulary, dtype)


FEW_DOCUMENTS = 8  # below this, NumPy's fixed costs exceed its gain


def _counted_one_by_one(
    documents: Sequence[Sequence[str]], vocabulary: dict[str, int], dtype: Any
) -> sparse.csr_matrix:
    """Each document's terms counted by `Counter` and intersected with the vocabulary as sets."""
    indices: list[int] = []
    values: list[int] = []
    indptr = [0]
    for terms in documents:
        counts = Counter(terms)
        known = counts.keys() & vocabulary.keys()
        indices.extend(map(vocabulary.__getitem__, known))
        values.extend(map(counts.__getitem__, known))
        indptr.append(len(indices))
    matrix = sparse.csr_matrix(
        (
            np.asarray(values, dtype=np.intc),
            np.asarray(indices, dtype=np.int32),
            np.asarray(indptr, dtype=np.int32),
        ),
        shape=(len(indptr) - 1, len(vocabulary)),
        dtype=dtype,
    )
    matrix.sort_indices()
    return matrix


def _counted_together(
    documents: Sequence[Sequence[str]], vocabulary: dict[str, int], dtype: Any
) -> sparse.csr_matrix:
    """All documents' terms looked up at once (-1: not in the vocabulary), then counted by
    sorting (document, term) keys: the same matrix, with sorted indices, in a third of the time
    for a batch."""
    n_documents, width = len(documents), len(vocabulary)
    lengths = np.fromiter(map(len, documents), dtype=np.int64, count=n_documents)
    lookups = (map(vocabulary.get, terms, repeat(-1)) for terms in documents)
    columns = np.fromiter(chain.from_iterable(lookups), dtype=np.int64, count=int(lengths.sum()))
    rows = np.repeat(np.arange(n_documents, dtype=np.int64), lengths)
    known = columns >= 0
    keys, counts = np.unique(rows[known] * width + columns[known], return_counts=True)
    rows = keys // width
    matrix = sparse.csr_matrix(
        (
            counts.astype(dtype),
            (keys - rows * width).astype(np.int32),
            np.searchsorted(rows, np.arange(n_documents + 1)).astype(np.int32),
        ),
        shape=(n_documents, width),
    )
    matrix.has_sorted_indices = True  # keys were sorted by document, then term
    return matrix


def _fast_analyzer(vectorizer: TfidfVectorizer) -> Callable[[Any], Sequence[str]] | None:
    """The vectorizer's analysis of one document, when it is a callable analyzer or tokens plus
    word n-grams from 1 to n with no other step; None for anything else."""
    if vectorizer.input != "content":
        return None
    if callable(vectorizer.analyzer):
        return vectorizer.analyzer
    if vectorizer.preprocessor is not None or vectorizer.strip_accents is not None:
        return None
    shortest, longest = vectorizer.ngram_range
    if vectorizer.analyzer == "char_wb":
        lower = vectorizer.lowercase
        return lambda doc: char_wb_ngrams(doc.lower() if lower else doc, shortest, longest)
    simple_words = (
        vectorizer.analyzer == "word"
        and callable(vectorizer.tokenizer)
        and not vectorizer.lowercase
        and vectorizer.stop_words is None
        and shortest == 1
    )
    if not simple_words:
        return None
    tokenize = vectorizer.tokenizer
    return lambda doc: word_ngrams(tokenize(doc), longest)


def word_ngrams(tokens: list[str], longest: int) -> list[str]:
    """The tokens, then their n-grams for n = 2..longest, joined by spaces (as scikit-learn)."""
    terms = list(tokens)
    for n in range(2, longest + 1):
        terms.extend(map(" ".join, zip(*(tokens[i:] for i in range(n)), strict=False)))
    return terms


def char_wb_ngrams(text: str, shortest: int, longest: int) -> list[str]:
    """Character n-grams inside each space-padded word, as scikit-learn's "char_wb" analyzer:
    a word shorter than n counts once, whole, and ends the longer n-grams of that word."""
    grams: list[str] = []
    for word in _WHITE_SPACES.sub(" ", text).split():
        padded = f" {word} "
        for n in range(shortest, longest + 1):
            if len(padded) <= n:
                grams.append(padded)
                break
            grams.extend(padded[i : i + n] for i in range(len(padded) - n + 1))
    return grams
