"""spreadsheets.create and spreadsheets.batchUpdate request kinds, sent as raw API calls."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from syncd.sandbox.sheets import SheetsSandbox

logging.getLogger("werkzeug").setLevel(logging.WARNING)

API = "https://sheets.googleapis.com/v4/spreadsheets"


@pytest.fixture(scope="module")
def sheets_server() -> Iterator[SheetsSandbox]:
    with SheetsSandbox(tls=False) as server:
        server.quotas.read_per_minute = server.quotas.write_per_minute = None
        yield server


@pytest.fixture
def http(sheets_server: SheetsSandbox) -> requests.Session:
    return sheets_server.session()


@pytest.fixture
def key(sheets_server: SheetsSandbox) -> str:
    return sheets_server.create_spreadsheet("requests", {"S": [["a", "b"], ["c", "d"], ["e", "f"]]})


def batch(http: requests.Session, key: str, *requests_: dict[str, Any]) -> requests.Response:
    return http.post(f"{API}/{key}:batchUpdate", json={"requests": list(requests_)})


def grid(http: requests.Session, key: str) -> dict[str, Any]:
    props: dict[str, Any] = http.get(f"{API}/{key}").json()["sheets"][0]["properties"]["gridProperties"]
    return props


def test_create_makes_a_spreadsheet_with_the_given_sheets(http: requests.Session) -> None:
    body = {
        "properties": {"title": "Made"},
        "sheets": [{"properties": {"title": "One"}}, {"properties": {"title": "Two"}}],
    }
    made = http.post(API, json=body).json()
    assert made["properties"]["title"] == "Made"
    assert [s["properties"]["title"] for s in made["sheets"]] == ["One", "Two"]
    assert http.get(f"{API}/{made['spreadsheetId']}/values/Two").status_code == 200


def test_update_cells_writes_typed_values_and_notes(
    sheets_server: SheetsSandbox, http: requests.Session, key: str
) -> None:
    rows = [
        {"values": [{"userEnteredValue": {"numberValue": 7}}, {"userEnteredValue": {"formulaValue": "=2*2"}}]}
    ]
    answer = batch(
        http,
        key,
        {
            "updateCells": {
                "range": {"sheetId": 0, "startRowIndex": 0, "endRowIndex": 1},
                "rows": rows,
                "fields": "userEnteredValue",
            }
        },
        {
            "updateCells": {
                "start": {"sheetId": 0, "rowIndex": 2},
                "rows": [{"values": [{"note": "n"}]}],
                "fields": "note",
            }
        },
    )
    assert answer.status_code == 200
    assert sheets_server.values(key, "S", "UNFORMATTED_VALUE") == [[7, 4], ["c", "d"], ["e", "f"]]
    notes = http.get(
        f"{API}/{key}", params={"ranges": "S!A3", "fields": "sheets.data.rowData.values.note"}
    ).json()
    assert notes == {"sheets": [{"data": [{"rowData": [{"values": [{"note": "n"}]}]}]}]}


def test_delete_dimension_removes_rows_and_shrinks_the_grid(
    sheets_server: SheetsSandbox, http: requests.Session, key: str
) -> None:
    rng = {"sheetId": 0, "dimension": "ROWS", "startIndex": 1, "endIndex": 2}
    assert batch(http, key, {"deleteDimension": {"range": rng}}).status_code == 200
    assert sheets_server.values(key, "S") == [["a", "b"], ["e", "f"]]
    assert grid(http, key)["rowCount"] == 999


def test_append_dimension_grows_the_grid(http: requests.Session, key: str) -> None:
    assert (
        batch(http, key, {"appendDimension": {"sheetId": 0, "dimension": "COLUMNS", "length": 4}}).status_code
        == 200
    )
    assert grid(http, key)["columnCount"] == 30


def test_update_sheet_properties_applies_only_the_masked_fields(http: requests.Session, key: str) -> None:
    props = {"sheetId": 0, "title": "Renamed", "gridProperties": {"frozenRowCount": 1, "rowCount": 5}}
    answer = batch(
        http,
        key,
        {"updateSheetProperties": {"properties": props, "fields": "title,gridProperties.frozenRowCount"}},
    )
    assert answer.status_code == 200
    sheet = http.get(f"{API}/{key}").json()["sheets"][0]["properties"]
    assert sheet["title"] == "Renamed"
    assert sheet["gridProperties"] == {"rowCount": 1000, "columnCount": 26, "frozenRowCount": 1}


def test_a_duplicate_sheet_title_is_refused(http: requests.Session, key: str) -> None:
    answer = batch(http, key, {"addSheet": {"properties": {"title": "s"}}})
    assert answer.status_code == 400
    assert 'A sheet with the name "s" already exists' in answer.json()["error"]["message"]


def test_the_last_sheet_cannot_be_deleted(http: requests.Session, key: str) -> None:
    answer = batch(http, key, {"deleteSheet": {"sheetId": 0}})
    assert answer.status_code == 400
    assert "You can't remove all the sheets in a document." in answer.json()["error"]["message"]


def test_a_request_on_an_unknown_sheet_id_is_refused(http: requests.Session, key: str) -> None:
    answer = batch(
        http,
        key,
        {"insertDimension": {"range": {"sheetId": 42, "dimension": "ROWS", "startIndex": 0, "endIndex": 1}}},
    )
    assert answer.status_code == 400
    assert "No grid with id: 42" in answer.json()["error"]["message"]
