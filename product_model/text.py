"""Text cleaning with NLTK, saved inside the model so training and serving clean text the same way.

Everything here works offline: the tokenizer is a regular expression (no punkt data), the Snowball
stemmers are pure code, and the stop-word lists ship with this package in `resources/`. NLTK's
corpus downloader is never called.
"""

from __future__ import annotations

import html
import re
import unicodedata
from functools import cache
from importlib import resources
from typing import Any

from nltk.stem.snowball import SnowballStemmer
from nltk.tokenize import RegexpTokenizer

STEMMER_LANGUAGES = ("english", "spanish")

_TAG = re.compile(r"<[^>]{0,500}>")
_URL = re.compile(r"(?:\b[a-z][a-z0-9+.-]*://|\bwww\.)\S+", re.IGNORECASE)
_EMAIL = re.compile(r"\b\S+@\S+\.\w+\b")
# Words of letters and digits in any script; joined by - . + ' inside a word ("c++", "utf-8").
_WORD = RegexpTokenizer(r"[^\W_]+(?:[-+.'][^\W_]+)*\+*")


@cache
def stopwords(language: str) -> frozenset[str]:
    """The stop words for `language` ("english" or "spanish"), from the bundled lists."""
    code = {"english": "en", "spanish": "es"}[language]
    text = (
        resources.files("product_model.resources")
        .joinpath(f"stopwords_{code}.txt")
        .read_text("utf-8")
    )
    return frozenset(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


def normalize(text: str) -> str:
    """Lowercase, decode HTML entities, drop tags, URLs, e-mail addresses and control characters."""
    text = html.unescape(html.unescape(text))
    text = _TAG.sub(" ", text)
    text = _URL.sub(" ", text)
    text = _EMAIL.sub(" ", text)
    text = unicodedata.normalize("NFKC", text).lower()
    return "".join(" " if unicodedata.category(char)[0] == "C" else char for char in text)


class TextCleaner:
    """Turns raw product text into stemmed tokens without stop words.

    Picklable and deterministic; the stem cache is rebuilt after unpickling rather than saved.
    """

    def __init__(
        self,
        stemmer: str | None = "english",
        stop_languages: tuple[str, ...] = STEMMER_LANGUAGES,
        min_length: int = 2,
    ) -> None:
        if stemmer is not None and stemmer not in STEMMER_LANGUAGES:
            raise ValueError(f"stemmer must be one of {STEMMER_LANGUAGES} or None, not {stemmer!r}")
        self.stemmer = stemmer
        self.stop_languages = tuple(stop_languages)
        self.min_length = min_length
        self._setup()

    def _setup(self) -> None:
        self._stop = frozenset().union(*(stopwords(lang) for lang in self.stop_languages))
        self._stem_cache: dict[str, str] = {}
        self._snowball = SnowballStemmer(self.stemmer) if self.stemmer else None

    def __getstate__(self) -> dict[str, Any]:
        return {
            "stemmer": self.stemmer,
            "stop_languages": self.stop_languages,
            "min_length": self.min_length,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._setup()

    def __repr__(self) -> str:
        return f"TextCleaner(stemmer={self.stemmer!r}, stop_languages={self.stop_languages!r})"

    def _stem(self, token: str) -> str:
        stem = self._stem_cache.get(token)
        if stem is None:
            stem = self._snowball.stem(token) if self._snowball else token
            if len(self._stem_cache) < 500_000:
                self._stem_cache[token] = stem
        return stem

    def __call__(self, text: str) -> list[str]:
        tokens = _WORD.tokenize(normalize(text))
        return [
            self._stem(token)
            for token in tokens
            if len(token) >= self.min_length and token not in self._stop
        ]
