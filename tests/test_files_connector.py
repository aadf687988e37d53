"""The files connector's own behaviour, beyond the conformance suite (tests/contract/).

Files are real files under tmp_path; they are prepared and inspected with the csv module and
openpyxl directly.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import stat
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from openpyxl.styles import Font
from pydantic import ValidationError

from connectors.files import FilesConnector, FilesSettings
from syncd.cells import quote, runs_as_formula, unquote
from syncd.errors import ConfigError, ConnectionDown
from syncd.records import Batch, Op, Record, WriteOp

FORMULA_PAYLOADS = ['=HYPERLINK("http://x")', "+cmd|' /C calc'!A0", "@SUM(1)", "-2+3", " =1", "\t=1"]


def connector(tmp_path: Path, path: str = "roster", **settings: Any) -> FilesConnector:
    return FilesConnector("roster", FilesSettings(path=Path(path), **settings), tmp_path)


def csv_file(tmp_path: Path, text: str, name: str = "Clients") -> Path:
    folder = tmp_path / "roster"
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.csv"
    path.write_bytes(text.encode("utf-8"))
    return path


def workbook(tmp_path: Path, rows: list[list[Any]], sheet: str = "Clients") -> Path:
    book = openpyxl.Workbook()
    book.active.title = sheet
    for row in rows:
        book.active.append(row)
    path = tmp_path / "roster.xlsx"
    book.save(path)
    return path


def read_all(conn: FilesConnector, stream: str = "Clients", cursor: Any = None) -> list[Batch]:
    return list(conn.read(stream, cursor))


def records(batches: list[Batch]) -> dict[str, Record]:
    return {r.key: r for b in batches for r in b.records}


# reading: columns by header


def test_columns_are_found_by_header_name_when_reordered(tmp_path: Path) -> None:
    csv_file(tmp_path, "Email,Name,Id\na@x.org,Ann,7\n")
    conn = connector(tmp_path, keys={"Clients": "Id"})
    assert records(read_all(conn))["7"].fields == {"Email": "a@x.org", "Name": "Ann", "Id": "7"}
    conn.write("Clients", [WriteOp(Op.UPDATE, {"Name": "Anna"}, key="7")])
    assert (tmp_path / "roster/Clients.csv").read_bytes().decode() == "Email,Name,Id\na@x.org,Anna,7\n"


def test_a_column_inserted_by_a_user_keeps_the_others_working(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "Id,Name\n1,Ann\n")
    conn = connector(tmp_path)
    cursor = read_all(conn)[-1].cursor
    path.write_text("Id,Phone,Name\n1,555,Ann\n")
    assert records(read_all(conn, cursor=cursor))["1"].fields == {"Id": "1", "Phone": "555", "Name": "Ann"}
    conn.write("Clients", [WriteOp(Op.UPDATE, {"Name": "Anna"}, key="1")])
    assert path.read_bytes().decode() == "Id,Phone,Name\n1,555,Anna\n"


def test_key_column_defaults_to_the_first_column(tmp_path: Path) -> None:
    csv_file(tmp_path, "Code,Name\nA1,Ann\n")
    [info] = connector(tmp_path).streams()
    assert (info.name, info.key_field, info.field_names()) == ("Clients", "Code", ["Code", "Name"])


def test_blank_header_cell_is_a_config_error_naming_file_and_column(tmp_path: Path) -> None:
    csv_file(tmp_path, "Id,,Name\n1,x,Ann\n")
    with pytest.raises(ConfigError, match=r"roster/Clients\.csv:1:2: column 2 has a blank header"):
        read_all(connector(tmp_path))


def test_repeated_header_is_a_config_error_naming_both_cells(tmp_path: Path) -> None:
    workbook(tmp_path, [["Id", "Email", "Name", "Email"], [1, "a", "b", "c"]])
    with pytest.raises(ConfigError, match=r"cell D1 repeats the header 'Email' of cell B1"):
        read_all(connector(tmp_path, "roster.xlsx"))


def test_configured_key_column_missing_from_the_header_is_a_config_error(tmp_path: Path) -> None:
    csv_file(tmp_path, "Id,Name\n1,Ann\n")
    with pytest.raises(ConfigError, match="key column 'Email' is not a header"):
        read_all(connector(tmp_path, keys={"Clients": "Email"}))


def test_trailing_blank_header_cells_are_not_columns(tmp_path: Path) -> None:
    csv_file(tmp_path, "Id,Name,,\n1,Ann,,\n")
    assert records(read_all(connector(tmp_path)))["1"].fields == {"Id": "1", "Name": "Ann"}


# reading: records, problems, cursor


def test_row_with_blank_key_becomes_a_read_problem_with_its_place_and_text(tmp_path: Path) -> None:
    csv_file(tmp_path, "Id,Name\n1,Ann\n  ,Nobody\n")
    batches = read_all(connector(tmp_path))
    [problem] = [p for b in batches for p in b.problems]
    assert (problem.category, problem.place, problem.raw) == ("bad-input", "Clients.csv:3", "  ,Nobody\n")
    assert list(records(batches)) == ["1"]


def test_second_row_with_a_seen_key_becomes_a_duplicate_problem(tmp_path: Path) -> None:
    csv_file(tmp_path, "Id,Name\n1,Ann\n2,Bob\n1,Ann again\n")
    batches = read_all(connector(tmp_path))
    [problem] = [p for b in batches for p in b.problems]
    assert (problem.category, problem.key, problem.place) == ("duplicate", "1", "Clients.csv:4")
    assert records(batches)["1"].fields["Name"] == "Ann"


def test_a_read_problem_is_reported_once_not_again_on_later_changes(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "Id,Name\n1,Ann\n,Nobody\n")
    conn = connector(tmp_path)
    cursor = read_all(conn)[-1].cursor
    path.write_text("Id,Name\n1,Anna\n,Nobody\n")
    later = read_all(conn, cursor=cursor)
    assert [p for b in later for p in b.problems] == []
    assert list(records(later)) == ["1"]


def test_xlsx_blank_key_problem_carries_the_row_as_csv_text(tmp_path: Path) -> None:
    workbook(tmp_path, [["Id", "Name", "Seats"], [None, "Nobody", 3]])
    [problem] = [p for b in read_all(connector(tmp_path, "roster.xlsx")) for p in b.problems]
    assert (problem.place, problem.raw) == ("roster.xlsx[Clients]:2", ",Nobody,3\n")


def test_row_removed_from_the_file_is_read_as_deleted(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "Id,Name\n1,Ann\n2,Bob\n")
    conn = connector(tmp_path)
    cursor = read_all(conn)[-1].cursor
    path.write_text("Id,Name\n1,Ann\n")
    [gone] = [r for b in read_all(conn, cursor=cursor) for r in b.records]
    assert (gone.key, gone.deleted, dict(gone.fields)) == ("2", True, {})


def test_unchanged_file_yields_nothing_after_its_cursor(tmp_path: Path) -> None:
    csv_file(tmp_path, "Id,Name\n1,Ann\n")
    conn = connector(tmp_path)
    assert read_all(conn, cursor=read_all(conn)[-1].cursor) == []


def test_a_changed_file_with_unchanged_rows_yields_only_a_checkpoint(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "Id,Name\n1,Ann\n")
    conn = connector(tmp_path)
    cursor = read_all(conn)[-1].cursor
    path.write_text('Id,Name\r\n"1","Ann"\r\n')
    [batch] = read_all(conn, cursor=cursor)
    assert batch.records == [] and batch.cursor is not None and batch.cursor != cursor


def test_missing_file_reads_as_nothing(tmp_path: Path) -> None:
    assert read_all(connector(tmp_path)) == []


def test_empty_rows_are_skipped(tmp_path: Path) -> None:
    csv_file(tmp_path, "Id,Name\n1,Ann\n\n,\n2,Bob\n")
    batches = read_all(connector(tmp_path))
    assert list(records(batches)) == ["1", "2"] and not [p for b in batches for p in b.problems]


def test_xlsx_cells_read_as_json_values(tmp_path: Path) -> None:
    workbook(
        tmp_path,
        [["Id", "Seats", "Price", "Active", "Since"], [1001, 3, 2.5, True, datetime.date(2024, 5, 1)]],
    )
    fields = records(read_all(connector(tmp_path, "roster.xlsx")))["1001"].fields
    assert fields == {"Id": 1001, "Seats": 3, "Price": 2.5, "Active": True, "Since": "2024-05-01T00:00:00"}


def test_rows_above_the_header_row_are_kept(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "Client list,exported 2024\nId,Name\n1,Ann\n")
    conn = connector(tmp_path, header_row=2)
    assert list(records(read_all(conn))) == ["1"]
    conn.write("Clients", [WriteOp(Op.CREATE, {"Id": "2", "Name": "Bob"})])
    assert path.read_bytes().decode() == "Client list,exported 2024\nId,Name\n1,Ann\n2,Bob\n"


def test_semicolon_separated_latin1_file(tmp_path: Path) -> None:
    (tmp_path / "roster").mkdir()
    path = tmp_path / "roster/Clients.csv"
    path.write_bytes("Id;Name\n1;Zoë\n".encode("cp1252"))
    conn = connector(tmp_path, encoding="cp1252", delimiter=";")
    assert records(read_all(conn))["1"].fields["Name"] == "Zoë"
    ok, refused = conn.write(
        "Clients",
        [WriteOp(Op.CREATE, {"Id": "2", "Name": "Zoé"}), WriteOp(Op.CREATE, {"Id": "3", "Name": "Zoë 🙂"})],
    )
    assert ok.ok and refused.error is not None and refused.error.category == "bad-input"
    assert path.read_bytes() == "Id;Name\n1;Zoë\n2;Zoé\n".encode("cp1252")


def test_file_in_another_encoding_is_a_config_error_telling_which(tmp_path: Path) -> None:
    (tmp_path / "roster").mkdir()
    (tmp_path / "roster/Clients.csv").write_bytes("Id,Name\n1,Zoë\n".encode("cp1252"))
    with pytest.raises(ConfigError, match="not valid utf-8-sig text; set `encoding:`"):
        read_all(connector(tmp_path))


def test_single_csv_file_is_one_stream_named_after_it(tmp_path: Path) -> None:
    (tmp_path / "clients.csv").write_text("Id,Name\n1,Ann\n")
    conn = connector(tmp_path, "clients.csv")
    assert [s.name for s in conn.streams()] == ["clients"]
    assert list(records(read_all(conn, "clients"))) == ["1"]


def test_find_maps_values_to_the_key_of_their_first_row(tmp_path: Path) -> None:
    csv_file(tmp_path, "Id,Email\n1,a@x.org\n2,b@x.org\n3,a@x.org\n")
    found = connector(tmp_path).find("Clients", "Email", ["a@x.org", "b@x.org", "c@x.org"])
    assert found == {"a@x.org": "1", "b@x.org": "2"}


# writing


def test_write_creates_a_missing_csv_file_with_its_header(tmp_path: Path) -> None:
    conn = connector(tmp_path, keys={"Clients": "Id"})
    [result] = conn.write("Clients", [WriteOp(Op.CREATE, {"Name": "Ann", "Id": "1"})])
    assert (result.ok, result.key, result.created) == (True, "1", True)
    assert (tmp_path / "roster/Clients.csv").read_bytes().decode() == "Id,Name\r\n1,Ann\r\n"


def test_write_creates_a_missing_worksheet_beside_the_others(tmp_path: Path) -> None:
    workbook(tmp_path, [["Sku"], ["A-1"]], sheet="Stock")
    conn = connector(tmp_path, "roster.xlsx", keys={"Clients": "Id"})
    conn.write("Clients", [WriteOp(Op.CREATE, {"Id": "1", "Name": "Ann"})])
    book = openpyxl.load_workbook(tmp_path / "roster.xlsx")
    assert book.sheetnames == ["Stock", "Clients"]
    assert [[c.value for c in row] for row in book["Clients"].iter_rows()] == [["Id", "Name"], ["1", "Ann"]]


def test_write_to_a_missing_file_without_a_key_column_fails_every_op(tmp_path: Path) -> None:
    results = connector(tmp_path).write("Clients", [WriteOp(Op.CREATE, {"Name": "Ann"})])
    assert [(r.ok, r.error and r.error.code) for r in results] == [(False, "NO_KEY_COLUMN")]
    assert not (tmp_path / "roster/Clients.csv").exists()


def test_csv_write_leaves_other_rows_byte_identical(tmp_path: Path) -> None:
    text = 'Id,Name,Note\r\n1,"Ann" ,  spaced  \r\n2,Bob,"multi\nline"\r\n3,"Cy, Jr.",\r\n'
    path = csv_file(tmp_path, text)
    connector(tmp_path).write("Clients", [WriteOp(Op.UPDATE, {"Name": "Bobby"}, key="2")])
    assert path.read_bytes().decode() == text.replace('2,Bob,"multi\nline"', '2,Bobby,"multi\nline"')


def test_csv_write_keeps_a_byte_order_mark(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "\ufeffId,Name\n1,Ann\n")
    connector(tmp_path).write("Clients", [WriteOp(Op.CREATE, {"Id": "2", "Name": "Bob"})])
    assert path.read_bytes() == b"\xef\xbb\xbfId,Name\n1,Ann\n2,Bob\n"


def test_csv_row_appended_after_a_last_line_without_newline(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "Id,Name\n1,Ann")
    connector(tmp_path).write("Clients", [WriteOp(Op.CREATE, {"Id": "2", "Name": "Bob"})])
    assert path.read_bytes().decode() == "Id,Name\n1,Ann\n2,Bob\n"


def test_xlsx_write_leaves_other_cells_sheets_and_formatting(tmp_path: Path) -> None:
    path = workbook(tmp_path, [["Id", "Name", "Total"], ["1", "Ann", "=2*3"], ["2", "Bob", 5]])
    book = openpyxl.load_workbook(path)
    book["Clients"]["B3"].font = Font(bold=True)
    book.create_sheet("Notes")["A1"] = "keep me"
    book.save(path)
    connector(tmp_path, "roster.xlsx").write("Clients", [WriteOp(Op.UPDATE, {"Name": "Bobby"}, key="2")])
    after = openpyxl.load_workbook(path)
    sheet = after["Clients"]
    assert (sheet["B3"].value, sheet["B3"].font.bold) == ("Bobby", True)
    assert (sheet["C2"].value, sheet["C2"].data_type, sheet["C3"].value) == ("=2*3", "f", 5)
    assert after["Notes"]["A1"].value == "keep me"


def test_xlsx_delete_removes_the_row_and_closes_the_gap(tmp_path: Path) -> None:
    path = workbook(tmp_path, [["Id"], ["1"], ["2"], ["3"], ["4"]])
    connector(tmp_path, "roster.xlsx").write(
        "Clients", [WriteOp(Op.DELETE, {}, key="2"), WriteOp(Op.DELETE, {}, key="3")]
    )
    assert [c.value for c in openpyxl.load_workbook(path)["Clients"]["A"]] == ["Id", "1", "4"]


def test_new_field_is_appended_as_the_last_column(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "Id,Name\n1,Ann\n2,Bob\n")
    connector(tmp_path).write("Clients", [WriteOp(Op.UPDATE, {"Phone": "555"}, key="2")])
    assert path.read_bytes().decode() == "Id,Name,Phone\n1,Ann\n2,Bob,555\n"


def test_create_with_an_existing_key_updates_that_row(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "Id,Name\n1,Ann\n")
    [result] = connector(tmp_path).write("Clients", [WriteOp(Op.CREATE, {"Id": "1", "Name": "Anna"})])
    assert (result.ok, result.created) == (True, False)
    assert path.read_bytes().decode() == "Id,Name\n1,Anna\n"


def test_create_matched_on_another_column_updates_that_row(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "Id,Email,Name\n1,a@x.org,Ann\n")
    op = WriteOp(Op.CREATE, {"Name": "Anna"}, match=("Email", "a@x.org"))
    [result] = connector(tmp_path).write("Clients", [op])
    assert (result.key, result.created) == ("1", False)
    assert path.read_bytes().decode() == "Id,Email,Name\n1,a@x.org,Anna\n"


def test_update_of_a_missing_row_fails_with_not_found(tmp_path: Path) -> None:
    csv_file(tmp_path, "Id,Name\n1,Ann\n")
    [result] = connector(tmp_path).write("Clients", [WriteOp(Op.UPDATE, {"Name": "X"}, key="9")])
    assert result.error is not None
    assert (result.ok, result.error.category, result.error.code) == (False, "not-found", "NOT_FOUND")


def test_value_that_is_not_plain_fails_only_its_own_op(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "Id,Tags\n1,\n")
    bad, good = connector(tmp_path).write(
        "Clients",
        [WriteOp(Op.UPDATE, {"Tags": ["a", "b"]}, key="1"), WriteOp(Op.CREATE, {"Id": "2", "Tags": "c"})],
    )
    assert bad.error is not None and bad.error.category == "bad-input" and good.ok
    assert path.read_bytes().decode() == "Id,Tags\n1,\n2,c\n"


def test_update_that_would_repeat_another_rows_key_is_refused(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "Id,Name\n1,Ann\n2,Bob\n")
    [result] = connector(tmp_path).write("Clients", [WriteOp(Op.UPDATE, {"Id": "1"}, key="2")])
    assert result.error is not None and result.error.category == "duplicate"
    assert path.read_bytes().decode() == "Id,Name\n1,Ann\n2,Bob\n"


def test_write_that_changes_nothing_does_not_touch_the_file(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "Id,Name,Seats\n1,Ann,3\n")
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    [result] = connector(tmp_path).write(
        "Clients", [WriteOp(Op.UPSERT, {"Id": "1", "Name": "Ann", "Seats": 3})]
    )
    assert result.ok and path.stat().st_mtime_ns == 1_000_000_000


# formula safety


@pytest.mark.parametrize("payload", FORMULA_PAYLOADS)
def test_formula_payload_is_stored_as_text_in_csv(tmp_path: Path, payload: str) -> None:
    path = csv_file(tmp_path, "Id,Name\n")
    conn = connector(tmp_path)
    conn.write("Clients", [WriteOp(Op.CREATE, {"Id": "1", "Name": payload})])
    stored = path.read_bytes().decode().splitlines()[1]
    assert stored.split(",", 1)[1].lstrip('"').startswith("'")
    assert records(read_all(conn))["1"].fields["Name"] == payload


@pytest.mark.parametrize("payload", FORMULA_PAYLOADS)
def test_formula_payload_is_never_a_formula_in_xlsx(tmp_path: Path, payload: str) -> None:
    path = workbook(tmp_path, [["Id", "Name"]])
    conn = connector(tmp_path, "roster.xlsx")
    conn.write("Clients", [WriteOp(Op.CREATE, {"Id": "1", "Name": payload})])
    cell = openpyxl.load_workbook(path)["Clients"]["B2"]
    assert cell.data_type != "f" and str(cell.value).startswith("'")
    assert records(read_all(conn))["1"].fields["Name"] == payload


def test_error_like_text_stays_text_in_xlsx(tmp_path: Path) -> None:
    path = workbook(tmp_path, [["Id", "Name"]])
    connector(tmp_path, "roster.xlsx").write("Clients", [WriteOp(Op.CREATE, {"Id": "1", "Name": "#N/A"})])
    cell = openpyxl.load_workbook(path)["Clients"]["B2"]
    assert (cell.value, cell.data_type) == ("#N/A", "s")


def test_columns_listed_as_formulas_are_written_as_given(tmp_path: Path) -> None:
    path = workbook(tmp_path, [["Id", "Total"]])
    conn = connector(tmp_path, "roster.xlsx", formulas={"Clients": ["Total"]})
    conn.write("Clients", [WriteOp(Op.CREATE, {"Id": "1", "Total": "=2*3"})])
    cell = openpyxl.load_workbook(path)["Clients"]["B2"]
    assert (cell.value, cell.data_type) == ("=2*3", "f")


def test_numbers_are_written_as_numbers(tmp_path: Path) -> None:
    path = workbook(tmp_path, [["Id", "Balance", "Rate"]])
    connector(tmp_path, "roster.xlsx").write(
        "Clients", [WriteOp(Op.CREATE, {"Id": "1", "Balance": -5, "Rate": 0.5})]
    )
    row = openpyxl.load_workbook(path)["Clients"][2]
    assert [(c.value, c.data_type) for c in row[1:]] == [(-5, "n"), (0.5, "n")]


def test_negative_number_text_is_not_disfigured(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "Id,Balance\n")
    connector(tmp_path).write("Clients", [WriteOp(Op.CREATE, {"Id": "1", "Balance": "-5.25"})])
    assert path.read_bytes().decode().splitlines()[1] == "1,-5.25"


@given(st.text())
def test_quoting_makes_any_text_safe_and_reversible(text: str) -> None:
    assert not runs_as_formula(quote(text))
    assert unquote(quote(text)) == text


# atomic replacement


def test_write_leaves_no_temporary_file_and_keeps_the_file_mode(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "Id,Name\n1,Ann\n")
    path.chmod(0o640)
    connector(tmp_path).write("Clients", [WriteOp(Op.CREATE, {"Id": "2", "Name": "Bob"})])
    assert sorted(p.name for p in path.parent.iterdir()) == ["Clients.csv"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_a_crash_during_the_write_leaves_the_original_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    path = csv_file(tmp_path, "Id,Name\n1,Ann\n")

    def crash(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, failing, crash)
    with pytest.raises(ConnectionDown, match=r"cannot write roster/Clients\.csv: No space left on device"):
        connector(tmp_path).write("Clients", [WriteOp(Op.CREATE, {"Id": "2", "Name": "Bob"})])
    monkeypatch.undo()
    assert path.read_bytes().decode() == "Id,Name\n1,Ann\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["Clients.csv"]


# settings and registration


def test_settings_refuse_unknown_options_and_old_workbook_formats() -> None:
    with pytest.raises(ValidationError, match="extra"):
        FilesSettings.model_validate({"path": "x", "sheet": "y"})
    with pytest.raises(ValidationError, match=r"\.xls workbooks are not supported"):
        FilesSettings.model_validate({"path": "book.xls"})


def test_connector_is_registered_under_its_entry_point() -> None:
    [entry] = importlib.metadata.entry_points(group="syncd.connectors", name="files")
    assert entry.load() is FilesConnector


def test_xlsx_rows_deleted_and_added_in_one_write_land_in_place(tmp_path: Path) -> None:
    path = workbook(tmp_path, [["Id", "Name"], ["1", "Ann"], ["2", "Bob"], ["3", "Cy"]])
    connector(tmp_path, "roster.xlsx").write(
        "Clients", [WriteOp(Op.DELETE, {}, key="2"), WriteOp(Op.CREATE, {"Id": "4", "Name": "Di"})]
    )
    sheet = openpyxl.load_workbook(path)["Clients"]
    assert [[c.value for c in row] for row in sheet.iter_rows()] == [
        ["Id", "Name"],
        ["1", "Ann"],
        ["3", "Cy"],
        ["4", "Di"],
    ]


def test_xlsx_repeated_write_of_a_whole_float_leaves_the_file_alone(tmp_path: Path) -> None:
    path = workbook(tmp_path, [["Id", "Seats"], ["1", 2]])
    conn = connector(tmp_path, "roster.xlsx")
    conn.write("Clients", [WriteOp(Op.UPDATE, {"Seats": 3.0}, key="1")])
    before = path.read_bytes()
    conn.write("Clients", [WriteOp(Op.UPDATE, {"Seats": 3.0}, key="1")])
    assert path.read_bytes() == before


def test_deletions_are_batched_and_only_the_last_batch_is_a_checkpoint(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "Id\n1\n2\n3\n4\n5\n")
    conn = connector(tmp_path, batch_size=2)
    cursor = read_all(conn)[-1].cursor
    path.write_text("Id\n3\n")
    batches = read_all(conn, cursor=cursor)
    assert [[(r.key, r.deleted) for r in b.records] for b in batches] == [
        [("1", True), ("2", True)],
        [("4", True), ("5", True)],
        [],
    ]
    assert [b.cursor is not None for b in batches] == [False, False, True]


def test_edit_time_column_gives_each_record_its_modified_at(tmp_path: Path) -> None:
    csv_file(
        tmp_path, "Account No,Client,Updated\nA1,Acme,2026-11-20T09:30:00+01:00\nA2,Bolt,\nA3,Cole,soon\n"
    )
    found = records(read_all(connector(tmp_path, modified={"Clients": "Updated"})))
    assert found["A1"].modified_at == datetime.datetime(2026, 11, 20, 8, 30, tzinfo=datetime.UTC)
    assert found["A2"].modified_at is None and found["A3"].modified_at is None
