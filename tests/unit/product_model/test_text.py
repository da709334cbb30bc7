"""Text cleaning: the same tokens at training and serving time, offline."""

from __future__ import annotations

import pickle

import pytest

from product_model import text
from product_model.text import TextCleaner, normalize, stopwords, words


def test_english_stemming_and_stop_words() -> None:
    tokens = TextCleaner("english")("The running shoes are comfortable and the laces")
    assert "the" not in tokens and "and" not in tokens
    assert tokens == ["run", "shoe", "comfort", "lace"]


def test_spanish_stop_words_and_stemmer() -> None:
    tokens = TextCleaner("spanish")("Las zapatillas para correr son muy cómodas")
    assert "las" not in tokens and "para" not in tokens and "muy" not in tokens
    assert "zapatill" in tokens and "corr" in tokens


def test_html_entities_urls_and_emails_removed() -> None:
    text = "<p>Fast&nbsp;<b>SSD</b> &amp; case</p> see https://example.com/x?y=1 or mail a@b.org"
    tokens = TextCleaner(None)(text)
    assert tokens == ["fast", "ssd", "case", "see", "mail"]


def test_unicode_scripts_emoji_and_control_characters() -> None:
    tokens = TextCleaner(None)("Ünïcode café 東京 кофе \x00\x07 🚀 c++ utf-8")
    assert {"ünïcode", "café", "東京", "кофе", "c++", "utf-8"} <= set(tokens)
    assert not any("\x00" in t or "🚀" in t for t in tokens)


@pytest.mark.parametrize("text", ["", "   ", "<br/>", "the and of"])
def test_empty_text_gives_no_tokens(text: str) -> None:
    assert TextCleaner()(text) == []


def test_normalize_lowercases_and_unescapes() -> None:
    assert normalize("Caf&eacute; &lt;b&gt;BOLD&lt;/b&gt;").split() == ["café", "bold"]


def test_pickle_round_trip_keeps_behaviour_without_the_cache() -> None:
    cleaner = TextCleaner("english")
    cleaner("warming the cache with words")
    state = pickle.dumps(cleaner)
    assert b"warming" not in state
    assert pickle.loads(state)("running fast") == cleaner("running fast")


def test_stop_word_lists_ship_with_the_package() -> None:
    assert {"the", "and"} <= stopwords("english")
    assert {"los", "para"} <= stopwords("spanish")


def test_unknown_stemmer_rejected() -> None:
    with pytest.raises(ValueError, match="stemmer"):
        TextCleaner("klingon")


@pytest.mark.parametrize(
    "sample",
    [
        "c++ utf-8 don't 3.5mm USB-C x--y a_b __init__ 10,000 +5 g++++ .net e.g. 'quoted'",
        "end+ -start trailing- a.b.c 1/2 R&D 50%off ..dots.. x'y'z",
        "café naïve 東京 हिन्दी c++ utf-8",  # not ASCII: the regex engine, as before
    ],
)
def test_words_are_those_of_the_nltk_pattern(sample: str) -> None:
    assert words(sample) == text._WORD.findall(sample)
    assert words(sample.lower()) == text._WORD.findall(sample.lower())
