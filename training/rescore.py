"""Predict with a registered model in a clean interpreter, for the champion gate.

Run as a script (`python rescore.py MODEL_URI ROWS.pkl ANSWER.json`), not as part of the
`training` package: the model then imports its own copy of its code (MLflow puts the model's
`code/` folder first on sys.path), whatever version of `product_model` training has installed.
Writes {"labels": [...], "split": the model's split definition or null, "classes": [...]}, the
input fields its contract declares (`fields`, as its metadata holds them) and their fill rates on
its own holdout (`fill_rate`, from its reference profile) when it has them, and for a multilabel
or path model its answered tag sets (`tag_sets`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd


def main(model_uri: str, rows_path: str, answer_path: str) -> None:
    model = mlflow.pyfunc.load_model(model_uri).unwrap_python_model()
    rows = pd.read_pickle(rows_path)
    contract = getattr(model, "contract", None)  # models from before input contracts have none
    if contract is not None:
        rows = contract.coerce_frame(rows)
    proba = np.asarray(model.predict_proba(rows))
    labels = np.asarray(model.classes)[proba.argmax(axis=1)]
    metadata = getattr(model, "metadata", None) or {}
    answer = {
        "labels": [str(label) for label in labels],
        "split": metadata.get("split"),
        "classes": [str(label) for label in model.classes],  # the gate names a change of classes
    }
    # the gate checks that this run's catalog has them, and names a change of fields
    if "fields" in metadata.get("contract", {}):
        answer["fields"] = metadata["contract"]["fields"]
    if "fill_rate" in (metadata.get("profile") or {}):
        answer["fill_rate"] = metadata["profile"]["fill_rate"]
    decoder = getattr(model, "decoder", None)  # multilabel and path models
    if decoder is not None:
        answer["tag_sets"] = decoder.label_sets(proba)
    Path(answer_path).write_text(json.dumps(answer), "utf-8")


if __name__ == "__main__":
    main(*sys.argv[1:4])
