"""Feature building: from raw product records to one sparse float32 matrix.

`ProductFeaturizer` is the first step of the saved model, so it takes products exactly as the
serving API receives them (dicts or a DataFrame of catalog fields, where a field may be a string,
a list of strings, a number, a dict or missing) and copes with every shape of the Amazon 2018 data.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import MinMaxScaler

from product_model.contract import InputContract, InputField, text_type
from product_model.term_counts import tfidf_transform
from product_model.text import TextCleaner

Record = Mapping[str, Any]

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*(?:\.\d+)?")
_SPACE = re.compile(r"\s+")
_DOMAIN = re.compile(r"^[a-z][a-z0-9+.-]*://(?:www\.)?([^/:?#]+)", re.IGNORECASE)


@dataclass(frozen=True)
class FeatureSpec:
    """Which input fields feed which kind of feature."""

    text_columns: tuple[str, ...] = ("title", "description", "feature")
    token_columns: tuple[str, ...] = ("brand", "category", "also_buy", "also_view", "details")
    id_column: str | None = "asin"
    numeric_columns: tuple[str, ...] = ()
    amazon_counts: bool = True
    """Derive counts (related products, images, categories), text lengths and the parsed price."""
    input_columns: tuple[str, ...] = field(default=())
    char_ngram_columns: tuple[str, ...] = ()
    """Text fields that also give character n-grams (robust to spelling, joined words, codes)."""

    def columns(self) -> tuple[str, ...]:
        """Every input field the model reads."""
        return tuple(name for name, _ in self.roles())

    def roles(self) -> list[tuple[str, str]]:
        """(field, role) for every input field, each field once, in a stable order."""
        named = [(c, "text") for c in (*self.text_columns, *self.char_ngram_columns)]
        named += [(c, "tokens") for c in self.token_columns]
        named += [(c, "numeric") for c in self.numeric_columns]
        if self.id_column:
            named.append((self.id_column, "id"))
        if self.amazon_counts:
            named += [(c, "tokens") for c in AMAZON_COUNTED]
            named += [("price", "numeric"), ("description", "text"), ("title", "text")]
        first: dict[str, str] = {}
        for name, role in named:
            first.setdefault(name, role)
        return list(first.items())

    def contract(self, frame: pd.DataFrame, label_column: str) -> InputContract:
        """The input contract of a model trained on `frame`: the fields it reads that the
        catalog has, typed from the catalog's values."""
        fields = [
            InputField(name, role, _value_type(name, role, frame[name]))  # type: ignore[arg-type]
            for name, role in self.roles()
            if name in frame.columns
        ]
        return InputContract(tuple(fields), label_column=label_column)


AMAZON_COUNTED = ("also_buy", "also_view", "image", "category")
CHAR_NGRAM_CHARS = 300  # of each value: bounds the cost of long descriptions


def _value_type(name: str, role: str, values: pd.Series) -> str:
    if role == "id":
        return "string"
    if role == "numeric":
        return (
            "price" if name == "price" and not pd.api.types.is_numeric_dtype(values) else "number"
        )
    if role == "text":
        return text_type(values)
    return "tokens"


def as_text(value: Any) -> str:
    """A field as one string: lists are joined, missing values become ""."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if type(value) is list:  # the usual shape, tested before the slower abstract classes
        return " ".join(map(as_text, value))
    if isinstance(value, float) and math.isnan(value):
        return ""
    if isinstance(value, Mapping):
        return " ".join(f"{key} {as_text(item)}" for key, item in value.items())
    if isinstance(value, Iterable):
        return " ".join(as_text(item) for item in value)
    return str(value)


def as_list(value: Any) -> list[Any]:
    """A field as a list of items: a string is one item, missing values are no items."""
    if type(value) is list:  # the usual shape, tested before the slower abstract classes
        return [item for item in value if item is not None and str(item).strip()]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, Mapping):
        return [f"{key}={item}" for key, item in value.items()]
    if isinstance(value, Iterable):
        return [item for item in value if item is not None and str(item).strip()]
    return [value]


def parse_price(value: Any) -> float:
    """`$12.99` → 12.99; a range `$3.99 - $9.99` → its midpoint; anything else → NaN."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) if math.isfinite(value) and value >= 0 else math.nan
    numbers = [float(n.replace(",", "")) for n in _NUMBER.findall(as_text(value))[:2]]
    return sum(numbers) / len(numbers) if numbers else math.nan


def _token(column: str, item: Any) -> str:
    if isinstance(item, str):  # brands, categories, related ids repeat across products
        return _string_token(column, item)
    return _make_token(column, item)


def _make_token(column: str, item: Any) -> str:
    text = _SPACE.sub("_", as_text(item).strip().lower())[:80]
    if column == "details" and "=" in text:
        key, _, val = text.partition("=")
        domain = _DOMAIN.match(val)
        text = f"{key}={domain.group(1)}" if domain else text
    return f"{column}:{text}"


_string_token = lru_cache(maxsize=1 << 16)(_make_token)


def _identity(tokens: list[str]) -> list[str]:
    return tokens


def _records(products: Any) -> list[Record]:
    if isinstance(products, pd.DataFrame):
        return products.to_dict("records")
    return list(products)


class ProductFeaturizer(TransformerMixin, BaseEstimator):
    """TF-IDF per text field, tokens for brand/category/related products/details, character n-grams
    of the product id, and scaled numeric features, stacked into one sparse float32 matrix.

    `linear_chars` > 0 appends one more block, last: character 2-5-grams of all text fields, for
    the linear class scores only (`product_model.stacking`). It always has exactly that many
    columns, the unused ones empty, so the steps after this one know where it starts.
    """

    def __init__(
        self,
        spec: FeatureSpec | None = None,
        text_max_features: int | None = 200_000,
        text_ngram_max: int = 2,
        id_ngram_range: tuple[int, int] = (2, 5),
        min_df: int = 2,
        stemmer: str | None = "english",
        linear_chars: int = 0,
    ) -> None:
        self.spec = spec
        self.text_max_features = text_max_features
        self.text_ngram_max = text_ngram_max
        self.id_ngram_range = id_ngram_range
        self.min_df = min_df
        self.stemmer = stemmer
        self.linear_chars = linear_chars

    def _blocks(self, records: Sequence[Record]) -> dict[str, Any]:
        spec = self.spec or FeatureSpec()
        counted = AMAZON_COUNTED if spec.amazon_counts else ()
        lists = {
            col: [as_list(r.get(col)) for r in records]
            for col in dict.fromkeys((*spec.token_columns, *counted))
        }
        measured = ("description", "title") if spec.amazon_counts else ()
        texts = {
            col: [as_text(r.get(col)) for r in records]
            for col in dict.fromkeys((*spec.text_columns, *spec.char_ngram_columns, *measured))
        }
        blocks: dict[str, Any] = {f"text:{col}": texts[col] for col in spec.text_columns}
        blocks["tokens"] = [
            [_token(col, item) for col in spec.token_columns for item in lists[col][i]]
            for i in range(len(records))
        ]
        for col in spec.char_ngram_columns:
            blocks[f"chars:{col}"] = [text[:CHAR_NGRAM_CHARS] for text in texts[col]]
        if spec.id_column:
            blocks["id"] = [as_text(r.get(spec.id_column)).lower() for r in records]
        blocks["numeric"] = self._numeric(records, spec, lists, texts)
        if getattr(self, "linear_chars", 0):
            blocks["linear_chars"] = [
                " ".join(texts[col][i][:CHAR_NGRAM_CHARS] for col in spec.text_columns)
                for i in range(len(records))
            ]
        return blocks

    @staticmethod
    def _numeric(
        records: Sequence[Record],
        spec: FeatureSpec,
        lists: dict[str, list[list[Any]]],
        texts: dict[str, list[str]],
    ) -> np.ndarray:
        """Numeric fields, then (Amazon catalogs) item counts, text lengths and the price;
        `lists` and `texts` are the fields already read as lists and as text."""
        rows = [[_to_float(r.get(col)) for col in spec.numeric_columns] for r in records]
        if spec.amazon_counts:
            for i, (values, record) in enumerate(zip(rows, records, strict=True)):
                price = parse_price(record.get("price"))
                values += [
                    len(lists["also_buy"][i]),
                    len(lists["also_view"][i]),
                    len(lists["image"][i]),
                    len(lists["category"][i]),
                    len(texts["description"][i]),
                    len(texts["title"][i]),
                    0.0 if math.isnan(price) else price,
                    0.0 if math.isnan(price) else 1.0,
                ]
        matrix = np.asarray(rows, dtype=np.float64).reshape(len(records), -1)
        matrix = np.nan_to_num(matrix, nan=0.0, posinf=0.0, neginf=0.0)
        return np.sign(matrix) * np.log1p(np.abs(matrix))

    def _vectorizer(self, name: str) -> TfidfVectorizer:
        common = {"min_df": self.min_df, "sublinear_tf": True, "dtype": np.float32}
        if name.startswith("text:"):
            return TfidfVectorizer(
                tokenizer=TextCleaner(stemmer=self.stemmer),
                token_pattern=None,
                lowercase=False,
                ngram_range=(1, self.text_ngram_max),
                max_features=self.text_max_features,
                **common,
            )
        if name == "tokens":
            return TfidfVectorizer(analyzer=_identity, **common)
        if name == "linear_chars":
            return TfidfVectorizer(
                analyzer="char_wb", ngram_range=(2, 5), max_features=self.linear_chars, **common
            )
        if name.startswith("chars:"):
            return TfidfVectorizer(
                analyzer="char_wb",
                ngram_range=self.id_ngram_range,
                max_features=self.text_max_features,
                **common,
            )
        return TfidfVectorizer(analyzer="char_wb", ngram_range=self.id_ngram_range, **common)

    def fit(self, products: Any, y: Any = None) -> ProductFeaturizer:
        self.fit_transform(products, y)
        return self

    def fit_transform(self, products: Any, y: Any = None, **_: Any) -> sparse.csr_matrix:
        blocks = self._blocks(_records(products))
        self.vectorizers_: dict[str, TfidfVectorizer] = {}
        parts = []
        for name, docs in blocks.items():
            if name == "numeric":
                self.scaler_ = MinMaxScaler(clip=True).fit(docs) if docs.shape[1] else None
                parts.append(self._scaled(docs))
                continue
            if name == "linear_chars":
                parts.append(self._fit_linear_chars(docs))
                continue
            vectorizer = self._vectorizer(name)
            try:
                parts.append(vectorizer.fit_transform(docs))
            except ValueError:  # an empty vocabulary: this field is blank everywhere
                continue
            self.vectorizers_[name] = vectorizer
        self.feature_names_ = self._names(blocks["numeric"].shape[1])
        return sparse.hstack(parts, format="csr", dtype=np.float32)

    def transform(self, products: Any) -> sparse.csr_matrix:
        blocks = self._blocks(_records(products))
        parts = [
            tfidf_transform(vectorizer, blocks[name])
            for name, vectorizer in self.vectorizers_.items()
        ]
        parts.append(self._scaled(blocks["numeric"]))
        if "linear_chars" in blocks:
            parts.append(self._linear_chars(blocks["linear_chars"]))
        return sparse.hstack(parts, format="csr", dtype=np.float32)

    def _fit_linear_chars(self, docs: list[str]) -> sparse.csr_matrix:
        self.linear_chars_: TfidfVectorizer | None = self._vectorizer("linear_chars")
        try:
            self.linear_chars_.fit(docs)
        except ValueError:  # no text anywhere: the block stays empty
            self.linear_chars_ = None
        return self._linear_chars(docs)

    def _linear_chars(self, docs: list[str]) -> sparse.csr_matrix:
        """The block padded to `linear_chars` columns."""
        if self.linear_chars_ is None:
            return sparse.csr_matrix((len(docs), self.linear_chars), dtype=np.float32)
        block = tfidf_transform(self.linear_chars_, docs)
        block.resize((len(docs), self.linear_chars))
        return block

    def _scaled(self, numeric: np.ndarray) -> sparse.csr_matrix:
        """Numeric features scaled to [0, 1]; no columns (a text-only model) stay no columns."""
        if self.scaler_ is None:
            return sparse.csr_matrix((numeric.shape[0], 0), dtype=np.float32)
        return sparse.csr_matrix(_min_max_scaled(self.scaler_, numeric), dtype=np.float32)

    def _names(self, n_numeric: int) -> np.ndarray:
        names = [
            f"{block}={term}"
            for block, vectorizer in self.vectorizers_.items()
            for term in vectorizer.get_feature_names_out()
        ]
        names += [f"numeric[{i}]" for i in range(n_numeric)]
        if getattr(self, "linear_chars", 0):
            chars = self.linear_chars_
            terms = list(chars.get_feature_names_out()) if chars is not None else []
            terms += [""] * (self.linear_chars - len(terms))
            names += [f"linear_chars={term}" for term in terms]
        return np.asarray(names, dtype=object)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return self.feature_names_

    def oov_shares(self, products: Any) -> np.ndarray:
        """Per product, the share of its cleaned text tokens (every text field) that no text
        vectorizer of the model knows; 1.0 for a product without any text token."""
        records = _records(products)
        text = {n: v for n, v in self.vectorizers_.items() if n.startswith("text:")}
        known = [0] * len(records)
        seen = [0] * len(records)
        for name, vectorizer in text.items():
            column, vocabulary = name.removeprefix("text:"), vectorizer.vocabulary_
            for i, record in enumerate(records):
                tokens = vectorizer.tokenizer(as_text(record.get(column)))
                seen[i] += len(tokens)
                known[i] += sum(token in vocabulary for token in tokens)
        return np.array([1.0 - k / s if s else 1.0 for k, s in zip(known, seen, strict=True)])


class FixedColumns(TransformerMixin, BaseEstimator):
    """Keeps a fixed list of columns: a fitted feature selection, frozen for serving."""

    def __init__(self, columns: Any = None) -> None:
        self.columns = columns

    def fit(self, X: Any, y: Any = None) -> FixedColumns:
        return self

    def transform(self, X: Any) -> Any:
        return X[:, self.columns]

    def __sklearn_is_fitted__(self) -> bool:
        return True


def _min_max_scaled(scaler: MinMaxScaler, values: np.ndarray) -> np.ndarray:
    """`scaler.transform(values)` for float64 values: the same arithmetic without the input
    checks, which cost more than the arithmetic for a few products."""
    scaled = np.array(values, dtype=np.float64)
    scaled *= scaler.scale_
    scaled += scaler.min_
    if scaler.clip:
        np.clip(scaled, scaler.feature_range[0], scaler.feature_range[1], out=scaled)
    return scaled


def _to_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
