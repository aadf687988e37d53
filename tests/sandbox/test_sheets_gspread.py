"""gspread 6 driving the Sheets sandbox over HTTPS, unpatched, through the endpoint-override adapter."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import gspread
import pytest
from gspread.utils import DateTimeOption, Dimension, InsertDataOption, ValueInputOption, ValueRenderOption

from syncd.sandbox.sheets import SheetsSandbox

logging.getLogger("werkzeug").setLevel(logging.WARNING)

HYPERLINK = '=HYPERLINK("https://example.com","click")'


@pytest.fixture(scope="module")
def sheets_server() -> Iterator[SheetsSandbox]:
    with SheetsSandbox() as server:
        server.quotas.read_per_minute = server.quotas.write_per_minute = None
        yield server


@pytest.fixture
def gc(sheets_server: SheetsSandbox) -> gspread.Client:
    sheets_server.knobs.reset_counts()
    return gspread.Client(auth=None, session=sheets_server.session())


@pytest.fixture
def ws(gc: gspread.Client, request: pytest.FixtureRequest) -> gspread.Worksheet:
    return gc.create(f"test {request.node.name}").sheet1


def test_open_by_key_reads_seeded_values(sheets_server: SheetsSandbox, gc: gspread.Client) -> None:
    key = sheets_server.create_spreadsheet("Roster", {"Clients": [["id", "name"], ["1", "Ann"]]})
    assert gc.open_by_key(key).worksheet("Clients").get_all_values() == [["id", "name"], ["1", "Ann"]]


def test_open_by_title_finds_the_spreadsheet_through_drive(
    sheets_server: SheetsSandbox, gc: gspread.Client
) -> None:
    key = sheets_server.create_spreadsheet("Inventory 2026", {"Stock": [["sku"]]})
    assert gc.open("Inventory 2026").id == key


def test_opening_an_unknown_title_raises_not_found(gc: gspread.Client) -> None:
    with pytest.raises(gspread.SpreadsheetNotFound):
        gc.open("no such spreadsheet")


def test_raw_update_keeps_a_formula_payload_as_text(ws: gspread.Worksheet) -> None:
    ws.update([[HYPERLINK]], "A1", value_input_option=ValueInputOption.raw)
    assert ws.acell("A1").value == HYPERLINK
    assert ws.get("A1", value_render_option=ValueRenderOption.formula) == [[HYPERLINK]]


def test_user_entered_update_stores_a_formula(ws: gspread.Worksheet) -> None:
    ws.update([[HYPERLINK, "=1+1"]], "A1", value_input_option=ValueInputOption.user_entered)
    assert ws.get("A1:B1", value_render_option=ValueRenderOption.formula) == [[HYPERLINK, "=1+1"]]
    assert ws.get("A1:B1") == [["click", "2"]]


def test_user_entered_parses_numbers_dates_and_booleans(ws: gspread.Worksheet) -> None:
    ws.update(
        [["0042", "2020-01-01", "TRUE", "2,000,000.01"]],
        "A1",
        value_input_option=ValueInputOption.user_entered,
    )
    assert ws.get("A1:D1", value_render_option=ValueRenderOption.unformatted) == [
        [42, 43831, True, 2000000.01]
    ]
    assert ws.get("A1:D1") == [["42", "2020-01-01", "TRUE", "2,000,000.01"]]


def test_dates_read_as_formatted_strings_when_asked(ws: gspread.Worksheet) -> None:
    ws.update([["2020-01-01"]], "A1", value_input_option=ValueInputOption.user_entered)
    got = ws.get(
        "A1",
        value_render_option=ValueRenderOption.unformatted,
        date_time_render_option=DateTimeOption.formatted_string,
    )
    assert got == [["2020-01-01"]]


def test_raw_strings_that_look_like_numbers_stay_strings(ws: gspread.Worksheet) -> None:
    ws.update([["0042", "-2+3", "TRUE"]], "A1", value_input_option=ValueInputOption.raw)
    assert ws.get("A1:C1", value_render_option=ValueRenderOption.unformatted) == [["0042", "-2+3", "TRUE"]]


def test_trailing_empty_cells_and_rows_are_trimmed(ws: gspread.Worksheet) -> None:
    ws.update([["a", "", ""], ["", "", ""], ["b", "", "c"], ["", "", ""]], "A1")
    assert ws.get("A1:C4") == [["a"], [], ["b", "", "c"]]


def test_values_read_by_columns(ws: gspread.Worksheet) -> None:
    ws.update([["a", "b"], ["c", "d"]], "A1")
    assert ws.get("A1:B2", major_dimension=Dimension.cols) == [["a", "c"], ["b", "d"]]


def test_append_writes_after_the_table(ws: gspread.Worksheet) -> None:
    ws.update([["id", "name"], ["1", "Ann"]], "A1")
    answer = ws.append_rows([["2", "Bob"]], table_range="A1:B")
    assert answer["tableRange"] == "Sheet1!A1:B2"
    assert answer["updates"]["updatedRange"] == "Sheet1!A3:B3"
    assert ws.get_all_values()[:3] == [["id", "name"], ["1", "Ann"], ["2", "Bob"]]


def test_append_with_insert_rows_pushes_what_is_below_down(ws: gspread.Worksheet) -> None:
    ws.update([["id"], ["1"], [""], ["footer"]], "A1")
    ws.append_rows([["2"]], table_range="A1:A2", insert_data_option=InsertDataOption.insert_rows)
    assert ws.col_values(1) == ["id", "1", "2", "", "footer"]


def test_append_with_overwrite_uses_the_next_empty_row(ws: gspread.Worksheet) -> None:
    ws.update([["id"], ["1"], [""], ["footer"]], "A1")
    ws.append_rows([["2"]], table_range="A1:A2", insert_data_option=InsertDataOption.overwrite)
    assert ws.col_values(1) == ["id", "1", "2", "footer"]


def test_append_returns_the_written_values_when_asked(ws: gspread.Worksheet) -> None:
    answer = ws.spreadsheet.values_append(
        "Sheet1!A1",
        {"valueInputOption": "USER_ENTERED", "includeValuesInResponse": "true"},
        {"values": [["=2*3"]]},
    )
    assert answer["updates"]["updatedData"]["values"] == [["6"]]


def test_batch_update_writes_many_ranges_in_one_call(
    sheets_server: SheetsSandbox, ws: gspread.Worksheet
) -> None:
    ws.update([["a", "b", "c"], ["d", "e", "f"], ["g", "h", "i"]], "A1")
    sheets_server.knobs.reset_counts()
    ws.batch_update([{"range": "B1", "values": [["B"]]}, {"range": "A3:C3", "values": [["G", "", "I"]]}])
    assert sheets_server.knobs.calls["values.batchUpdate"] == 1
    assert ws.get_all_values() == [["a", "B", "c"], ["d", "e", "f"], ["G", "", "I"]]


def test_batch_update_with_a_bad_range_writes_nothing(ws: gspread.Worksheet) -> None:
    ws.update([["keep"]], "A1")
    with pytest.raises(gspread.exceptions.APIError) as caught:
        ws.batch_update([{"range": "A1", "values": [["lost"]]}, {"range": "Nope!A1", "values": [["x"]]}])
    assert caught.value.response.status_code == 400
    assert ws.acell("A1").value == "keep"


def test_batch_get_answers_each_range(ws: gspread.Worksheet) -> None:
    ws.update([["a", "b"], ["c", "d"]], "A1")
    assert ws.batch_get(["A1:A2", "B2"]) == [[["a"], ["c"]], [["d"]]]


def test_clear_empties_the_range_only(ws: gspread.Worksheet) -> None:
    ws.update([["a", "b"], ["c", "d"]], "A1")
    ws.batch_clear(["A1:A2"])
    assert ws.get_all_values() == [["", "b"], ["", "d"]]
    ws.clear()
    assert ws.spreadsheet.values_get("Sheet1") == {"range": "Sheet1!A1:Z1000", "majorDimension": "ROWS"}


def test_insert_rows_shifts_data_down(ws: gspread.Worksheet) -> None:
    ws.update([["1"], ["3"]], "A1")
    ws.insert_rows([["2"]], row=2)
    assert ws.col_values(1) == ["1", "2", "3"]
    assert ws.row_count == 1001


def test_insert_cols_shifts_data_right(ws: gspread.Worksheet) -> None:
    ws.update([["a", "c"]], "A1")
    ws.insert_cols([["b"]], col=2)
    assert ws.row_values(1) == ["a", "b", "c"]
    assert ws.col_count == 27


def test_delete_rows_pulls_data_up(ws: gspread.Worksheet) -> None:
    ws.update([["1"], ["2"], ["3"]], "A1")
    ws.delete_rows(2)
    assert ws.col_values(1) == ["1", "3"]


def test_add_and_delete_worksheet(gc: gspread.Client) -> None:
    book = gc.create("worksheets")
    added = book.add_worksheet("It's Q1", rows=5, cols=3)
    added.update([["x"]], "A1")
    assert [w.title for w in book.worksheets()] == ["Sheet1", "It's Q1"]
    assert book.values_get("'It''s Q1'!A1:C5")["range"] == "'It''s Q1'!A1:C5"
    book.del_worksheet(added)
    assert [w.title for w in book.worksheets()] == ["Sheet1"]


def test_a_bad_range_is_refused_with_unable_to_parse(ws: gspread.Worksheet) -> None:
    with pytest.raises(gspread.exceptions.APIError) as caught:
        ws.spreadsheet.values_get("Nope!A1")
    assert caught.value.response.status_code == 400
    assert caught.value.response.json()["error"] == {
        "code": 400,
        "message": "Unable to parse range: Nope!A1",
        "status": "INVALID_ARGUMENT",
    }


def test_reading_past_the_grid_is_refused(ws: gspread.Worksheet) -> None:
    with pytest.raises(gspread.exceptions.APIError, match="exceeds grid limits"):
        ws.get("A1:A1001")


def test_writing_past_the_grid_is_refused_until_the_sheet_is_resized(ws: gspread.Worksheet) -> None:
    with pytest.raises(
        gspread.exceptions.APIError, match=r"Range \(Sheet1!A1000:A1001\) exceeds grid limits"
    ):
        ws.update([["a"], ["b"]], "A1000")
    ws.add_rows(1)
    ws.update([["a"], ["b"]], "A1000")
    assert ws.get("A1000:A1001") == [["a"], ["b"]]


def test_append_adds_the_rows_it_needs(ws: gspread.Worksheet) -> None:
    ws.resize(rows=2, cols=2)
    ws.append_rows([["a"], ["b"], ["c"]], insert_data_option=InsertDataOption.overwrite)
    grid = ws.spreadsheet.fetch_sheet_metadata()["sheets"][0]["properties"]["gridProperties"]
    assert grid == {"rowCount": 3, "columnCount": 2}


def test_a_human_edit_is_visible_and_timed(sheets_server: SheetsSandbox, gc: gspread.Client) -> None:
    key = sheets_server.create_spreadsheet("edits", {"S": [["id"], ["1"]]})
    sheets_server.set_values(key, "S", (1, 0), [["1", "typed by hand"]])
    assert gc.open_by_key(key).worksheet("S").get_all_values() == [["id", ""], ["1", "typed by hand"]]
    assert set(sheets_server.edit_times(key, "S")) == {1}


def test_seeds_from_yaml_and_csv(tmp_path: Path) -> None:
    yaml_seed = tmp_path / "seed.yaml"
    yaml_seed.write_text("Orders:\n  Open:\n    - [id, qty]\n    - [A-1, 3]\n", encoding="utf-8")
    csv_seed = tmp_path / "Stock.csv"
    csv_seed.write_text("sku,count\nX,1\n", encoding="utf-8")
    server = SheetsSandbox(tls=False, seed=yaml_seed)
    ids = server.seed(csv_seed)
    orders = next(i for i in server.spreadsheet_ids() if i not in ids.values())
    assert server.values(orders, "Open", "UNFORMATTED_VALUE") == [["id", "qty"], ["A-1", 3]]
    assert server.values(ids["Stock"], "Sheet1") == [["sku", "count"], ["X", "1"]]


def test_state_survives_a_restart_with_a_data_dir(tmp_path: Path) -> None:
    with SheetsSandbox(data_dir=tmp_path, tls=False) as first:
        key = first.create_spreadsheet("kept", {"S": [["a"]]})
        gspread.Client(auth=None, session=first.session()).open_by_key(key).sheet1.update([["b"]], "A2")
    with SheetsSandbox(data_dir=tmp_path, tls=False) as second:
        assert second.values(key, "S") == [["a"], ["b"]]
        assert second.token == first.token
