"""The local engine on a real model trained on a user's own catalog: a numeric column, no id."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from batch.cli import main, score
from batch.config import make_config
from tests.support import Registry, tracking_uri_restored
from tests.unit.batch.conftest import listings_rows, write_odd_titles

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


@pytest.fixture(autouse=True)
def _mlflow_uri_restored() -> Iterator[None]:
    with tracking_uri_restored():
        yield


def run(registry: Registry, data: Path, output: Path, **options: object) -> pd.DataFrame:
    values = {
        "model": f"models:/{registry.model_name}/{registry.version}",
        "data": str(data),
        "output": str(output),
        "tracking_uri": registry.tracking_uri,
        "progress": False,
        **options,
    }
    summary = score(make_config(values))
    assert summary.rows == len(listings_rows())
    return read_output(output)


def read_output(output: Path) -> pd.DataFrame:
    if output.suffix == ".parquet":
        return pd.read_parquet(output)
    if output.suffix == ".csv":
        return pd.read_csv(output)
    return pd.read_json(output, lines=True)


def test_a_csv_catalog_with_a_numeric_column_is_scored(
    listings_registry: Registry, listings_csv: Path, tmp_path: Path
) -> None:
    out = run(listings_registry, listings_csv, tmp_path / "labels.parquet", chunk_size=16)
    assert out["reason"].isna().all()
    # the model's own labels: most rows of such a separable catalog land in their class
    truth = [row["Category Label"] for row in listings_rows()]
    assert (out["label"] == truth).mean() > 0.9


def test_integer_numbers_of_a_json_lines_catalog_are_scored(
    listings_registry: Registry, tmp_path: Path
) -> None:
    catalog = tmp_path / "listings.jsonl"
    with catalog.open("w", encoding="utf-8") as handle:
        for row in listings_rows():
            weight = row["Weight (g)"]
            number = int(weight) if weight.isdigit() else None
            handle.write(json.dumps(row | {"Weight (g)": number}) + "\n")
    out = run(listings_registry, catalog, tmp_path / "labels.jsonl")
    assert out["reason"].isna().all() and (out["label"] != "").all()


def test_numbers_are_parsed_as_the_model_reads_them(listings_registry: Registry) -> None:
    from batch import model as models
    from batch.scoring import model_frame

    with tracking_uri_restored():
        ref = models.resolve(
            f"models:/listings/{listings_registry.version}", listings_registry.tracking_uri
        )
        loaded = models.load(ref, None)
    assert loaded.inputs.numeric_columns == ("Weight (g)",)
    weights = ["187", " 2 ", "", "n/a"]
    frame = pd.DataFrame({"Product Title": ["a", "b", "c", "d"], "Weight (g)": weights})
    parsed = model_frame(frame, loaded.inputs)["Weight (g)"]
    assert parsed.dtype == "float64"
    assert parsed.tolist()[:2] == [187.0, 2.0] and parsed[2:].isna().all()


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_without_an_id_column_rows_are_numbered_in_every_format(
    listings_registry: Registry, listings_csv: Path, tmp_path: Path, suffix: str
) -> None:
    out = run(listings_registry, listings_csv, tmp_path / f"labels{suffix}", chunk_size=7)
    assert list(out.columns)[:2] == ["row", "label"] and "product_id" not in out.columns
    assert out["row"].tolist() == list(range(len(listings_rows())))


def test_integer_ids_are_written_as_integers_also_beside_a_missing_id(
    listings_registry: Registry, tmp_path: Path
) -> None:
    """pandas reads a JSON column of integers holding a null as floats; the ids stay `7`, as
    training and the server read them, never `7.0`."""
    catalog = tmp_path / "listings.jsonl"
    ids = [None if i == 3 else 1000 + i for i in range(len(listings_rows()))]
    with catalog.open("w", encoding="utf-8") as handle:
        for row, pid in zip(listings_rows(), ids, strict=True):
            handle.write(json.dumps(row | {"pid": pid}) + "\n")
    out = run(listings_registry, catalog, tmp_path / "labels.jsonl", id_column="pid")
    written = out["product_id"].astype(object).where(out["product_id"].notna(), "")
    assert [str(v) for v in written] == ["" if pid is None else str(pid) for pid in ids]


def test_a_blank_id_column_option_numbers_the_rows_too(
    listings_registry: Registry, listings_csv: Path, tmp_path: Path
) -> None:
    by_title = run(
        listings_registry, listings_csv, tmp_path / "a.parquet", id_column="Product Title"
    )
    by_row = run(listings_registry, listings_csv, tmp_path / "b.parquet", id_column=" ")
    assert by_title["product_id"].tolist() == [r["Product Title"] for r in listings_rows()]
    assert by_row["row"].tolist() == list(range(len(by_title)))
    assert by_row["label"].tolist() == by_title["label"].tolist()


def test_numbers_and_booleans_as_titles_are_read_alike_in_every_chunk_size(
    listings_registry: Registry, tmp_path: Path
) -> None:
    """Read as their text. A chunk holding only numbers (or booleans) stopped the run with exit 3
    (`Can not safely convert int64 to <U0`) where the same rows in a bigger chunk were scored."""
    catalog = write_odd_titles(tmp_path / "odd-titles.jsonl")
    rows = listings_rows()
    one = run(listings_registry, catalog, tmp_path / "one.jsonl", chunk_size=1)
    default = run(listings_registry, catalog, tmp_path / "default.jsonl")
    assert (tmp_path / "one.jsonl").read_bytes() == (tmp_path / "default.jsonl").read_bytes()
    assert one["reason"].notna().tolist() == [at == 3 for at in range(len(rows))]
    assert (default.drop(index=3)["label"] != "").all()


def test_a_title_column_of_dates_is_one_line_naming_file_column_and_rows_exit_3(
    listings_registry: Registry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It was MLflow's words without the file: `catalog rows 0-1: values the model cannot read:
    Incompatible input types for column Product Title. Can not safely convert datetime64...`."""
    catalog = tmp_path / "dates-as-titles.parquet"
    titles = pd.to_datetime(["2024-03-01", "2024-03-02"])
    pd.DataFrame({"Product Title": titles, "Weight (g)": [3, 4]}).to_parquet(catalog)
    output = tmp_path / "labels.csv"
    argv = [
        "--model",
        f"models:/listings/{listings_registry.version}",
        "--tracking-uri",
        listings_registry.tracking_uri,
        "--data",
        str(catalog),
        "--output",
        str(output),
        "--no-progress",
    ]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 3
    message = capsys.readouterr().err.strip()
    assert message == (
        f"product-classify: error: {catalog}: column 'Product Title' holds dates or times "
        "(Timestamp('2024-03-01 00:00:00')) in rows 0, 1 (counted from 0); the model reads "
        "text there: write the column as text"
    )
    assert not output.exists()


def test_a_header_in_another_unicode_normal_form_is_read(tmp_path: Path) -> None:
    """The catalog's "Größe (KB)" with a decomposed "ö" is the model's column (it was left out
    of what the model read, silently)."""
    from batch.local import run_local
    from batch.model import ModelInputs, ModelRef, ScoringModel

    received: list[pd.DataFrame] = []

    class RecordingModel(ConstantModel):
        def predict(self, frame: pd.DataFrame, params: dict) -> pd.DataFrame:
            received.append(frame.copy())
            return super().predict(frame, params)

    inputs = ModelInputs(("Kurz", "Größe (KB)"), ("Kurz",), None, ("Größe (KB)",))
    model = ScoringModel(ModelRef("m", "m", "1"), inputs, RecordingModel(), ("x",))
    catalog = tmp_path / "catalog.csv"
    catalog.write_text(unicodedata.normalize("NFD", "Kurz,Größe (KB)\nEditor,1e3\n"), "utf-8")
    output = str(tmp_path / "labels.jsonl")
    run_local(make_config({"model": "m", "data": str(catalog), "output": output}), model)
    assert received[0].to_dict("records") == [{"Kurz": "Editor", "Größe (KB)": 1000.0}]


class ConstantModel:
    """Answers "x" for every product, without MLflow."""

    def predict(self, frame: pd.DataFrame, params: dict) -> pd.DataFrame:
        rows = len(frame)
        return pd.DataFrame(
            {
                "label": ["x"] * rows,
                "probability": [1.0] * rows,
                "top_labels": [["x"]] * rows,
                "top_probabilities": [[1.0]] * rows,
            }
        )


def test_values_that_are_not_numbers_are_counted_and_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """They were read as missing silently; blanks are missing values, not counted."""
    from batch.local import run_local
    from batch.model import ModelInputs, ModelRef, ScoringModel

    inputs = ModelInputs(("title", "price", "weight"), ("title",), None, ("price", "weight"))
    model = ScoringModel(ModelRef("m", "m", "1"), inputs, ConstantModel(), ("x",))
    catalog = tmp_path / "catalog.csv"
    prices = ["9.99", "n/a", "", "9,99", " 3 ", "abc", "  "]
    rows = {"title": ["t"] * len(prices), "price": prices, "weight": range(len(prices))}
    pd.DataFrame(rows).to_csv(catalog, index=False)
    output = str(tmp_path / "labels.csv")
    values = {"model": "m", "data": str(catalog), "output": output, "chunk_size": 3}
    config = make_config(values | {"progress": False})
    with caplog.at_level("WARNING", logger="batch.summary"):
        summary = run_local(config, model)
    assert summary.not_numbers == {"price": 3}
    assert "not numbers:     price 3 (read as missing)" in summary.text()
    assert [r.getMessage() for r in caplog.records] == [
        f"{catalog}: column 'price': 3 value(s) are not numbers and count as missing"
    ]


def test_model_inputs_the_catalog_lacks_are_warned_about_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A catalog with `vendor` for the model's `Vendor` was scored without it, silently. A JSON
    key first seen in a later chunk is no missing input."""
    from batch.local import run_local
    from batch.model import ModelInputs, ModelRef, ScoringModel

    inputs = ModelInputs(("sku", "title", "Vendor", "size"), ("title",), "sku", (), ("sku",))
    model = ScoringModel(ModelRef("m", "m", "1"), inputs, ConstantModel(), ("x",))
    catalog = tmp_path / "catalog.jsonl"
    rows = [{"sku": str(i), "title": "t", "vendor": "v"} for i in range(5)]
    rows[4]["size"] = "3"  # only in the last chunk
    catalog.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    values = {"model": "m", "data": str(catalog), "chunk_size": 2, "progress": False}
    config = make_config(values | {"output": str(tmp_path / "labels.csv")})
    with caplog.at_level("WARNING", logger="batch.scoring"):
        run_local(config, model)
    assert [r.getMessage() for r in caplog.records] == [
        f"{catalog}: the catalog has no column for the model's input 'Vendor' (is it "
        "'vendor'?); its products are scored without it"
    ]
