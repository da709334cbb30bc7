"""Text cleaning with NLTK, saved inside the model so training and serving clean text the same way.

Everything here works offline: the tokenizer is a regular expression (no punkt data), the Snowball
stemmers are pure code, and the stop-word lists ship with this package in `resources/`. NLTK's
corpus downloader is never called.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any

import regex
from nltk.stem.snowball import SnowballStemmer

STEMMER_LANGUAGES = ("english", "spanish")

_TAG = re.compile(r"<[^>]{0,500}>")
_URL = re.compile(r"(?:\b[a-z][a-z0-9+.-]*://|\bwww\.)\S+", re.IGNORECASE)
_EMAIL = re.compile(r"\b\S+@\S+\.\w+\b")
# Words of letters and digits in any script; joined by - . + ' inside a word ("c++", "utf-8").
# Compiled as NLTK's RegexpTokenizer compiles it (the `regex` engine, whose \w also takes the
# combining marks of scripts such as Devanagari, unlike `re`), called directly: NLTK adds a
# wall-clock timeout per call against runaway patterns, which this linear pattern does not need.
_WORD = regex.compile(
    r"[^\W_]+(?:[-+.'][^\W_]+)*\+*", regex.UNICODE | regex.MULTILINE | regex.DOTALL
)
# The same words in ASCII text (most product text): `re` finds them about twice as fast.
_ASCII_WORD = re.compile(r"[A-Za-z0-9]+(?:[-+.'][A-Za-z0-9]+)*\+*")


def words(text: str) -> list[str]:
    """The words of `text`, as NLTK's RegexpTokenizer on the `_WORD` pattern finds them."""
    return (_ASCII_WORD if text.isascii() else _WORD).findall(text)


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
    """Lowercase, decode HTML entities, drop tags, URLs, e-mail addresses and control characters.

    Each pattern runs only when the text holds the character it needs ("&", "<", "://" or "www.",
    "@"): the answer is the same, and most product text has none of them.
    """
    if "&" in text:
        text = html.unescape(html.unescape(text))
    if "<" in text:
        text = _TAG.sub(" ", text)
    if "://" in text or "www." in text.lower():
        text = _URL.sub(" ", text)
    if "@" in text:
        text = _EMAIL.sub(" ", text)
    text = unicodedata.normalize("NFKC", text).lower()
    return text if text.isprintable() else text.translate(_CONTROL_TO_SPACE)


class _ControlToSpace(dict[int, int]):
    """A `str.translate` table, filled as characters are met: control characters (Unicode
    category C*) become spaces, anything else stays. Looked up in C once a character is known."""

    def __missing__(self, code: int) -> int:
        self[code] = 32 if unicodedata.category(chr(code))[0] == "C" else code
        return self[code]


_CONTROL_TO_SPACE = _ControlToSpace()


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
        self._snowball = SnowballStemmer(self.stemmer) if self.stemmer else None
        self._kept = _KeptTokens(self._keep)

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

    def _keep(self, token: str) -> str | None:
        """The stem of a token that is kept, None for a stop word or a too short token."""
        if len(token) < self.min_length or token in self._stop:
            return None
        return self._snowball.stem(token) if self._snowball else token

    def __call__(self, text: str) -> list[str]:
        kept = map(self._kept.__getitem__, words(normalize(text)))
        return [stem for stem in kept if stem is not None]


class _KeptTokens(dict[str, str | None]):
    """Token → its stem, or None if dropped; filled on first sight, so known tokens are looked
    up in C. Bounded: past `limit` tokens, new ones are computed and not kept."""

    def __init__(self, keep: Callable[[str], str | None], limit: int = 500_000) -> None:
        super().__init__()
        self.keep, self.limit = keep, limit

    def __missing__(self, token: str) -> str | None:
        stem = self.keep(token)
        if len(self) < self.limit:
            self[token] = stem
        return stem
