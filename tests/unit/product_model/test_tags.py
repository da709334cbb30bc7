"""What multilabel and path models answer from their per-tag probabilities."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from product_model.tags import MULTILABEL, PATH, TagDecoder, path_nodes

NODES = ("A", "A > B", "A > B > C", "A > D", "E", "E > F")


def path_decoder(threshold: float = 0.5) -> TagDecoder:
    return TagDecoder(PATH, NODES, (threshold,) * len(NODES))


def test_path_nodes_are_named_by_their_full_path() -> None:
    assert path_nodes(["A", "B", "C"]) == ["A", "A > B", "A > B > C"]


def test_tags_above_their_own_thresholds_most_probable_first() -> None:
    decoder = TagDecoder(MULTILABEL, ("x", "y", "z"), (0.3, 0.6, 0.1))
    proba = np.array([[0.35, 0.55, 0.9], [0.2, 0.7, 0.05]])
    assert decoder.answers(proba) == [[("z", 0.9), ("x", 0.35)], [("y", 0.7)]]


def test_a_product_gets_at_least_its_most_probable_tag() -> None:
    decoder = TagDecoder(MULTILABEL, ("x", "y"), (0.9, 0.9))
    assert decoder.label_sets(np.array([[0.2, 0.4]])) == [["y"]]


def test_path_descends_only_under_the_predicted_parent() -> None:
    # "A > B > C" is the most probable node, but its parent loses to "A > D" under A, and
    # "E > F" is likely but E lost at the top level.
    proba = np.array([[0.8, 0.55, 0.95, 0.6, 0.2, 0.9]])
    assert path_decoder().label_sets(proba) == [["A", "A > D"]]


def test_path_stops_where_the_best_child_misses_its_threshold() -> None:
    proba = np.array([[0.3, 0.1, 0.0, 0.2, 0.7, 0.45], [0.9, 0.8, 0.7, 0.1, 0.1, 0.0]])
    assert path_decoder().answers(proba) == [
        [("E", 0.7)],
        [("A", 0.9), ("B", 0.8), ("C", 0.7)],
    ]


def test_every_answered_path_is_consistent() -> None:
    rng = np.random.default_rng(0)
    for nodes in path_decoder(0.3).label_sets(rng.random((200, len(NODES)))):
        for parent, child in itertools.pairwise(nodes):
            assert child.rsplit(" > ", 1)[0] == parent
        assert " > " not in nodes[0]


def test_a_path_node_without_its_parent_is_refused() -> None:
    with pytest.raises(ValueError, match="no parent node 'A > B'"):
        TagDecoder(PATH, ("A", "A > B > C"), (0.5, 0.5))


def test_decoder_round_trips_through_the_contract() -> None:
    decoder = path_decoder(0.25)
    restored = TagDecoder.from_contract({"task": PATH, "tags": decoder.to_dict()})
    assert restored == decoder
    assert TagDecoder.from_contract({"task": "single_label"}) is None


def test_a_path_model_answers_with_its_own_separator() -> None:
    from product_model.pyfunc import with_answers

    nodes = ("Desktop", "Desktop/games", "Desktop/games/graphical", "Science")
    decoder = TagDecoder(PATH, nodes, (0.5,) * 4, "/")
    proba = np.array([[0.9, 0.8, 0.7, 0.1]])
    assert decoder.answers(proba) == [[("Desktop", 0.9), ("games", 0.8), ("graphical", 0.7)]]
    restored = TagDecoder.from_contract({"task": PATH, "tags": decoder.to_dict()})
    assert restored == decoder and restored.separator == "/"
    frame = with_answers(pd.DataFrame({"label": ["x"]}), decoder.answers(proba), PATH, "/")
    assert frame["label"].tolist() == ["Desktop/games/graphical"]
