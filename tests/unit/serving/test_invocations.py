"""MLflow's scoring protocol's bodies (serving.invocations), no HTTP."""

from __future__ import annotations

import json
import unicodedata

import pytest

from serving.errors import InvalidInputError, UnsupportedMediaTypeError
from serving.invocations import charset_of, parse_csv_body, parse_json_body
from serving.validation import InputField, Limits, RequestContract, check_products


def test_csv_rows_become_records_with_empty_cells_as_missing_values() -> None:
    body = b'title,brand\nPerl module,\n"Chess, the game",Acme\n\nShort\n'
    assert parse_csv_body(body).records == [
        {"title": "Perl module", "brand": None},
        {"title": "Chess, the game", "brand": "Acme"},
        {"title": "Short", "brand": None},  # fewer cells than the header: missing values
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"title,brand\nPerl,Acme,extra\n", "CSV line 2 has 3 cells, but the header has 2"),
        (b'title,brand\n"multi\nline",Acme\nChess,Acme,x,y\n', "CSV line 4 has 4 cells"),
        (b"title\n" + b"x" * 200_000 + b"\n", "CSV line 2: field larger than field limit"),
        (b"title\n\xff\n", "not UTF-8"),
        (b'title,brand\n"Chess, the game,Acme\n', "CSV line 2: unexpected end of data; a cell"),
        (b'title,brand\n"Chess" game,Acme\n', "CSV line 2: ',' expected after '\"'"),
        (b"title,title\nChess,Games\n", "the CSV header names 'title' twice"),
    ],
)
def test_csv_that_cannot_be_read_as_a_table_is_refused(body: bytes, message: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_csv_body(body)
    assert caught.value.status_code == 422 and caught.value.field == "body"
    assert message in caught.value.message, caught.value.message


def test_a_csv_body_is_read_in_the_charset_its_content_type_names() -> None:
    body = "title\nCafé crème\n".encode("latin-1")
    assert parse_csv_body(body, charset_of("text/csv; charset=latin-1")).records == [
        {"title": "Café crème"}
    ]
    assert charset_of('text/csv;charset="UTF-8"') == "UTF-8"
    assert charset_of("text/csv") == "utf-8"
    with pytest.raises(UnsupportedMediaTypeError, match="charset 'klingon' is not known"):
        parse_csv_body(b"title\nx\n", "klingon")


def test_csv_column_names_are_trimmed_as_training_trims_them() -> None:
    body = "\ufefftitle , description,,\nChess,a game,,\n".encode()
    assert parse_csv_body(body).records == [{"title": "Chess", "description": "a game"}]
    with pytest.raises(InvalidInputError, match="names 'title' twice"):
        parse_csv_body(b"title, title\na,b\n")


def located(scoring, field: str, message: str = "must be a string") -> tuple[str | None, str]:
    error = scoring.located(InvalidInputError(message, field=field))
    assert error.status_code == 422
    return error.field, error.message


def json_body(payload: dict) -> bytes:
    return json.dumps(payload).encode()


RECORD = {"sku": "a1", "title": 42}


@pytest.mark.parametrize(
    ("payload", "field", "where"),
    [
        ({"dataframe_records": [RECORD]}, "products[0].title", "dataframe_records[0].title"),
        ({"dataframe_records": [RECORD]}, "products[0]", "dataframe_records[0]"),
        ({"dataframe_records": [RECORD]}, "products", "dataframe_records"),
        ({"instances": [RECORD, RECORD]}, "products[1].title", "instances[1].title"),
        ({"inputs": [RECORD]}, "products[0].Product Title", "inputs[0].Product Title"),
        ({"inputs": {"title": [1, 2], "sku": ["a", "b"]}}, "products[1].title", "inputs.title[1]"),
        ({"instances": {"title": [1]}}, "products", "instances"),
        (
            {"dataframe_split": {"columns": ["sku", "title"], "data": [["a", 4], ["b", 5]]}},
            "products[1].title",
            "dataframe_split.data[1][1]",
        ),
        (
            {"dataframe_split": {"columns": ["sku", "title"], "data": [["a", 4]]}},
            "products[0]",
            "dataframe_split.data[0]",
        ),
        ({"dataframe_records": [RECORD]}, "params", "params"),
    ],
)
def test_errors_name_the_value_where_the_json_body_holds_it(
    payload: dict, field: str, where: str
) -> None:
    assert located(parse_json_body(json_body(payload)), field)[0] == where


def test_errors_say_which_row_and_column_when_the_path_cannot() -> None:
    split = parse_json_body(
        json_body({"dataframe_split": {"columns": ["title", "sku"], "data": [[1, "a"]]}})
    )
    assert located(split, "products[0].title") == (
        "dataframe_split.data[0][0]",
        "column 'title': must be a string",
    )
    columns = parse_json_body(json_body({"instances": {"title": ["", "x"]}}))
    assert located(columns, "products[0]", "no text") == ("instances", "row 0: no text")


def test_csv_errors_name_the_line_and_the_column() -> None:
    scoring = parse_csv_body(b'title,price\nChess,1\n\n"multi\nline",abc\n')
    assert located(scoring, "products[1].price", "must be a number") == (
        "body",
        "CSV line 5, column 'price': must be a number",
    )
    assert located(scoring, "products[0]", "no text") == ("body", "CSV line 2: no text")
    assert located(scoring, "products", "too many") == ("body", "too many")


def test_dataframe_split_column_names_must_be_strings() -> None:
    body = json_body({"dataframe_split": {"columns": [["title"]], "data": [["Chess"]]}})
    with pytest.raises(InvalidInputError, match="column names") as caught:
        parse_json_body(body)
    assert caught.value.field == "dataframe_split.columns"


def test_a_number_of_too_many_digits_is_named_without_pythons_advice() -> None:
    body = b'{"dataframe_records": [{"title": "x", "Gr\xc3\xb6\xc3\x9fe": ' + b"1" * 5000 + b"}]}"
    with pytest.raises(InvalidInputError) as caught:
        parse_json_body(body)
    assert caught.value.field == "body"
    assert caught.value.message == (
        "invalid JSON: a number in the body has more than 4300 digits (5000 digits, at line 1, "
        'column 48, the value of "Größe"); no value takes a number this long: a count such as '
        "top_k is small, a number field holds at most about 1.8e308, and an identifier (a code, "
        "an SKU) this long is sent as a string"
    )


def test_csv_numbers_and_decomposed_headers_read_as_in_the_other_routes() -> None:
    """Blank and " " are missing, "1e3" a number; a header in NFD names the NFC field."""
    contract = RequestContract(
        (InputField("Titel", "text", "string"), InputField("Größe (KB)", "numeric", "number"))
    )
    header = unicodedata.normalize("NFD", "Titel,Größe (KB)\n")
    body = (header + "a,\nb, \nc,1e3\nd,.5\n").encode()
    records = parse_csv_body(body).records
    checked = check_products(records, contract, Limits(max_products=10, max_text_chars=100))
    assert [p.get("Größe (KB)") for p in checked] == [None, None, 1000.0, 0.5]
    records = parse_csv_body((header + 'e,"9,99"\n').encode()).records
    with pytest.raises(InvalidInputError) as caught:
        check_products(records, contract, Limits(max_products=10, max_text_chars=100))
    assert "'.' as the decimal point" in caught.value.message


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"Titel,Gewicht\nChess,n/a\n", "body"),
        (b'{"dataframe_records": [{"Titel": "Chess", "Gewicht": "n/a"}]}', "dataframe_records[0]"),
    ],
)
def test_a_number_that_is_not_one_is_told_how_this_body_sends_a_missing_value(
    body: bytes, field: str
) -> None:
    """A CSV cell cannot hold null: its message says to leave the cell empty; JSON's says null."""
    contract = RequestContract(
        (InputField("Titel", "text", "string"), InputField("Gewicht", "numeric", "number"))
    )
    scoring = parse_csv_body(body) if field == "body" else parse_json_body(body)
    with pytest.raises(InvalidInputError) as caught:
        check_products(scoring.records, contract, Limits(max_products=10, max_text_chars=100))
    message = scoring.located(caught.value).message
    if field == "body":
        assert message.startswith("CSV line 2, column 'Gewicht': must be a finite number")
        assert message.endswith("(for a missing value leave the cell empty)"), message
        assert "null" not in message
    else:
        assert message.endswith("send null or an empty string, or leave the field out)")


def test_a_dataframe_split_column_named_twice_is_refused_as_in_csv() -> None:
    """The record kept the last one's value: the other column was dropped without a word."""
    for columns in (["Title", "Title"], ["Title", "SKU", "SKU", "Title"]):
        body = json_body({"dataframe_split": {"columns": columns, "data": [["a"] * len(columns)]}})
        with pytest.raises(InvalidInputError) as caught:
            parse_json_body(body)
        assert caught.value.status_code == 422
        assert caught.value.field == "dataframe_split.columns"
        twice = "'SKU', 'Title'" if "SKU" in columns else "'Title'"
        assert caught.value.message == (
            f"`dataframe_split.columns` names {twice} twice: one column each"
        )


def test_a_key_given_twice_in_a_json_object_keeps_its_last_value() -> None:
    """JSON objects are read as every JSON parser of the stack reads them (`/v1/predict`, v2,
    MLflow's own server): a key given twice keeps its last value. A column named twice, which
    a list (`dataframe_split.columns`) or a CSV header can hold, is refused instead."""
    body = b'{"dataframe_records": [{"Title": "a", "Title": "b"}]}'
    assert parse_json_body(body).records == [{"Title": "b"}]


TAGS = RequestContract(
    (InputField("Title", "text", "string"), InputField("Tags", "tokens", "tokens"))
)


@pytest.mark.parametrize(
    ("payload", "where", "message"),
    [
        (
            {"dataframe_records": [{"Title": "x", "Tags": [None, {}]}]},
            "dataframe_records[0].Tags[1]",
            "",
        ),
        ({"instances": [{"Title": "x", "Tags": [None, {}]}]}, "instances[0].Tags[1]", ""),
        ({"inputs": {"Title": ["x", "y"], "Tags": [[], [None, {}]]}}, "inputs.Tags[1][1]", ""),
        (
            {"dataframe_split": {"columns": ["Tags", "Title"], "data": [[[None, {}], "x"]]}},
            "dataframe_split.data[0][0][1]",
            "column 'Tags': ",
        ),
    ],
)
def test_a_refused_item_of_a_list_is_named_where_the_body_holds_it(
    payload: dict, where: str, message: str
) -> None:
    scoring = parse_json_body(json_body(payload))
    with pytest.raises(InvalidInputError) as caught:
        check_products(scoring.records, TAGS, Limits(max_products=10, max_text_chars=100))
    error = scoring.located(caught.value)
    assert error.field == where
    assert error.message == f"{message}must be a string or a finite number, not an object " + (
        "(null items are skipped)"
    )


@pytest.mark.parametrize(
    "payload",
    [
        {"dataframe_records": [{"Title": "x", "Tags": [None, "devel::lang:go"]}]},
        {"instances": [{"Title": "x", "Tags": [None, "devel::lang:go"]}]},
        {"inputs": {"Title": ["x"], "Tags": [[None, "devel::lang:go"]]}},
        {
            "dataframe_split": {
                "columns": ["Title", "Tags"],
                "data": [["x", [None, "devel::lang:go"]]],
            }
        },
    ],
)
def test_a_null_item_of_a_list_is_skipped_in_every_json_form(payload: dict) -> None:
    records = parse_json_body(json_body(payload)).records
    checked = check_products(records, TAGS, Limits(max_products=10, max_text_chars=100))
    assert checked == [{"Title": "x", "Tags": ["devel::lang:go"]}]
