"""MLflow's scoring protocol's bodies (serving.invocations), no HTTP."""

from __future__ import annotations

import pytest

from serving.errors import InvalidInputError
from serving.invocations import parse_csv_body


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
    ],
)
def test_csv_that_cannot_be_read_as_a_table_is_refused(body: bytes, message: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_csv_body(body)
    assert caught.value.status_code == 422 and caught.value.field == "body"
    assert message in caught.value.message, caught.value.message
