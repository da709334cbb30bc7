"""The BentoML peer for bench_serving: the registered model behind one batchable API.

    BENCH_MODEL_URI=models:/product-classifier@champion MLFLOW_TRACKING_URI=... \
        bentoml serve bench.bentoml_service:ProductClassifier --host 127.0.0.1 --port 3000

Adaptive batching as BentoML documents it (`batchable=True`, `max_batch_size=32`), one worker
(`BENCH_WORKERS`, set by bench_serving's --workers, for more).
Runs in a virtual environment of its own (`make bench-bentoml-venv`), since BentoML's pins clash
with this project's constraints; bench_serving finds it with --bentoml-python.
"""

from __future__ import annotations

import os
from typing import Any

import bentoml


@bentoml.service(workers=int(os.environ.get("BENCH_WORKERS", "1")))
class ProductClassifier:
    def __init__(self) -> None:
        import mlflow.pyfunc

        uri = os.environ["BENCH_MODEL_URI"]
        self.model = mlflow.pyfunc.load_model(uri).unwrap_python_model()

    @bentoml.api(batchable=True, max_batch_size=32, max_latency_ms=1000)
    def predict(self, products: list[dict[str, Any]]) -> list[dict[str, Any]]:
        proba = self.model.predict_proba(products)
        best = proba.argmax(axis=1)
        return [
            {"label": str(self.model.classes[j]), "probability": float(row[j])}
            for row, j in zip(proba, best, strict=True)
        ]
