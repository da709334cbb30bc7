"""How the model behaves, not how well it scores: obvious products land where they must, and a
product keeps its label when a word of its title that says nothing of its category changes.

The products are real Debian packages of the shared catalog that the bundled sample does not
hold (tests/fixtures/obvious_products.jsonl), in the catalog's own shape, ids included.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest

from tests.support import REPO

PRODUCTS = [
    json.loads(line)
    for line in (REPO / "tests/fixtures/obvious_products.jsonl").read_text("utf-8").splitlines()
]
# Words that say nothing of a package's category, and what they become.
IRRELEVANT_WORDS = {
    "YAML": "TOML",
    "additional": "extra",
    "human beings": "people",
    "Vera": "Verdana",
    "large": "wide",
    "wrapper": "binding",
}


def predict(model: Any, products: list[dict[str, Any]]) -> list[str]:
    columns = model.named_steps["features"].spec.columns()
    frame = pd.DataFrame(products).reindex(columns=list(columns))
    return [str(label) for label in model.predict(frame)]


def with_title_word_changed(product: dict[str, Any]) -> dict[str, Any]:
    title = product["title"]
    for word, other in IRRELEVANT_WORDS.items():
        title = title.replace(word, other)
    assert title != product["title"], f"no irrelevant word to change in {product['title']!r}"
    return {**product, "title": title}


def test_the_products_are_not_in_the_training_sample() -> None:
    from tests.support import sample_records

    ids = {record["asin"] for record in sample_records()}
    assert not ids & {product["asin"] for product in PRODUCTS}


@pytest.mark.parametrize("product", PRODUCTS, ids=lambda p: p["asin"])
def test_obvious_products_land_where_they_must(sample_model: Any, product: dict) -> None:
    assert predict(sample_model, [product]) == [product["main_cat"]]


@pytest.mark.parametrize("product", PRODUCTS, ids=lambda p: p["asin"])
def test_an_irrelevant_title_word_keeps_the_label(sample_model: Any, product: dict) -> None:
    before, after = predict(sample_model, [product, with_title_word_changed(product)])
    assert before == after
