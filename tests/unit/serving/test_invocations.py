"""MLflow's scoring protocol's bodies (serving.invocations), no HTTP."""

from __future__ import annotations

import pytest

from serving.errors import InvalidInputError, UnsupportedMediaTypeError
from serving.invocations import charset_of, parse_csv_body


def test_csv_rows_become_records_without_empty_cells() -> None:
    body = b'title,brand\nPerl module,\n"Chess, the game",Acme\n\nShort\n'
    assert parse_csv_body(body) == [
        {"title": "Perl module"},
        {"title": "Chess, the game", "brand": "Acme"},
        {"title": "Short"},  # fewer cells than the header: the others are missing values
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
    assert parse_csv_body(body, charset_of("text/csv; charset=latin-1")) == [
        {"title": "Café crème"}
    ]
    assert charset_of('text/csv;charset="UTF-8"') == "UTF-8"
    assert charset_of("text/csv") == "utf-8"
    with pytest.raises(UnsupportedMediaTypeError, match="charset 'klingon' is not known"):
        parse_csv_body(b"title\nx\n", "klingon")


def test_csv_column_names_are_trimmed_as_training_trims_them() -> None:
    body = "\ufefftitle , description,,\nChess,a game,,\n".encode()
    assert parse_csv_body(body) == [{"title": "Chess", "description": "a game"}]
    with pytest.raises(InvalidInputError, match="names 'title' twice"):
        parse_csv_body(b"title, title\na,b\n")
