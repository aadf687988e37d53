"""A worksheet as the connector holds it: rows streamed out of the response and kept packed.

The connector holds a whole worksheet to find rows by key; these tests pin down that the packed,
streamed form reads exactly as the parsed response did.
"""

from __future__ import annotations

import json
from typing import Any

from connectors.sheets.client import single_value_range
from connectors.sheets.table import PackedRows, SheetTable


def body_of(values: list[list[Any]], echoed: str = "Clients!A1:Z1000") -> bytes:
    """A values.batchGet response for one range, key order as Google sends it."""
    value_range = {"range": echoed, "majorDimension": "ROWS", "values": values}
    return json.dumps({"spreadsheetId": "s1", "valueRanges": [value_range]}).encode()


def test_a_streamed_response_gives_the_cells_json_loads_gives() -> None:
    values = [["Id", "Qty", "Price", "Paid", "Note"], ["7", 3, 2.5, True, 'ünïcode "quoted"'], [1e20, -0.0]]
    echoed, rows = single_value_range(body_of(values))
    streamed = list(rows)
    assert echoed == "Clients!A1:Z1000"
    assert streamed == values
    assert [type(cell) for cell in streamed[1]] == [str, int, float, bool, str]


def test_a_response_without_values_streams_no_rows() -> None:
    echoed, rows = single_value_range(json.dumps({"valueRanges": [{"range": "Empty!A1:Z1000"}]}).encode())
    assert (echoed, list(rows)) == ("Empty!A1:Z1000", [])


def test_streamed_rows_make_the_table_the_parsed_response_made() -> None:
    values = [["title row"], ["Id", "Name", ""], ["1", "Ann"], [], ["2", "Bob", "", ""]]
    parsed = SheetTable.parse("Clients", {"range": "Clients!A1:D5", "values": values}, 2, None)
    echoed, rows = single_value_range(body_of(values, "Clients!A1:D5"))
    streamed = SheetTable.from_rows("Clients", rows, echoed, 2, None)
    assert streamed.headers == parsed.headers == ["Id", "Name", "", ""]
    assert list(streamed.rows) == list(parsed.rows) == [["1", "Ann"], [], ["2", "Bob", "", ""]]
    assert (streamed.row_count, streamed.col_count) == (parsed.row_count, parsed.col_count) == (5, 4)


def test_packed_rows_hand_out_copies_and_keep_what_is_put_back() -> None:
    rows = PackedRows([["1", "Ann"]])
    row = rows[0]
    row.append("changed")
    assert rows[0] == ["1", "Ann"]
    rows[0] = row
    rows.append(["2", None, 4.5])
    assert list(rows) == [["1", "Ann", "changed"], ["2", None, 4.5]]
    assert len(rows) == 2
