"""Multi-label tags and category paths end to end through a real `mlflow server`: a small tag
catalog (CSV, tags separated by '|') and a small path catalog (JSON lines, lists) are trained with
the CLI, registered and served; obvious products get their tags, or their path, over /v1/predict,
/invocations and the v2 protocol; thresholds come from the training rows alone."""

from __future__ import annotations

import csv
import json
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.batch_catalog import classify
from tests.support import (
    ServingProcess,
    free_port,
    launch_server,
    start_mlflow_server,
    stop_process,
    tracking_uri_restored,
    wait_for_http,
)

pytestmark = pytest.mark.integration

TAGS_MODEL, PATH_MODEL = "shop-tags", "shop-paths"
KINDS = {  # tag: words that give it away
    "clothing": ["jacket", "shirt", "trousers", "coat", "hoodie"],
    "footwear": ["boots", "sneakers", "sandals", "trainers"],
    "electronics": ["headphones", "speaker", "charger", "radio"],
}
MODIFIERS = {
    "waterproof": ["waterproof", "rainproof", "water-resistant"],
    "kids": ["kids", "children's", "junior"],
}
PATHS = {  # path: words that give its leaf away
    ("Clothing", "Jackets"): ["jacket", "parka", "anorak"],
    ("Clothing", "Shoes", "Boots"): ["boots", "wellingtons", "hiking boots"],
    ("Clothing", "Shoes", "Sandals"): ["sandals", "flip-flops", "sliders"],
    ("Electronics", "Audio", "Headphones"): ["headphones", "earbuds", "headset"],
    ("Electronics", "Audio", "Speakers"): ["speaker", "soundbar", "boombox"],
    ("Electronics", "Chargers"): ["charger", "power adapter", "usb charger"],
}
BRANDS = ["Acme", "Northwind", "Globex", "Initech", "Umbrella", "Stark", "Wayne"]
COLOURS = ["black", "red", "navy", "grey", "green", "white"]


def tag_rows(rng: random.Random, count: int) -> list[tuple[str, str]]:
    """(title, tags joined by '|'): one kind per product, each modifier with chance 0.35."""
    rows = []
    for _ in range(count):
        kind = rng.choice(sorted(KINDS))
        tags = [kind] + [m for m in sorted(MODIFIERS) if rng.random() < 0.35]
        words = [rng.choice(MODIFIERS[m]) for m in tags[1:]] + [rng.choice(KINDS[kind])]
        title = f"{rng.choice(BRANDS)} {' '.join(words)} {rng.choice(COLOURS)}"
        rows.append((title, "|".join(tags)))
    return rows


def write_tag_catalog(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Title", "Tags"])
        writer.writerows(rows)
    return path


def write_path_catalog(path: Path, count: int = 480) -> Path:
    rng = random.Random(11)
    with path.open("w") as handle:
        for i in range(count):
            levels = rng.choice(sorted(PATHS))
            title = f"{rng.choice(BRANDS)} {rng.choice(PATHS[levels])} {rng.choice(COLOURS)}"
            record = {"sku": f"sku-{i}", "title": title, "category": "/".join(levels)}
            handle.write(json.dumps(record) + "\n")
    return path


def train_cli(root: Path, url: str, *options: str) -> None:
    command = [sys.executable, "-m", "training", *options, "--tracking-uri", url]
    command += [
        "--n-estimators",
        "60",
        "--min-df",
        "1",
        "--no-amazon-counts",
        "--min-tag-count",
        "5",
    ]
    done = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


TAG_OPTIONS = ["--task", "multilabel", "--label-column", "Tags", "--label-separator", "|"]
TAG_OPTIONS += ["--text-columns", "Title", "--token-columns", "", "--id-column", ""]
TAG_OPTIONS += ["--model-name", TAGS_MODEL]


@pytest.fixture(scope="module")
def tag_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A tracking server holding a tag model and a path model; (url, folder)."""
    root = tmp_path_factory.mktemp("multilabel")
    port = free_port()
    server = start_mlflow_server(root, port)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/health", timeout=120, process=server)
        rows = tag_rows(random.Random(7), 480)
        train_cli(
            root, url, "--data", str(write_tag_catalog(root / "tags.csv", rows)), *TAG_OPTIONS
        )
        path_catalog = write_path_catalog(root / "paths.jsonl")
        train_cli(
            root,
            url,
            *("--data", str(path_catalog), "--task", "path", "--label-column", "category"),
            *("--label-separator", "/"),
            *("--text-columns", "title", "--token-columns", "", "--id-column", "sku"),
            *("--model-name", PATH_MODEL),
        )
        yield url, root
    finally:
        stop_process(server)


@pytest.fixture(scope="module")
def tag_server(tag_registry, tmp_path_factory) -> Iterator[ServingProcess]:
    yield from serve(tag_registry[0], TAGS_MODEL, tmp_path_factory.mktemp("tag-serving"))


@pytest.fixture(scope="module")
def path_server(tag_registry, tmp_path_factory) -> Iterator[ServingProcess]:
    yield from serve(tag_registry[0], PATH_MODEL, tmp_path_factory.mktemp("path-serving"))


def serve(url: str, model: str, folder: Path) -> Iterator[ServingProcess]:
    server = launch_server(folder, MLFLOW_TRACKING_URI=url, MODEL_NAME=model)
    try:
        server.wait_ready(timeout=180)
        yield server
    finally:
        stop_process(server.process)


def tag_names(prediction: dict[str, Any]) -> set[str]:
    return {entry["label"] for entry in prediction["tags"]}


OBVIOUS_TAGS = [
    ("Acme waterproof kids jacket red", {"clothing", "waterproof", "kids"}),
    ("Globex headphones black", {"electronics"}),
    ("Stark rainproof boots green", {"footwear", "waterproof"}),
]


def test_obvious_products_get_their_tags(tag_server: ServingProcess) -> None:
    products = [{"Title": title} for title, _ in OBVIOUS_TAGS]
    status, body = tag_server.post("/v1/predict", {"products": products, "top_k": 2})
    assert status == 200, body
    for prediction, (title, tags) in zip(body["predictions"], OBVIOUS_TAGS, strict=True):
        assert tag_names(prediction) == tags, (title, prediction)
        assert len(prediction["top_k"]) == 2
        assert prediction["label"] in tags
        assert all(0 < entry["probability"] <= 1 for entry in prediction["tags"])


def test_the_model_says_its_task_and_metrics_count_tags(tag_server: ServingProcess) -> None:
    status, card = tag_server.get("/v1/model")
    assert status == 200
    assert card["task"] == "multilabel"
    assert set(card["classes"]) == {*KINDS, *MODIFIERS}
    tag_server.post("/v1/predict", {"products": [{"Title": OBVIOUS_TAGS[0][0]}]})
    text = tag_server.metrics_text()
    counted = [line for line in text.splitlines() if line.startswith("predictions_total{")]
    assert any('label="waterproof"' in line and not line.endswith(" 0.0") for line in counted)
    assert all(any(f'"{tag}"' in line for tag in [*KINDS, *MODIFIERS]) for line in counted)


def test_invocations_and_v2_carry_the_tags(tag_server: ServingProcess) -> None:
    title, tags = OBVIOUS_TAGS[0]
    status, body = tag_server.post("/invocations", {"dataframe_records": [{"Title": title}]})
    assert status == 200, body
    assert set(body["predictions"][0]["tags"]) == tags
    assert len(body["predictions"][0]["tag_probabilities"]) == len(tags)
    request = {
        "inputs": [
            {
                "name": "Title",
                "datatype": "BYTES",
                "shape": [2],
                "data": [title, OBVIOUS_TAGS[1][0]],
            }
        ]
    }
    status, body = tag_server.post(f"/v2/models/{TAGS_MODEL}/infer", request)
    assert status == 200, body
    outputs = {output["name"]: output for output in body["outputs"]}
    assert outputs["tags"]["shape"] == [2, 3]
    assert set(outputs["tags"]["data"][:3]) == tags
    assert outputs["tags"]["data"][4:] == ["", ""]  # the second product's answer, padded


def test_thresholds_are_chosen_without_the_holdout(tag_registry: tuple[str, Path]) -> None:
    """Retrain on the same catalog with every holdout row's tags replaced: the thresholds (and
    the forest) learn nothing from the holdout, so they do not move."""
    import mlflow

    from training.catalog_split import split_definition
    from training.config import TrainConfig

    url, root = tag_registry
    rows = tag_rows(random.Random(7), 480)
    config = TrainConfig(text_columns=["Title"], id_column="")
    held = split_definition(config).held_out(_frame(rows))
    changed = [
        (t, "electronics|kids" if out else tags) for (t, tags), out in zip(rows, held, strict=True)
    ]
    catalog = write_tag_catalog(root / "tags-changed-holdout.csv", changed)
    train_cli(root, url, "--data", str(catalog), *TAG_OPTIONS)
    with tracking_uri_restored():
        mlflow.set_tracking_uri(url)
        first, second = (_contract(TAGS_MODEL, version) for version in ("1", "2"))
    assert first["tags"] == second["tags"]
    assert first["tags"]["thresholds"] != [0.5] * len(first["tags"]["tags"])


def _frame(rows: list[tuple[str, str]]) -> Any:
    import pandas as pd

    return pd.DataFrame(rows, columns=["Title", "Tags"])


def _contract(name: str, version: str) -> dict[str, Any]:
    import mlflow.pyfunc

    wrapper = mlflow.pyfunc.load_model(f"models:/{name}/{version}").unwrap_python_model()
    return dict(wrapper.metadata["contract"])


OBVIOUS_PATHS = [
    ("Acme anorak navy", ["Clothing", "Jackets"]),
    ("Wayne wellingtons green", ["Clothing", "Shoes", "Boots"]),
    ("Initech earbuds white", ["Electronics", "Audio", "Headphones"]),
    ("Globex usb charger black", ["Electronics", "Chargers"]),
]


def test_obvious_products_get_their_path(path_server: ServingProcess) -> None:
    products = [{"title": title} for title, _ in OBVIOUS_PATHS]
    status, body = path_server.post("/v1/predict", {"products": products})
    assert status == 200, body
    for prediction, (title, levels) in zip(body["predictions"], OBVIOUS_PATHS, strict=True):
        assert [level["label"] for level in prediction["path"]] == levels, (title, prediction)
        assert prediction["label"] == "/".join(levels), "spelled as the catalog spells it"
        assert prediction["probability"] == prediction["path"][-1]["probability"]
    status, card = path_server.get("/v1/model")
    assert status == 200 and "Electronics/Audio/Headphones" in card["classes"]


def test_path_over_invocations(path_server: ServingProcess) -> None:
    title, levels = OBVIOUS_PATHS[1]
    status, body = path_server.post("/invocations", {"instances": [{"title": title}]})
    assert status == 200, body
    assert body["predictions"][0]["path"] == levels
    assert body["predictions"][0]["label"] == "/".join(levels)
    assert len(body["predictions"][0]["path_probabilities"]) == len(levels)
    assert all(label.count(" > ") == 0 for label in body["predictions"][0]["top_labels"])


def test_path_over_v2(path_server: ServingProcess) -> None:
    titles = [title for title, _ in OBVIOUS_PATHS[:2]]
    request = {"inputs": [{"name": "title", "datatype": "BYTES", "shape": [2], "data": titles}]}
    status, body = path_server.post(f"/v2/models/{PATH_MODEL}/infer", request)
    assert status == 200, body
    outputs = {output["name"]: output for output in body["outputs"]}
    assert outputs["label"]["data"] == ["Clothing/Jackets", "Clothing/Shoes/Boots"]
    assert outputs["path"]["shape"] == [2, 3]
    assert outputs["path"]["data"] == ["Clothing", "Jackets", "", "Clothing", "Shoes", "Boots"]
    assert outputs["path_probabilities"]["data"][2] == 0.0  # the first product's padding


def test_a_single_label_model_answers_as_before(serve_registry) -> None:
    """No tags, no path, the same four outputs: single-label answers keep their shape."""
    server = serve_registry()
    product = {"title": "Perl module for parsing XML", "asin": "libxml-parser-perl"}
    status, body = server.post("/v1/predict", {"products": [product], "top_k": 2})
    assert status == 200, body
    assert set(body["predictions"][0]) == {"label", "probability", "top_k"}
    status, body = server.post("/invocations", {"dataframe_records": [product]})
    assert set(body["predictions"][0]) == {
        "label",
        "probability",
        "top_labels",
        "top_probabilities",
    }
    status, card = server.get("/v1/model")
    assert card["task"] == "single_label"


# Labels among the tags. A copy of the tag model whose kinds can never pass their threshold
# (above 1) and whose modifiers pass at 0.5: a kids jacket's most probable tag is `clothing`,
# which the model rejects, and `kids` is what it answers; a plain jacket passes nothing and
# answers `clothing` alone. The "old" copy's own code answers as models saved before labels were
# taken from the tags did (`label` the most probable class): the server applies the rule itself.
NEVER, HALF = 1.01, 0.5
LABEL_CASES = [  # title, the tags answered (the first is the label)
    ("Acme kids jacket red", ["kids"]),
    ("Globex waterproof kids coat navy", ["kids", "waterproof"]),
    ("Stark jacket green", ["clothing"]),
]
OLD_LABEL_RULE = '''

_with_answers = with_answers


def with_answers(answer, chosen, task, separator):
    """As saved before the fix: a multilabel `label` is the most probable class."""
    label, probability = answer["label"].copy(), answer["probability"].copy()
    frame = _with_answers(answer, chosen, task, separator)
    return frame if task == PATH else frame.assign(label=label, probability=probability)
'''


@pytest.fixture(scope="module")
def rethresholded(tag_registry, tmp_path_factory) -> dict[str, Path]:
    """{"new": the tag model with the thresholds above, "old": the same saved with the old rule}."""
    import mlflow.artifacts

    url, _ = tag_registry
    folder = tmp_path_factory.mktemp("rethresholded")
    with tracking_uri_restored():
        mlflow.set_tracking_uri(url)
        uri = f"models:/{TAGS_MODEL}/1"
        new = Path(mlflow.artifacts.download_artifacts(uri, dst_path=folder / "new"))
    metadata_path = new / "artifacts" / "metadata.json"
    metadata = json.loads(metadata_path.read_text())
    tags = metadata["contract"]["tags"]
    tags["thresholds"] = [NEVER if tag in KINDS else HALF for tag in tags["tags"]]
    metadata_path.write_text(json.dumps(metadata))
    old = Path(shutil.copytree(new, folder / "old"))
    pyfunc = old / "code" / "product_model" / "pyfunc.py"
    pyfunc.write_text(pyfunc.read_text() + OLD_LABEL_RULE)
    assert own_label(old, LABEL_CASES[0][0], folder) == "clothing", "the old copy's own answer"
    return {"new": new, "old": old}


OWN_LABEL = """
import sys, mlflow.pyfunc, pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
print(model.predict(pd.DataFrame({"Title": [sys.argv[2]]}))["label"][0])
"""


def own_label(model: Path, title: str, cwd: Path) -> str:
    """The label the model's own code answers (as `mlflow models serve` would), in a fresh
    Python that has imported no `product_model` of its own."""
    command = [sys.executable, "-c", OWN_LABEL, str(model), title]
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def folder_server(model: Path, folder: Path) -> Iterator[ServingProcess]:
    server = launch_server(folder, MODEL_URI=str(model), MODEL_NAME=TAGS_MODEL)
    try:
        server.wait_ready(timeout=180)
        yield server
    finally:
        stop_process(server.process)


@pytest.fixture(scope="module", params=["new", "old"])
def rethresholded_server(request, rethresholded, tmp_path_factory) -> Iterator[ServingProcess]:
    yield from folder_server(rethresholded[request.param], tmp_path_factory.mktemp("label-serving"))


def test_a_served_label_is_the_most_probable_tag_answered(
    rethresholded_server: ServingProcess,
) -> None:
    """Over /v1/predict, /invocations and v2, for a model saved with or without the rule: the
    server decides the label from the tags the model answers, whatever its own code says."""
    titles = [title for title, _ in LABEL_CASES]
    status, body = rethresholded_server.post(
        "/v1/predict", {"products": [{"Title": t} for t in titles]}
    )
    assert status == 200, body
    for prediction, (title, tags) in zip(body["predictions"], LABEL_CASES, strict=True):
        assert [tag["label"] for tag in prediction["tags"]] == tags, (title, prediction)
        assert prediction["label"] == tags[0], (title, prediction)
        assert prediction["probability"] == prediction["tags"][0]["probability"]
        assert prediction["top_k"][0]["label"] == "clothing"
    status, body = rethresholded_server.post(
        "/invocations", {"instances": [{"Title": t} for t in titles]}
    )
    assert status == 200, body
    assert [p["label"] for p in body["predictions"]] == [tags[0] for _, tags in LABEL_CASES]
    assert all(p["probability"] == p["tag_probabilities"][0] for p in body["predictions"])
    request = {"inputs": [{"name": "Title", "datatype": "BYTES", "shape": [3], "data": titles}]}
    status, body = rethresholded_server.post(f"/v2/models/{TAGS_MODEL}/infer", request)
    assert status == 200, body
    outputs = {output["name"]: output["data"] for output in body["outputs"]}
    assert outputs["label"] == [tags[0] for _, tags in LABEL_CASES]
    assert outputs["tags"][::2] == outputs["label"]  # each product's first tag (width 2)


@pytest.mark.parametrize(
    ("saved", "engine"), [("new", "local"), ("old", "local"), ("old", "spark")]
)
def test_batch_labels_are_the_most_probable_tags_answered(
    rethresholded: dict[str, Path], tmp_path: Path, saved: str, engine: str
) -> None:
    """`product-classify` answers as the server, on both engines, also for a model saved with
    the old rule (its own code gives its most probable tag as `label`)."""
    import pandas as pd

    catalog = tmp_path / "catalog.csv"
    catalog.write_text("Title\n" + "".join(f"{title}\n" for title, _ in LABEL_CASES))
    output = tmp_path / "labels.parquet"
    args = ["--model", str(rethresholded[saved]), "--data", str(catalog), "--output", str(output)]
    if engine == "spark":
        args += ["--engine", "spark", "--spark-master", "local[2]"]
    assert classify(*args) == 0
    rows = pd.read_parquet(output).to_dict("records")
    assert [list(row["tags"]) for row in rows] == [tags for _, tags in LABEL_CASES]
    assert [row["label"] for row in rows] == [tags[0] for _, tags in LABEL_CASES]
    assert all(row["probability"] == row["tag_probabilities"][0] for row in rows)
    assert [row["top_labels"][0] for row in rows] == ["clothing"] * len(rows)
