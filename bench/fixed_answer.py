"""This server with the model's work taken out, for `bench_http_ceiling`: `python -m
bench.fixed_answer` starts `serving` as usual, but every model call answers, for each product, the
probabilities the loaded model gave its first product (computed once, by the real model).

Everything else runs as served: routing, validation, batching on the model threads, ranking,
metrics, drift observation, the access log and the JSON answers. Its rate is what one process
could reach if the model's features and forest walk cost nothing. A benchmark tool only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from serving.__main__ import main
from serving.model import ServedModel

_real_predict_proba = ServedModel.predict_proba
_answers: dict[tuple[str, str], np.ndarray] = {}


def fixed_predict_proba(
    model: ServedModel,
    products: list[dict[str, Any]],
    before_walk: Callable[[], None] | None = None,
) -> np.ndarray:
    """The model's answer for its first product ever asked, once per product."""
    key = (model.ref.name, model.ref.version)
    if key not in _answers:
        _answers[key] = _real_predict_proba(model, products[:1])[0]
    if before_walk is not None:
        before_walk()
    return np.tile(_answers[key], (len(products), 1))


if __name__ == "__main__":
    ServedModel.predict_proba = fixed_predict_proba  # type: ignore[method-assign]
    main()
