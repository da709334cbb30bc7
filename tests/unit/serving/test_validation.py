"""Request validation built from a model's input contract, checked without HTTP."""

from __future__ import annotations

import dataclasses
import re
import unicodedata

import pytest

from serving.contract_types import MAX_JSON_DEPTH, NUMERIC_STRING, value_schema
from serving.errors import InvalidInputError
from serving.validation import (
    Limits,
    RequestContract,
    check_products,
    field_chars,
)

LIMITS = Limits(max_products=3, max_text_chars=10)
AMAZON = RequestContract.from_metadata(
    {"input_fields": ["asin", "title", "description", "feature", "details", "price"]}
)
CSV_MODEL = RequestContract.from_metadata(
    {
        "contract": {
            "task": "single_label",
            "fields": [
                {"name": "Product Title", "role": "text", "type": "string"},
                {"name": "product ID", "role": "id", "type": "string"},
                {"name": "Weight (g)", "role": "numeric", "type": "number"},
                {"name": "Merchant", "role": "tokens", "type": "tokens"},
            ],
        }
    }
)


def rejected(products: list, contract: RequestContract = AMAZON) -> InvalidInputError:
    with pytest.raises(InvalidInputError) as caught:
        check_products(products, contract, LIMITS)
    return caught.value


def test_valid_products_pass_and_keep_only_the_models_fields() -> None:
    clean = check_products(
        [{"title": "a", "color": "red"}, {"description": ["b"]}, {"title": "", "description": "c"}],
        AMAZON,
        LIMITS,
    )
    assert clean[0] == {"title": "a"}


def test_csv_model_fields_by_their_own_names_and_numbers_parsed() -> None:
    clean = check_products(
        [{"Product Title": "Galaxy S21", "Weight (g)": "171", "product ID": 12345}],
        CSV_MODEL,
        LIMITS,
    )
    assert clean == [{"Product Title": "Galaxy S21", "Weight (g)": 171.0, "product ID": "12345"}]


@pytest.mark.parametrize(
    "value", ["heavy", True, float("nan"), float("inf"), "1e999", [1], {}, 10**400]
)
def test_numeric_fields_take_numbers_or_numeric_strings_only(value) -> None:
    error = rejected([{"Product Title": "x", "Weight (g)": value}], CSV_MODEL)
    assert error.field == "products[0].Weight (g)" and "number" in error.message


@pytest.mark.parametrize("blank", ["", " ", "\t \n"])
def test_a_blank_number_is_a_missing_value_as_training_reads_it(blank) -> None:
    """`product_model.contract.to_numbers` reads a blank cell as missing; the server refused it."""
    clean = check_products([{"Product Title": "x", "Weight (g)": blank}], CSV_MODEL, LIMITS)
    assert clean == [{"Product Title": "x"}]


@pytest.mark.parametrize(
    ("text", "number"), [("1e3", 1000.0), (".5", 0.5), ("+3", 3.0), (" 7 ", 7.0), ("-2.", -2.0)]
)
def test_a_numeric_string_is_the_number_float_reads(text, number) -> None:
    """As training and batch scoring read it; the server took only `-?digits(.digits)`."""
    clean = check_products([{"Product Title": "x", "Weight (g)": text}], CSV_MODEL, LIMITS)
    assert clean == [{"Product Title": "x", "Weight (g)": number}]
    assert re.match(NUMERIC_STRING, text)  # and the OpenAPI document says it takes it


@pytest.mark.parametrize(
    ("text", "advice"),
    [
        ("n/a", "for a missing value send null or an empty string, or leave the field out"),
        ("9,99", "'.' as the decimal point"),
        ("1.234,5", "'.' as the decimal point and without thousands separators"),
        ("1e999", "too large, infinite or NaN"),
    ],
)
def test_text_that_is_no_number_is_refused_saying_how_to_send_it(text, advice) -> None:
    error = rejected([{"Product Title": "x", "Weight (g)": text}], CSV_MODEL)
    assert error.field == "products[0].Weight (g)" and advice in error.message
    assert not re.match(NUMERIC_STRING, text) or text == "1e999"


NFC_MODEL = RequestContract.from_metadata(
    {
        "contract": {
            "fields": [
                {"name": "Kurzbeschreibung", "role": "text", "type": "string"},
                {"name": "Größe (KB)", "role": "numeric", "type": "number"},
            ]
        }
    }
)
NFD_SIZE = unicodedata.normalize("NFD", "Größe (KB)")


def test_field_names_match_in_another_unicode_normal_form() -> None:
    """A decomposed "ö" looks the same but was another key: the field was silently missing."""
    assert NFD_SIZE != "Größe (KB)"
    products = [{"Kurzbeschreibung": "GNOME", NFD_SIZE: "12"}]
    assert check_products(products, NFC_MODEL, LIMITS)[0]["Größe (KB)"] == 12.0
    decomposed_contract = RequestContract(
        tuple(
            dataclasses.replace(f, name=NFD_SIZE) if f.type == "number" else f
            for f in NFC_MODEL.fields
        )
    )
    products = [{"Kurzbeschreibung": "GNOME", "Größe (KB)": "12"}]
    assert check_products(products, decomposed_contract, LIMITS)[0] == {
        "Kurzbeschreibung": "GNOME",
        NFD_SIZE: 12.0,
    }


def test_a_field_sent_in_two_normal_forms_is_refused_and_unknown_keys_still_ignored() -> None:
    error = rejected([{"Kurzbeschreibung": "x", "Größe (KB)": 1, NFD_SIZE: 2}], NFC_MODEL)
    assert "twice, in two Unicode normal forms" in error.message
    product = {"Kurzbeschreibung": "x", unicodedata.normalize("NFD", "Größe (MB)"): "n/a"}
    assert check_products([product], NFC_MODEL, LIMITS) == [{"Kurzbeschreibung": "x"}]
    only_nfd = rejected([{unicodedata.normalize("NFD", "Kurzbeschreibung"): ""}], NFC_MODEL)
    assert "a product needs a non-empty value" in only_nfd.message  # it has a model field


def test_amazon_fields_on_a_csv_model_name_the_models_fields() -> None:
    error = rejected([{"title": "Galaxy S21"}], CSV_MODEL)
    assert error.field == "products[0]"
    assert "'Product Title'" in error.message and "'title'" in error.message


def test_legacy_metadata_gets_the_amazon_roles() -> None:
    roles = {f.name: (f.role, f.type) for f in AMAZON.fields}
    assert roles["asin"] == ("id", "string") and roles["price"] == ("numeric", "price")
    assert AMAZON.text_fields == ("title", "description", "feature")


def test_counts() -> None:
    assert rejected([]).field == "products"
    error = rejected([{"title": "a"}] * 4)
    assert error.field == "products" and "at most 3" in error.message


@pytest.mark.parametrize(
    "product", [{}, {"title": " \t\n"}, {"description": []}, {"details": {"x": "y"}}, "text"]
)
def test_a_text_field_is_required(product) -> None:
    assert rejected([{"title": "ok"}, product]).field == "products[1]"


@pytest.mark.parametrize(
    ("product", "field"),
    [
        ({"title": "x" * 11}, "products[0].title"),
        ({"title": "x", "feature": ["12345", "123456"]}, "products[0].feature"),
        ({"title": "x", "details": {"key": "12345678"}}, "products[0].details"),
    ],
)
def test_text_length_per_field(product, field) -> None:
    error = rejected([product])
    assert error.field == field and "at most 10" in error.message


def test_a_long_list_of_short_strings_is_bounded_by_characters_alone() -> None:
    """The shared catalog has descriptions of up to 1,471 paragraphs: the server takes any number
    within the field's characters, and the OpenAPI schema says the same (no `maxItems`)."""
    many = [""] * 1_471 + ["a"]
    check_products([{"title": "x", "description": many}], AMAZON, LIMITS)
    schema = value_schema("text", LIMITS.max_text_chars)
    arrays = [s for s in schema["anyOf"] if s.get("type") == "array"]
    items = {"anyOf": [{"type": "string", "maxLength": 10}, {"type": "null"}]}
    assert arrays == [{"type": "array", "items": items}]  # null items are skipped


def test_the_schema_of_an_id_takes_the_numbers_the_server_takes() -> None:
    """Ids read from CSV files are often numbers: the server reads them as text, and the OpenAPI
    schema says so (schemathesis found a number accepted where the schema allowed strings only)."""
    products = check_products([{"title": "x", "asin": 12345}], AMAZON, LIMITS)
    assert products[0]["asin"] == "12345"
    kinds = [s.get("type") for s in value_schema("string", 10, "id")["anyOf"]]
    assert kinds == ["string", "number", "null"]
    assert [s.get("type") for s in value_schema("string", 10)["anyOf"]] == ["string", "null"]


TAGS_MODEL = RequestContract.from_metadata(
    {
        "contract": {
            "fields": [
                {"name": "Product Name", "role": "text", "type": "string"},
                {"name": "Paragraphs", "role": "text", "type": "text"},
                {"name": "Tags", "role": "tokens", "type": "tokens"},
                {"name": "SKU", "role": "id", "type": "string"},
            ]
        }
    }
)


@pytest.mark.parametrize(
    ("tags", "read_as"),
    [
        ([None, "devel::lang:go"], ["devel::lang:go"]),
        (["devel::lang:go", None, 7, None], ["devel::lang:go", 7]),
        ([None], []),
    ],
)
def test_a_null_item_of_a_list_is_skipped_as_training_skips_it(tags, read_as) -> None:
    """Training and batch scoring read `[null, "x"]` (`features.as_list` skips null items);
    the server refused it with a message that did not name the item."""
    product = {"Product Name": "Go library", "Tags": tags, "Paragraphs": [None, "a", None]}
    clean = check_products([product], TAGS_MODEL, WIDE)
    assert clean == [{"Product Name": "Go library", "Tags": read_as, "Paragraphs": ["a"]}]
    only_nulls = rejected([{"Paragraphs": [None, None]}], TAGS_MODEL)
    assert only_nulls.field == "products[0]" and "non-empty value" in only_nulls.message


@pytest.mark.parametrize(
    ("value", "field", "message"),
    [
        (
            {"Tags": [None, {"a": 1}]},
            "products[0].Tags[1]",
            "must be a string or a finite number, not an object (null items are skipped)",
        ),
        ({"Tags": ["x", True]}, "products[0].Tags[1]", "not a boolean"),
        ({"Tags": [float("nan")]}, "products[0].Tags[0]", "not a number too large or not"),
        ({"Paragraphs": ["a", None, 3]}, "products[0].Paragraphs[2]", "must be a string, not"),
        (
            {"Tags": {"colour": "red", "sizes": [1, 2]}},
            "products[0].Tags.sizes",
            "must be a string, a finite number, a boolean or null, not a list",
        ),
        ({"Tags": True}, "products[0].Tags", "must be a string, a number, a list of them"),
    ],
)
def test_a_refused_item_of_a_list_or_object_is_named(value, field, message) -> None:
    error = rejected([{"Product Name": "x", **value}], TAGS_MODEL)
    assert error.field == field and message in error.message, (error.field, error.message)


@pytest.mark.parametrize(
    ("sku", "read_as"),
    [
        (7, "7"),
        ("7", "7"),
        (7.0, "7"),
        (-0.0, "0"),
        ("7.0", "7.0"),
        (112.5, "112.5"),
        (1e16, "1e+16"),
    ],
)
def test_a_number_id_reads_as_training_and_batch_scoring_read_it(sku, read_as) -> None:
    """`7.0` (pandas writes a float column of ids with gaps so) is the product `7`, as training
    reads a float column of ids; it was the text "7.0", another product's features."""
    import pandas as pd

    from batch.scoring import ids_as_text
    from training.catalog_keys import keys_as_written
    from training.config import TrainConfig

    clean = check_products([{"Product Name": "x", "SKU": sku}], TAGS_MODEL, LIMITS)
    assert clean[0]["SKU"] == read_as
    column = pd.Series([sku, None], dtype=object if isinstance(sku, str) else float)
    catalog = pd.DataFrame({"label": ["a", "b"], "SKU": column})
    trained = keys_as_written(catalog, TrainConfig(label_column="label", id_column="SKU"))["SKU"]
    assert trained[0] == read_as and ids_as_text(column)[0] == read_as


@pytest.mark.parametrize("price", [False, -1, float("nan"), [1]])
def test_price_is_a_price(price) -> None:
    assert rejected([{"title": "x", "price": price}]).field == "products[0].price"


def test_field_chars_counts_characters_not_bytes() -> None:
    assert field_chars("🚀🚀") == 2
    assert field_chars(["ab", "c"]) == 3
    assert field_chars({"ab": "cd"}) == 4
    assert field_chars(12.5) == 0


@pytest.mark.parametrize("field", ["details", "asin"])
def test_an_integer_too_large_for_a_float_is_a_bad_value_not_a_crash(field) -> None:
    """JSON allows integers of any size; Python's float() of one overflows."""
    value = {"weight": 10**400} if field == "details" else 10**400
    error = rejected([{"title": "x", field: value}])
    assert error.field == (
        "products[0].details.weight" if field == "details" else "products[0].asin"
    )
    assert check_products(
        [{"title": "x", field: 12345 if field == "asin" else {"w": 7}}], AMAZON, LIMITS
    )


NESTED_MODEL = RequestContract.from_metadata(
    {
        "contract": {
            "fields": [
                {"name": "info", "role": "text", "type": "json"},
                {"name": "texts", "role": "text", "type": "text"},
            ]
        }
    }
)
WIDE = Limits(max_products=3, max_text_chars=1_000)


@pytest.mark.parametrize(
    "info",
    [
        {"name": "Set of scripts", "tags": ["devel::examples"]},
        {"name": "geo", "tags": [], "size": 12, "new": True, "parts": [{"k": None}]},
        [{"name": "a"}, 1.5, "b"],
        398,
        "plain text",
    ],
)
def test_a_json_field_takes_what_its_catalog_held(info) -> None:
    """A text field whose catalog held objects (user14's `info`) takes them, nested, as the
    model reads them; before, the model refused every row of its own catalog."""
    assert check_products([{"info": info}], NESTED_MODEL, WIDE) == [{"info": info}]


def nested(depth: int) -> list:
    value: list = ["x"]
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize(
    "info", [float("nan"), 10**400, {"w": float("inf")}, nested(MAX_JSON_DEPTH + 1)]
)
def test_a_json_field_refuses_non_finite_numbers_and_deep_nesting(info) -> None:
    check_products([{"info": nested(MAX_JSON_DEPTH)}], NESTED_MODEL, WIDE)
    error = rejected([{"info": info}], NESTED_MODEL)
    assert error.field == "products[0].info" and "nested at most" in error.message


def test_a_json_field_is_bounded_and_counts_as_text_as_the_model_reads_it() -> None:
    assert rejected([{"info": {"name": "x" * 11}}], NESTED_MODEL).message.endswith("per field")
    for empty in ({}, [], {"": ""}, [[" "]]):
        assert rejected([{"info": empty}], NESTED_MODEL).field == "products[0]"
    check_products([{"info": {"tags": []}}, {"info": 7}], NESTED_MODEL, LIMITS)
    schema = NESTED_MODEL.json_schema(10)["properties"]["info"]["anyOf"]
    assert [s["type"] for s in schema] == ["string", "number", "boolean", "array", "object", "null"]


PERL_TAGS = ["implemented-in::perl", "role::program", "works-with::pim"]


def test_every_route_and_batch_scoring_answer_a_null_item_as_the_list_without_it(
    make_client, tiny_registry
) -> None:
    """The tiny model's `category` (tokens) with null items, and its id as `7.0`: the server
    refused the first (422/400) and read the second as "7.0"; now each route answers both as
    `product-classify` scores the row, and as it answers the list without nulls and the id 7."""
    import mlflow
    import pandas as pd

    from batch.model import ModelRef, load
    from batch.scoring import score_chunk
    from tests.support import tracking_uri_restored

    client = make_client()
    plain = {"title": "convert an addressbook to VCARD", "category": PERL_TAGS, "asin": 7}
    nulls = plain | {"category": [None, *PERL_TAGS[:2], None, PERL_TAGS[2]], "asin": 7.0}
    answers = [
        client.post("/v1/predict", json={"products": [product]}).json()["predictions"][0]
        for product in (plain, nulls, plain | {"asin": "7"})
    ]
    assert answers[0] == answers[1] == answers[2]
    invocations = client.post("/invocations", json={"dataframe_records": [nulls]})
    assert invocations.json()["predictions"][0]["top_labels"][0] == answers[0]["label"]
    category = {"name": "category", "datatype": "BYTES", "shape": [1, 5]}
    v2 = client.post(
        f"/v2/models/{tiny_registry.model_name}/infer",
        json={
            "inputs": [
                {"name": "title", "datatype": "BYTES", "shape": [1], "data": [plain["title"]]},
                category | {"data": nulls["category"]},
                {"name": "asin", "datatype": "FP64", "shape": [1], "data": [7.0]},
            ]
        },
    )
    assert v2.status_code == 200, v2.text
    assert v2.json()["outputs"][0]["data"] == [answers[0]["label"]]
    name, version = tiny_registry.model_name, tiny_registry.version
    with tracking_uri_restored():
        mlflow.set_tracking_uri(tiny_registry.tracking_uri)
        model = load(ModelRef(f"models:/{name}/{version}", name, version), None)
    scored = score_chunk(model, pd.DataFrame([nulls, {"title": "x", "asin": None}]), top_k=3)
    assert scored["product_id"][0] == "7"
    assert scored["label"][0] == answers[0]["label"]
    assert scored["probability"][0] == pytest.approx(answers[0]["probability"], abs=1e-6)
