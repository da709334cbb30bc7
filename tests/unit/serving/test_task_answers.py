"""What multilabel and path models add to an answer, in every protocol; single-label answers keep
their shape."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from product_model.tags import MULTILABEL, TagDecoder
from serving.answers import answered_classes, as_prediction, ranked_labels, task_answer
from serving.invocations import mlflow_prediction
from serving.v2 import output_columns, outputs_of
from serving.validation import RequestContract

TOP = [{"label": "a", "probability": 0.9}, {"label": "b", "probability": 0.4}]


def model(task: str) -> SimpleNamespace:
    return SimpleNamespace(contract=RequestContract((), task), path_separator=" > ")


def test_multilabel_answer_lists_its_tags_and_its_label_is_the_first() -> None:
    answer = task_answer(model("multilabel"), [("a", 0.9), ("c", 0.3333333333)])
    assert answer == {
        "label": "a",
        "probability": 0.9,
        "tags": [{"label": "a", "probability": 0.9}, {"label": "c", "probability": 0.333333}],
    }


def test_a_multilabel_label_is_a_tag_the_model_answers() -> None:
    """`x` is the most probable tag but misses its threshold; `z` passes: the answer's label
    is `z`, in every protocol, though `top_k` still ranks `x` first."""
    decoder = TagDecoder(MULTILABEL, ("x", "y", "z"), (0.9, 0.5, 0.3))
    proba = np.array([[0.5, 0.1, 0.3500001]])
    order = np.argsort(-proba, axis=1, kind="stable")
    ranked = ranked_labels(proba, order, np.asarray(decoder.tags))
    answer = as_prediction(ranked[0]) | task_answer(model("multilabel"), decoder.answers(proba)[0])
    assert answer["top_k"][0]["label"] == "x"
    assert (answer["label"], answer["probability"]) == ("z", 0.35)
    assert [tag["label"] for tag in answer["tags"]] == ["z"]
    assert mlflow_prediction(answer)["label"] == "z"
    assert output_columns([answer])["label"] == ("BYTES", [1], ["z"])
    assert output_columns([answer])["probability"][2] == [0.35]


def test_path_answer_is_the_path_with_its_deepest_probability() -> None:
    answer = task_answer(model("path"), [("A", 0.9), ("B", 0.7)])
    assert answer["label"] == "A > B" and answer["probability"] == 0.7
    assert [level["label"] for level in answer["path"]] == ["A", "B"]


def test_metrics_count_the_model_s_own_classes() -> None:
    labels, confidences = answered_classes(model("path"), [[("A", 0.9), ("B", 0.7)], [("C", 0.6)]])
    assert labels == ["A", "A > B", "C"] and confidences == [0.7, 0.6]
    labels, confidences = answered_classes(model("multilabel"), [[("x", 0.8), ("y", 0.5)]])
    assert labels == ["x", "y"] and confidences == [0.8]


def test_invocations_rows() -> None:
    single = {"label": "a", "probability": 0.9, "top_k": TOP}
    assert set(mlflow_prediction(single)) == {
        "label",
        "probability",
        "top_labels",
        "top_probabilities",
    }
    tagged = single | {"tags": TOP}
    assert mlflow_prediction(tagged)["tags"] == ["a", "b"]
    assert mlflow_prediction(tagged)["tag_probabilities"] == [0.9, 0.4]
    assert mlflow_prediction(single | {"path": TOP})["path_probabilities"] == [0.9, 0.4]


def test_v2_pads_tags_to_the_longest_answer() -> None:
    rows = [
        {"label": "a", "probability": 0.9, "top_k": TOP, "tags": TOP},
        {"label": "b", "probability": 0.4, "top_k": TOP, "tags": TOP[:1]},
    ]
    columns = output_columns(rows)
    assert columns["tags"] == ("BYTES", [2, 2], ["a", "b", "a", ""])
    assert columns["tag_probabilities"][2] == [0.9, 0.4, 0.9, 0.0]
    assert "tags" not in output_columns([{k: v for k, v in rows[0].items() if k != "tags"}])
    assert [name for name, _, _ in outputs_of("single_label")] == [
        "label",
        "probability",
        "top_labels",
        "top_probabilities",
    ]
    assert "path_probabilities" in [name for name, _, _ in outputs_of("path")]
