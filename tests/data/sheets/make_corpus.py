"""Writes the broken-spreadsheet corpus in this folder (run it again only to change the corpus).

Each file is one way real spreadsheets go wrong; tests/badinput/test_broken_spreadsheets.py says what
syncd must do with each. The files are committed, so the tests never depend on this script.
"""

from __future__ import annotations

import csv
from datetime import date, datetime
from pathlib import Path

from openpyxl import Workbook

HERE = Path(__file__).resolve().parent
LONG = ("0123456789" * 5_000)[:50_000]  # Google Sheets' per-cell maximum
EXCEL_LONG = LONG[:32_767]  # Excel's per-cell maximum

DATE_TEXTS = [
    "2026-11-23",
    "23/11/2026",
    "11/23/2026",
    "23.11.2026",
    "23 Nov 2026",
    "November 23, 2026",
    "2026-11-23T09:30:00Z",
    "2026-11-23 09:30",
    "20261123",
    "23-Nov-26",
    "yesterday",
    "",
]


def write_csv(name: str, rows: list[list[str]]) -> None:
    with (HERE / name).open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)


def main() -> None:
    write_csv("blank_header.csv", [["Id", "", "Name"], ["1", "orphan", "Ann"], ["2", "", "Bob"]])
    write_csv("duplicate_headers.csv", [["Id", "Name", "Name"], ["1", "Ann", "Annie"]])
    write_csv("long_cells.csv", [["Id", "Notes"], ["1", LONG], ["2", "short"]])
    write_csv(
        "formula_text.csv",
        [["Id", "Notes"], ["1", "=1+1"], ["2", "+SUM(A1:A2)"], ["3", "-2+3"], ["4", "@cmd"], ["5", "plain"]],
    )
    write_csv("dates_as_text.csv", [["Id", "When"], *[[str(n), t] for n, t in enumerate(DATE_TEXTS, 1)]])
    write_csv(
        "ragged_rows.csv", [["Id", "Name", "City"], ["1", "Ann"], ["2", "Bob", "Leeds", "extra"], [], ["3"]]
    )

    book = Workbook()
    sheet = book.active
    sheet.title = "Merged"
    sheet.append(["Id", "Region", "Name"])
    sheet.append([1, "North", "Ann"])
    sheet.append([2, None, "Bob"])
    sheet.append([3, None, "Cy"])
    sheet.merge_cells("B2:B4")  # a person sees "North" for all three; the file holds it once

    formulas = book.create_sheet("Formulas")
    formulas.append(["Id", "Amount", "Total"])
    formulas.append([1, 10, "=B2*2"])
    formulas.append([2, 20, "=SUM(B2:B3)"])
    formulas.append([3, 30, '=HYPERLINK("http://evil.example","click")'])

    dates = book.create_sheet("Dates")
    dates.append(["Id", "Serial", "Typed", "Text"])
    dates.append([1, 46349, date(2026, 11, 23), "23/11/2026"])
    dates.append([2, 46349.5, datetime(2026, 11, 23, 12, 0), "2026-11-23"])
    dates.cell(2, 2).number_format = "yyyy-mm-dd"  # a serial shown as a date
    dates.cell(3, 2).number_format = "dd/mm/yyyy hh:mm"

    headers = book.create_sheet("Headers")
    headers.append(["Id", None, "Name", "Name"])
    headers.append([1, "x", "Ann", "Annie"])

    long_cells = book.create_sheet("Long")
    long_cells.append(["Id", "Notes"])
    long_cells.append([1, EXCEL_LONG])

    blank = book.create_sheet("Empty")
    del blank
    book.save(HERE / "broken.xlsx")


if __name__ == "__main__":
    main()
