"""`product-classify` with the local engine, against a real tracking server and registered model."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow.pyfunc
import pandas as pd
import pytest

from batch.scoring import OUTPUT_COLUMNS
from tests.integration.batch_catalog import (
    NO_TEXT_IDS,
    catalog_records,
    classify,
    leftovers,
    write_catalog,
)
from tests.support import Registry

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("mlflow_uri_restored")]
ROWS = 400


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_catalog(tmp_path_factory.mktemp("batch") / "catalog.jsonl.gz", ROWS)


def model_args(registry: Registry) -> list[str]:
    return [
        "--model",
        f"models:/{registry.model_name}@champion",
        "--tracking-uri",
        registry.tracking_uri,
    ]


@pytest.fixture(scope="module")
def scored(registry: Registry, catalog: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("scored") / "labels.parquet"
    args = [*model_args(registry), "--data", str(catalog), "--output", str(output)]
    assert classify(*args, "--chunk-size", "64", "--top-k", "4") == 0
    return output


def test_every_row_is_written_in_order_with_the_output_schema(
    scored: Path, registry: Registry
) -> None:
    out = pd.read_parquet(scored)
    assert tuple(out.columns) == OUTPUT_COLUMNS
    assert out["product_id"].tolist() == [r["asin"] for r in catalog_records(ROWS)]
    assert set(out["model_name"]) == {registry.model_name}
    assert set(out["model_version"]) == {registry.version}
    labelled = out[out["reason"].isna()]
    assert len(labelled) == len(out) - len(NO_TEXT_IDS)
    assert all(len(top) == 4 for top in labelled["top_labels"])
    assert (labelled["label"] == labelled["top_labels"].map(lambda top: top[0])).all()
    assert (labelled["probability"] == labelled["top_probabilities"].map(max)).all()


def test_rows_without_text_get_an_empty_label_and_a_reason(scored: Path) -> None:
    out = pd.read_parquet(scored).set_index("product_id")
    blank = out.loc[list(NO_TEXT_IDS)]
    assert (blank["label"] == "").all() and blank["probability"].isna().all()
    assert blank["reason"].str.startswith("no text: title, description").all()


def test_labels_are_the_models_own_answers(scored: Path, registry: Registry) -> None:
    records = [r for r in catalog_records(ROWS) if r["asin"] not in NO_TEXT_IDS][:50]
    model = mlflow.pyfunc.load_model(f"models:/{registry.model_name}/{registry.version}")
    direct = model.predict(pd.DataFrame(records), params={"top_k": 4})
    out = pd.read_parquet(scored).set_index("product_id").loc[[r["asin"] for r in records]]
    assert out["label"].tolist() == direct["label"].tolist()
    assert out["probability"].tolist() == pytest.approx(direct["probability"].tolist())


@pytest.mark.parametrize("extension", ["csv", "jsonl"])
def test_csv_and_json_lines_hold_the_same_labels(
    extension: str, scored: Path, registry: Registry, catalog: Path, tmp_path: Path
) -> None:
    output = tmp_path / f"labels.{extension}"
    assert classify(*model_args(registry), "--data", str(catalog), "--output", str(output)) == 0
    if extension == "csv":
        out = pd.read_csv(output, keep_default_na=False, dtype=str)
        top = out["top_labels"].map(json.loads)
    else:
        out = pd.read_json(output, lines=True, dtype={"label": str, "product_id": str})
        top = out["top_labels"]
    expected = pd.read_parquet(scored)
    assert tuple(out.columns) == OUTPUT_COLUMNS
    assert out["label"].fillna("").tolist() == expected["label"].tolist()
    assert (
        top.map(lambda labels: list(labels)[:3]).tolist()
        == expected["top_labels"].map(lambda labels: list(labels)[:3]).tolist()
    )


def test_a_model_folder_and_a_csv_catalog_work_too(
    registry: Registry, catalog: Path, tmp_path: Path
) -> None:
    folder = mlflow.artifacts.download_artifacts(
        f"models:/{registry.model_name}/{registry.version}", dst_path=str(tmp_path / "model")
    )
    rows = pd.DataFrame(catalog_records(40))[["asin", "title", "brand"]].fillna("")
    rows.to_csv(tmp_path / "catalog.csv", index=False)
    output = tmp_path / "labels.jsonl"
    assert (
        classify(
            "--model", folder, "--data", str(tmp_path / "catalog.csv"), "--output", str(output)
        )
        == 0
    )
    out = pd.read_json(output, lines=True, dtype={"product_id": str})
    assert out["product_id"].tolist() == rows["asin"].tolist()
    assert set(out["model_name"]) == {registry.model_name}


def test_bad_data_midway_exits_3_and_leaves_nothing(registry: Registry, tmp_path: Path) -> None:
    catalog = tmp_path / "broken.jsonl.gz"
    good = [json.dumps(r) for r in catalog_records(100)]
    lines = good + ["{broken"] * 60
    with gzip.open(catalog, "wt") as handle:
        handle.write("\n".join(lines) + "\n")
    output = tmp_path / "labels.parquet"
    args = [*model_args(registry), "--data", str(catalog), "--output", str(output)]
    assert classify(*args, "--chunk-size", "20") == 3
    assert leftovers(tmp_path, "labels") == []


def test_a_missing_id_column_exits_3_and_an_option_fixes_it(
    registry: Registry, catalog: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "labels.parquet"
    args = [*model_args(registry), "--data", str(catalog), "--output", str(output)]
    assert classify(*args, "--id-column", "sku") == 3
    assert "id column 'sku' not found" in capsys.readouterr().err
    assert leftovers(tmp_path, "labels") == []
    assert classify(*args, "--id-column", "title") == 0
    assert pd.read_parquet(output)["product_id"].iloc[0] == catalog_records(1)[0]["title"]


def test_an_existing_output_is_kept_without_overwrite(
    registry: Registry, catalog: Path, tmp_path: Path
) -> None:
    output = tmp_path / "labels.parquet"
    output.write_text("previous results")
    args = [*model_args(registry), "--data", str(catalog), "--output", str(output)]
    assert classify(*args) == 2
    assert output.read_text() == "previous results"


def test_an_unknown_alias_exits_5_and_an_unreachable_server_4(
    registry: Registry, catalog: Path, tmp_path: Path
) -> None:
    output = str(tmp_path / "labels.parquet")
    missing = [
        "--model",
        f"models:/{registry.model_name}@nope",
        "--tracking-uri",
        registry.tracking_uri,
    ]
    assert classify(*missing, "--data", str(catalog), "--output", output) == 5
    down = ["--model", "models:/x@champion", "--tracking-uri", "http://127.0.0.1:9"]
    timeout = ["--tracking-timeout-seconds", "1"]
    assert classify(*down, *timeout, "--data", str(catalog), "--output", output) == 4
    assert leftovers(tmp_path, "labels") == []


def test_sigterm_exits_130_and_leaves_nothing(
    registry: Registry, catalog: Path, tmp_path: Path
) -> None:
    output = tmp_path / "labels.parquet"
    command = [sys.executable, "-m", "batch", *model_args(registry), "--data", str(catalog)]
    command += ["--output", str(output), "--chunk-size", "5", "--no-progress"]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "MLFLOW_TRACKING_URI": registry.tracking_uri},
    )
    deadline = time.monotonic() + 240
    while not leftovers(tmp_path, "labels") and process.poll() is None:
        assert time.monotonic() < deadline, "the run never started writing"
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err.decode()
    assert b"interrupted" in err and b"Traceback" not in err
    assert leftovers(tmp_path, "labels") == []


def test_a_model_saved_by_an_earlier_version_scores_with_its_own_code(
    catalog: Path, tmp_path: Path
) -> None:
    """The 0.1 model's pickles name `training.*` classes of that release: they must come from the
    model's own code folder, not from the `training` this process has imported."""
    legacy = Path(__file__).parents[1] / "fixtures" / "legacy-model-0.1"
    folder = shutil.copytree(legacy, tmp_path / "legacy")  # loading may write beside the model
    output = tmp_path / "labels.csv"
    assert classify("--model", str(folder), "--data", str(catalog), "--output", str(output)) == 0
    out = pd.read_csv(output, keep_default_na=False, dtype={"product_id": str})
    assert out["product_id"].tolist() == [r["asin"] for r in catalog_records(ROWS)]
    labelled = out[out["reason"] == ""]
    assert len(labelled) == len(out) - len(NO_TEXT_IDS)
    assert (labelled["label"] != "").all()
    assert pd.to_numeric(labelled["probability"]).between(0, 1).all()


def test_a_signal_once_the_output_is_in_place_does_not_undo_the_run(
    registry: Registry, catalog: Path, tmp_path: Path
) -> None:
    """It exited 130 with nothing on stderr, the output complete: a retried Job then stopped with
    exit 2, "already exists"."""
    output = tmp_path / "labels.parquet"
    command = [sys.executable, "-m", "batch", *model_args(registry), "--data", str(catalog)]
    command += ["--output", str(output), "--no-progress"]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "MLFLOW_TRACKING_URI": registry.tracking_uri},
    )
    deadline = time.monotonic() + 240
    while not output.exists() and process.poll() is None:
        assert time.monotonic() < deadline, "the run never wrote its output"
        time.sleep(0.005)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err.decode()
    assert b"batch scoring summary" in out or b"interrupted after the output was complete" in err
    assert len(pd.read_parquet(output)) == ROWS + len(NO_TEXT_IDS)
