"""A1 notation built by the Sheets connector names exactly the cells it means, for any worksheet title.

The connector builds ranges with gspread's helpers; the Sheets stand-in parses them as Google does
(quotes doubled inside a quoted title). Any title and any rectangle must survive the trip, and a
worksheet with any title must read back exactly what was written to it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from gspread.utils import absolute_range_name
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.sheets import SheetsConnector, SheetsSettings
from connectors.sheets.table import column_letter
from syncd.records import Op, WriteOp
from syncd.sandbox.a1 import column_index, column_letters, parse_range
from syncd.sandbox.sheets import SheetsSandbox

# Sheet titles: anything printable, quotes, `!`, `:` and spaces included (Google refuses none of these).
titles = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=60).filter(
    lambda t: t.strip() == t and t != ""
)
columns = st.integers(min_value=0, max_value=18_277)  # A .. ZZZ
rows = st.integers(min_value=1, max_value=10_000_000)


@given(columns)
def test_column_letters_agree_between_connector_and_stand_in(index: int) -> None:
    assert column_letter(index) == column_letters(index)
    assert column_index(column_letter(index)) == index


@given(titles, columns, columns, rows, rows)
@settings(max_examples=300)
def test_a_range_on_any_title_parses_back_to_that_title_and_those_cells(
    title: str, c1: int, c2: int, r1: int, r2: int
) -> None:
    left, right = sorted((c1, c2))
    top, bottom = sorted((r1, r2))
    text = absolute_range_name(title, f"{column_letter(left)}{top}:{column_letter(right)}{bottom}")
    parsed = parse_range(text)
    assert parsed.sheet == title
    assert (parsed.start_col, parsed.end_col) == (left, right + 1)
    assert (parsed.start_row, parsed.end_row) == (top - 1, bottom)


@given(title=titles)
@settings(max_examples=25, deadline=None)
def test_a_worksheet_with_any_title_reads_back_exactly_what_the_connector_wrote(
    title: str, sheets_server: SheetsSandbox, tmp_path_factory: pytest.TempPathFactory
) -> None:
    spreadsheet = sheets_server.create_spreadsheet("a1", {title: [["Id", "Name"]], "Other": [["Id", "Name"]]})
    info = sheets_server.info()
    settings_ = SheetsSettings(
        spreadsheet=spreadsheet,
        service_account_file=Path(info["service_account_file"]),
        endpoint=info["base_url"],
        ca_file=Path(info["ca_file"]),
        keys={title: "Id", "Other": "Id"},
        backoff_seconds=0,
    )
    connector = SheetsConnector("roster", settings_, tmp_path_factory.mktemp("a1"))
    try:
        done = connector.write(title, [WriteOp(Op.CREATE, {"Id": "K-1", "Name": title}, match=("Id", "K-1"))])
        assert done[0].ok, done[0]
        records = [r for batch in connector.read(title, None) for r in batch.records]
    finally:
        connector.close()
    assert [(r.fields["Id"], r.fields["Name"]) for r in records] == [("K-1", title)]
    rows = sheets_server.values(spreadsheet, title)  # a formula-looking Name is stored with an apostrophe
    assert [row[0] for row in rows] == ["Id", "K-1"]
    assert sheets_server.values(spreadsheet, "Other") == [["Id", "Name"]]
