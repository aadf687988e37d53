"""The corpus of broken spreadsheets in tests/data/sheets/ through the files connector and transforms.

Each file is one way real sheets go wrong (tests/data/sheets/make_corpus.py made them). What syncd
must do: refuse headers it cannot key by, with the file and cell named; keep 50,000-character cells
whole; never evaluate or create a formula; read merged cells as the file holds them and still write
into them; read date serials as dates, and parse dates typed as text or refuse them with a reason.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from openpyxl import load_workbook

from connectors.files import FilesConnector, FilesSettings
from syncd.errors import ConfigError
from syncd.records import Op, Record, WriteOp
from syncd.transforms import TransformError, compile_transform

CORPUS = Path(__file__).resolve().parents[1] / "data" / "sheets"
LONG = 50_000


@pytest.fixture
def work(tmp_path: Path) -> Path:
    for item in CORPUS.iterdir():
        if item.suffix in (".csv", ".xlsx"):
            shutil.copy(item, tmp_path / item.name)
    return tmp_path


def read(connector: FilesConnector, stream: str) -> list[Record]:
    return [r for batch in connector.read(stream, None) for r in batch.records]


def csv_files(work: Path, **keys: str) -> FilesConnector:
    return FilesConnector("sheet", FilesSettings(path=work, keys=keys), work)


def workbook(work: Path, **keys: str) -> FilesConnector:
    return FilesConnector("book", FilesSettings(path=work / "broken.xlsx", keys=keys), work)


@pytest.mark.parametrize(
    ("stream", "where", "why"),
    [
        ("blank_header", "blank_header.csv:1:2", "blank header"),
        ("duplicate_headers", "duplicate_headers.csv:1:3", "repeats the header 'Name'"),
    ],
)
def test_blank_or_repeated_csv_headers_are_refused_with_the_cell_named(
    work: Path, stream: str, where: str, why: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        read(csv_files(work), stream)
    assert where in str(caught.value) and why in str(caught.value)


def test_blank_and_repeated_xlsx_headers_are_refused_with_each_cell_named(work: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        read(workbook(work), "Headers")
    text = str(caught.value)
    assert "broken.xlsx[Headers]:1:2: cell B1 has a blank header" in text
    assert "cell D1 repeats the header 'Name' of cell C1" in text


def test_a_50000_character_cell_is_read_whole_and_written_back_whole(work: Path) -> None:
    sheet = csv_files(work, long_cells="Id")
    notes = {r.key: r.fields["Notes"] for r in read(sheet, "long_cells")}
    assert isinstance(notes["1"], str) and len(notes["1"]) == LONG
    changed = notes["1"][:-1] + "!"
    assert sheet.write("long_cells", [WriteOp(Op.UPDATE, {"Notes": changed}, key="1")])[0].ok
    assert {r.key: r.fields["Notes"] for r in read(sheet, "long_cells")}["1"] == changed


def test_text_longer_than_an_xlsx_cell_holds_fails_that_record_only(work: Path) -> None:
    book = workbook(work, Long="Id")
    results = book.write(
        "Long",
        [WriteOp(Op.UPDATE, {"Notes": "x" * LONG}, key="1"), WriteOp(Op.CREATE, {"Id": 2, "Notes": "fits"})],
    )
    assert not results[0].ok and results[0].error is not None
    assert "32767" in results[0].error.message
    assert results[1].ok
    assert [r.fields["Notes"] for r in read(book, "Long")][1] == "fits"


def test_formula_text_in_a_csv_is_data_and_is_written_back_inert(work: Path) -> None:
    sheet = csv_files(work, formula_text="Id")
    notes = [r.fields["Notes"] for r in read(sheet, "formula_text")]
    assert notes == ["=1+1", "+SUM(A1:A2)", "-2+3", "@cmd", "plain"]
    assert sheet.write("formula_text", [WriteOp(Op.UPDATE, {"Notes": "=2+2"}, key="5")])[0].ok
    with (work / "formula_text.csv").open(newline="", encoding="utf-8-sig") as fh:
        stored = {row["Id"]: row["Notes"] for row in csv.DictReader(fh)}
    assert not stored["5"].startswith("=")
    assert [r.fields["Notes"] for r in read(sheet, "formula_text")][-1] == "=2+2"


def test_workbook_formulas_are_read_as_their_text_never_evaluated_and_survive_a_write(work: Path) -> None:
    book = workbook(work, Formulas="Id")
    totals = [r.fields["Total"] for r in read(book, "Formulas")]
    assert totals == ["=B2*2", "=SUM(B2:B3)", '=HYPERLINK("http://evil.example","click")']
    assert book.write("Formulas", [WriteOp(Op.UPDATE, {"Amount": 11}, key="1")])[0].ok
    sheet = load_workbook(work / "broken.xlsx")["Formulas"]
    assert sheet["C2"].value == "=B2*2" and sheet["C2"].data_type == "f"
    assert sheet["B2"].value == 11


def test_merged_cells_read_as_the_file_holds_them_and_a_write_inside_them_lands(work: Path) -> None:
    book = workbook(work, Merged="Id")
    assert [r.fields["Region"] for r in read(book, "Merged")] == ["North", None, None]
    results = book.write("Merged", [WriteOp(Op.UPDATE, {"Region": "South"}, key="3")])
    assert results[0].ok
    assert [r.fields["Region"] for r in read(book, "Merged")] == ["North", None, "South"]


def test_ragged_rows_read_missing_cells_as_empty_and_skip_blank_lines(work: Path) -> None:
    rows = {r.key: r.fields for r in read(csv_files(work, ragged_rows="Id"), "ragged_rows")}
    assert rows == {
        "1": {"Id": "1", "Name": "Ann", "City": None},
        "2": {"Id": "2", "Name": "Bob", "City": "Leeds"},
        "3": {"Id": "3", "Name": None, "City": None},
    }


def test_a_cell_beyond_the_headers_survives_a_write_of_its_row(work: Path) -> None:
    sheet = csv_files(work, ragged_rows="Id")
    assert sheet.write("ragged_rows", [WriteOp(Op.UPDATE, {"Name": "Robert"}, key="2")])[0].ok
    with (work / "ragged_rows.csv").open(newline="", encoding="utf-8-sig") as fh:
        lines = list(csv.reader(fh))
    assert ["2", "Robert", "Leeds", "extra"] in lines


def test_date_serials_formatted_as_dates_read_as_iso_dates(work: Path) -> None:
    rows = [r.fields for r in read(workbook(work, Dates="Id"), "Dates")]
    assert rows[0]["Serial"] == rows[0]["Typed"] == "2026-11-23T00:00:00"
    assert rows[1]["Serial"] == rows[1]["Typed"] == "2026-11-23T12:00:00"


FORMATS = {
    "2026-11-23": None,
    "23/11/2026": "%d/%m/%Y",
    "11/23/2026": "%m/%d/%Y",
    "23.11.2026": "%d.%m.%Y",
    "23 Nov 2026": "%d %b %Y",
    "November 23, 2026": "%B %d, %Y",
    "20261123": "%Y%m%d",
    "23-Nov-26": "%d-%b-%y",
}


def test_dates_typed_as_text_parse_with_their_format_or_are_refused_with_the_value_named(work: Path) -> None:
    texts = [r.fields["When"] for r in read(csv_files(work, dates_as_text="Id"), "dates_as_text")]
    parsed, refused = {}, {}
    for text in texts:
        if text is None:
            continue
        fmt = FORMATS.get(str(text))
        transform = compile_transform({"date": {"format": fmt}} if fmt else "date")
        try:
            parsed[text] = transform.forward(text)
        except TransformError as exc:
            refused[text] = str(exc)
    assert set(parsed.values()) == {"2026-11-23"}
    assert set(parsed) == set(FORMATS)
    assert set(refused) == {"2026-11-23T09:30:00Z", "2026-11-23 09:30", "yesterday"}
    assert all(repr(text) in message for text, message in refused.items())


def test_a_bare_serial_number_given_to_the_date_transform_is_refused_not_guessed() -> None:
    with pytest.raises(TransformError, match="46349"):
        compile_transform("date").forward(46349)
