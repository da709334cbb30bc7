"""The fast text path gives the same tokens as the plain one it replaced, on real catalog text.

Reads the shared catalog beside the clone (`../shared/data/apt-catalog.jsonl.gz`, where CI puts
it, or $SHARED_CATALOG): every title, and the descriptions of the first products.
"""

from __future__ import annotations

import gzip
import html
import json
import os
import unicodedata
from pathlib import Path

import pytest
from nltk.stem.snowball import SnowballStemmer
from nltk.tokenize import RegexpTokenizer

from product_model import text
from product_model.features import as_text
from product_model.text import TextCleaner

SHARED_CATALOG = Path(
    os.environ.get("SHARED_CATALOG")
    or Path(__file__).resolve().parents[3] / "../shared/data/apt-catalog.jsonl.gz"
)
DESCRIPTIONS = 5_000
# The tokenizer the cleaning used before: NLTK's, on the same pattern.
_NLTK_WORDS = RegexpTokenizer(text._WORD.pattern)


def plain_normalize(raw: str) -> str:
    """Text normalisation as it was before the fast paths: every step, character by character."""
    raw = html.unescape(html.unescape(raw))
    raw = text._TAG.sub(" ", raw)
    raw = text._URL.sub(" ", raw)
    raw = text._EMAIL.sub(" ", raw)
    raw = unicodedata.normalize("NFKC", raw).lower()
    return "".join(" " if unicodedata.category(char)[0] == "C" else char for char in raw)


def plain_tokens(raw: str, stemmer: SnowballStemmer, stop: frozenset[str]) -> list[str]:
    words = _NLTK_WORDS.tokenize(plain_normalize(raw))
    return [stemmer.stem(word) for word in words if len(word) >= 2 and word not in stop]


@pytest.fixture(scope="module")
def catalog_texts() -> list[str]:
    if not SHARED_CATALOG.exists():
        pytest.fail(
            f"the shared catalog is missing: {SHARED_CATALOG.resolve()}; this test compares the "
            "text cleaning on it (put apt-catalog.jsonl.gz in ../shared/data beside the clone, "
            "or set SHARED_CATALOG to its path)"
        )
    titles, descriptions = [], []
    with gzip.open(SHARED_CATALOG, "rt", encoding="utf-8") as lines:
        for line in lines:
            product = json.loads(line)
            titles.append(as_text(product.get("title")))
            if len(descriptions) < DESCRIPTIONS:
                descriptions.append(as_text(product.get("description")))
    return titles + descriptions


def test_same_tokens_as_the_plain_cleaning_on_the_whole_catalog(catalog_texts) -> None:
    cleaner = TextCleaner("english")
    stemmer = SnowballStemmer("english")
    different = [
        raw for raw in catalog_texts if cleaner(raw) != plain_tokens(raw, stemmer, cleaner._stop)
    ]
    assert len(catalog_texts) > 60_000
    assert different == []


def test_same_normalized_text_on_the_whole_catalog(catalog_texts) -> None:
    different = [raw for raw in catalog_texts if text.normalize(raw) != plain_normalize(raw)]
    assert different == []
