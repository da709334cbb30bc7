"""A catalog not shaped like Amazon's, end to end through a real `mlflow server`: a CSV with a messy
header, label variants merged by a label map, a numeric column and no id column is trained with
the CLI, registered, served by its own field names over /v1/predict and /invocations, and
`/invocations` answers as `mlflow models serve` does for the same model."""

from __future__ import annotations

import csv
import random
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import (
    ServingProcess,
    free_port,
    http_json,
    launch_server,
    start_mlflow_models_serve,
    start_mlflow_server,
    stop_process,
    wait_for_http,
)

pytestmark = pytest.mark.integration

MODEL = "own-catalog"
KINDS = {
    "Mobile Phones": (
        ["Samsung Galaxy", "Apple iPhone", "Google Pixel", "Motorola Moto", "Nokia"],
        ["smartphone", "5G phone", "dual SIM mobile", "unlocked cell phone"],
        (140, 230),
    ),
    "CPUs": (
        ["AMD Ryzen", "Intel Core i7", "Intel Core i5", "AMD Threadripper", "Intel Xeon"],
        ["processor", "desktop CPU", "8-core processor", "boxed CPU socket AM4"],
        (30, 90),
    ),
    "Fridges": (
        ["Bosch", "Beko", "Samsung", "Hotpoint", "Indesit"],
        ["fridge freezer", "larder fridge", "under counter fridge", "refrigerator 60cm"],
        (40_000, 90_000),
    ),
    "Laptops": (
        ["Lenovo ThinkPad", "Dell XPS", "HP EliteBook", "Asus ZenBook", "Acer Swift"],
        ["laptop 14 inch", "notebook computer", "ultrabook 16GB RAM", "business laptop"],
        (900, 2500),
    ),
}
VARIANTS = {"Mobile Phones": "Mobile Phone", "CPUs": "CPU", "Fridges": "fridge"}


def write_catalog(path: Path, rows_per_kind: int = 110) -> Path:
    """A price-comparison style CSV: spaces in the header, variant labels, a weight column."""
    rng = random.Random(5)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([" Product Title", "Merchant ", " Category Label ", "Weight (g)"])
        for label, (brands, nouns, weight) in KINDS.items():
            for i in range(rows_per_kind):
                title = f"{rng.choice(brands)} {rng.randint(2, 99)}{rng.choice('XSU ')} "
                title += f"{rng.choice(nouns)} {rng.choice(['black', 'silver', 'white', ''])}"
                written = VARIANTS.get(label, label) if i % 5 == 0 else label
                grams = "" if i % 17 == 0 else str(rng.randint(*weight))
                writer.writerow([title.strip(), f"shop-{rng.randint(1, 30)}", written, grams])
    return path


@pytest.fixture(scope="module")
def own_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A tracking server holding the model trained on the CSV with the CLI; (url, folder)."""
    root = tmp_path_factory.mktemp("own-catalog")
    port = free_port()
    server = start_mlflow_server(root, port)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/health", timeout=120, process=server)
        catalog = write_catalog(root / "listings.csv")
        label_map = root / "labels.yaml"
        label_map.write_text("Mobile Phone: Mobile Phones\nCPU: CPUs\nfridge: Fridges\n")
        done = train_cli(root, url, catalog, label_map)
        assert done.returncode == 0, done.stderr
        yield url, root
    finally:
        stop_process(server)


def train_cli(
    root: Path, url: str, catalog: Path, label_map: Path
) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "training",
        "--data",
        str(catalog),
        "--label-column",
        "Category Label",
        "--text-columns",
        "Product Title",
        "--token-columns",
        "Merchant",
        "--numeric-columns",
        "Weight (g)",
        "--id-column",
        "",
        "--no-amazon-counts",
        "--label-map",
        str(label_map),
        "--n-estimators",
        "30",
        "--min-df",
        "1",
        "--tracking-uri",
        url,
        "--model-name",
        MODEL,
    ]
    return subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=600)


OBVIOUS = [
    ({"Product Title": "Samsung Galaxy S21 5G smartphone 128GB"}, "Mobile Phones"),
    ({"Product Title": "AMD Ryzen 7 5800X desktop processor", "Weight (g)": 60}, "CPUs"),
    ({"Product Title": "Bosch fridge freezer 60cm white", "Weight (g)": "65000"}, "Fridges"),
    ({"Product Title": "Lenovo ThinkPad business laptop 14 inch"}, "Laptops"),
]


@pytest.fixture(scope="module")
def served(
    own_model: tuple[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServingProcess]:
    url, _ = own_model
    server = launch_server(
        tmp_path_factory.mktemp("own-serving"), MLFLOW_TRACKING_URI=url, MODEL_NAME=MODEL
    )
    try:
        server.wait_ready()
        yield server
    finally:
        stop_process(server.process)


def test_training_merged_the_variants(own_model: tuple[str, Path]) -> None:
    from mlflow.tracking import MlflowClient

    url, _ = own_model
    version = MlflowClient(url).get_model_version_by_alias(MODEL, "champion")
    run = MlflowClient(url).get_run(version.run_id)
    assert run.data.metrics["data_classes"] == 4
    # a token column: the linear scores read words only, and the run says so (not "None")
    assert run.data.params["linear_char_features"] == "0"


def test_model_card_lists_the_catalogs_own_fields(served: ServingProcess) -> None:
    status, card = served.get("/v1/model")
    assert status == 200
    fields = {f["name"]: (f["role"], f["type"]) for f in card["input_fields"]}
    assert fields == {
        "Product Title": ("text", "string"),
        "Merchant": ("tokens", "tokens"),
        "Weight (g)": ("numeric", "number"),
    }
    assert sorted(card["classes"]) == ["CPUs", "Fridges", "Laptops", "Mobile Phones"]


def test_obvious_products_land_where_they_must(served: ServingProcess) -> None:
    body = {"products": [product for product, _ in OBVIOUS]}
    status, answer = served.post("/v1/predict", body)
    assert status == 200, answer
    assert [p["label"] for p in answer["predictions"]] == [label for _, label in OBVIOUS]


def test_amazon_field_names_are_a_422_not_a_constant_answer(served: ServingProcess) -> None:
    status, answer = served.post("/v1/predict", {"products": [{"title": "Galaxy S21"}]})
    assert status == 422
    assert "'Product Title'" in answer["error"]["message"]


def test_bad_number_is_a_422_naming_the_field(served: ServingProcess) -> None:
    body = {"products": [{"Product Title": "Galaxy", "Weight (g)": "heavy"}]}
    status, answer = served.post("/v1/predict", body)
    assert status == 422 and answer["error"]["field"] == "products[0].Weight (g)"


@pytest.fixture(scope="module")
def mlflow_serve(own_model: tuple[str, Path]) -> Iterator[Callable[[dict], dict]]:
    url, root = own_model
    port = free_port()
    process = start_mlflow_models_serve(f"models:/{MODEL}@champion", url, port, root / "mms.log")
    try:
        wait_for_http(f"http://127.0.0.1:{port}/ping", timeout=240, process=process)

        def invoke(body: dict) -> dict:
            status, answer = http_json("POST", f"http://127.0.0.1:{port}/invocations", body)
            assert status == 200, answer
            return answer

        yield invoke
    finally:
        stop_process(process)


REQUESTS = [
    {"dataframe_records": [product for product, _ in OBVIOUS]},
    {
        "dataframe_split": {
            "columns": ["Product Title", "Weight (g)"],
            "data": [["Intel Core i5 boxed CPU socket", 55.0], ["Acer Swift ultrabook", None]],
        }
    },
    {"instances": [{"Product Title": "Google Pixel unlocked cell phone"}], "params": {"top_k": 2}},
]


@pytest.mark.parametrize("body", REQUESTS, ids=["records", "split", "instances"])
def test_invocations_answer_as_mlflow_models_serve_does(
    served: ServingProcess, mlflow_serve: Callable[[dict], dict], body: dict
) -> None:
    status, ours = served.post("/invocations", body)
    assert status == 200, ours
    theirs = mlflow_serve(body)
    assert len(ours["predictions"]) == len(theirs["predictions"])
    for mine, reference in zip(ours["predictions"], theirs["predictions"], strict=True):
        assert mine["label"] == reference["label"]
        assert mine["top_labels"] == reference["top_labels"]
        assert mine["probability"] == pytest.approx(reference["probability"], abs=1e-6)
        assert mine["top_probabilities"] == pytest.approx(reference["top_probabilities"], abs=1e-6)


def test_invocations_bad_forms_are_422(served: ServingProcess) -> None:
    assert served.post("/invocations", {"rows": []})[0] == 422
    split = {"dataframe_split": {"columns": ["Product Title"], "data": [["a", "b"]]}}
    assert served.post("/invocations", split)[0] == 422
    status, answer = served.post("/invocations", {"dataframe_records": [{"title": "x"}]})
    assert status == 422 and "'Product Title'" in answer["error"]["message"]
