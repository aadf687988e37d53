"""The files connector on large CSV files: streamed reads, a compact cursor, writes and find that
cost what the ops cost, not what the file costs.

Files are real files under tmp_path, prepared and inspected as bytes. Where a behaviour must be
the same as before the streaming rewrite, the reference is the whole-file document
(CsvFormat.open + Table + render), which is what the connector used to run on every call.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import connectors.files.csv_index as csv_index
import connectors.files.fingerprints as fingerprints
import connectors.files.reading as reading
from connectors.files import FilesConnector, FilesSettings
from connectors.files.csv_format import CsvFormat
from connectors.files.fingerprints import Fingerprints
from connectors.files.hashes import text_hash
from syncd.errors import ConfigError
from syncd.records import Batch, Cursor, Op, Record, WriteOp, WriteResult, content_hash, preferred_write_batch


def connector(tmp_path: Path, **settings: Any) -> FilesConnector:
    return FilesConnector("roster", FilesSettings(path=Path("roster"), **settings), tmp_path)


def csv_file(tmp_path: Path, data: bytes | str) -> Path:
    folder = tmp_path / "roster"
    folder.mkdir(exist_ok=True)
    path = folder / "Clients.csv"
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def read_all(conn: FilesConnector, cursor: Cursor | None = None) -> list[Batch]:
    return list(conn.read("Clients", cursor))


def changed(batches: list[Batch]) -> dict[str, Record]:
    return {r.key: r for b in batches for r in b.records}


def json_round_trip(cursor: Cursor | None) -> Cursor:
    return json.loads(json.dumps(cursor))


class ScanCounter:
    """Counts full scans of a file by the write/find index."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = csv_index.CsvIndex.scan.__func__  # type: ignore[attr-defined]

        def counting(cls: type[csv_index.CsvIndex], *args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return real(cls, *args, **kwargs)

        monkeypatch.setattr(csv_index.CsvIndex, "scan", classmethod(counting))


def old_format_cursor(text: str) -> dict[str, Any]:
    """The cursor the connector wrote before the compact format: {key: content hash} of each row."""
    rows = list(csv.reader(io.StringIO(text, newline="")))
    header, body = rows[0], rows[1:]
    hashes = {
        row[0]: content_hash({name: value for name, value in zip(header, row, strict=True) if value != ""})
        for row in body
    }
    return {
        "file_hash": hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest(),
        "rows": hashes,
        "problems": [],
    }


# writes


def test_write_batch_size_asks_the_engine_for_2000_ops_per_call() -> None:
    assert preferred_write_batch(connector(Path("/nonexistent"))) == 2_000


def test_a_created_row_is_appended_and_every_other_byte_stays_identical(tmp_path: Path) -> None:
    before = b'\xef\xbb\xbfId,Name,Note\r\n1,"Ann" ,  spaced  \r\n2,Bob,"multi\nline"\r\n\r\n3,"Cy, Jr.",\r\n'
    path = csv_file(tmp_path, before)
    [result] = connector(tmp_path).write("Clients", [WriteOp(Op.CREATE, {"Id": "4", "Name": "Di"})])
    assert (result.ok, result.key, result.created) == (True, "4", True)
    assert path.read_bytes() == before + b"4,Di\r\n"


def test_an_update_rewrites_only_its_own_row(tmp_path: Path) -> None:
    before = 'Id,Name,Note\n1,"Ann" ,x\n2,Bob,"multi\nline"\n3,Cy,\n'
    path = csv_file(tmp_path, before)
    connector(tmp_path).write("Clients", [WriteOp(Op.UPDATE, {"Note": "y"}, key="2")])
    assert path.read_bytes().decode() == 'Id,Name,Note\n1,"Ann" ,x\n2,Bob,y\n3,Cy,\n'


def test_a_deleted_last_row_without_line_end_leaves_the_rest_alone(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "Id,Name\r\n1,Ann\r\n2,Bob")
    connector(tmp_path).write("Clients", [WriteOp(Op.DELETE, {}, key="2")])
    assert path.read_bytes().decode() == "Id,Name\r\n1,Ann\r\n"


def test_consecutive_writes_of_a_pass_scan_the_file_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scans = ScanCounter(monkeypatch)
    path = csv_file(tmp_path, "Id,Name\n0,Zed\n")
    conn = connector(tmp_path)
    for batch in range(5):
        ops = [
            WriteOp(Op.CREATE, {"Id": f"{batch}-{i}", "Name": "n"}, match=("Id", f"{batch}-{i}"))
            for i in range(3)
        ]
        assert all(r.created for r in conn.write("Clients", ops))
        assert conn.find("Clients", "Id", [f"{batch}-0", "nobody"]) == {f"{batch}-0": f"{batch}-0"}
    conn.write("Clients", [WriteOp(Op.UPDATE, {"Name": "Zoe"}, key="0")])
    conn.write("Clients", [WriteOp(Op.DELETE, {}, key="1-1")])
    assert conn.find("Clients", "Id", ["4-2", "1-1"]) == {"4-2": "4-2"}
    assert scans.count == 1
    lines = path.read_bytes().decode().splitlines()
    assert lines[:3] == ["Id,Name", "0,Zoe", "0-0,n"] and len(lines) == 1 + 1 + 15 - 1


def test_a_create_whose_key_exists_updates_that_row_in_place(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "Id,Email,Name\n1,a@x.org,Ann\n2,b@x.org,Bob\n")
    conn = connector(tmp_path)
    results = conn.write(
        "Clients",
        [
            WriteOp(Op.CREATE, {"Name": "Bobby"}, match=("Email", "b@x.org")),
            WriteOp(Op.CREATE, {"Id": "3", "Email": "c@x.org", "Name": "Cy"}, match=("Email", "c@x.org")),
        ],
    )
    assert [(r.key, r.created) for r in results] == [("2", False), ("3", True)]
    assert path.read_bytes().decode() == "Id,Email,Name\n1,a@x.org,Ann\n2,b@x.org,Bobby\n3,c@x.org,Cy\n"


def test_a_key_changed_by_an_update_is_found_under_its_new_key(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "Id,Name\n1,Ann\n2,Bob\n")
    conn = connector(tmp_path)
    conn.write("Clients", [WriteOp(Op.UPDATE, {"Id": "9"}, key="2")])
    [result] = conn.write("Clients", [WriteOp(Op.CREATE, {"Id": "9", "Name": "Bo"})])
    assert result.created is False
    assert conn.find("Clients", "Id", ["2", "9"]) == {"9": "9"}
    assert path.read_bytes().decode() == "Id,Name\n1,Ann\n9,Bo\n"


def test_a_file_changed_by_someone_else_is_scanned_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scans = ScanCounter(monkeypatch)
    path = csv_file(tmp_path, "Id,Name\n1,Ann\n")
    conn = connector(tmp_path)
    assert conn.find("Clients", "Name", ["Bob"]) == {}
    path.write_text("Id,Name\n1,Ann\n2,Bob\n")
    assert conn.find("Clients", "Name", ["Bob"]) == {"Bob": "2"}
    [result] = conn.write("Clients", [WriteOp(Op.CREATE, {"Id": "2", "Name": "Bobby"})])
    assert result.created is False
    assert path.read_bytes().decode() == "Id,Name\n1,Ann\n2,Bobby\n"
    assert scans.count == 2


def test_a_save_that_keeps_size_and_time_is_still_not_overwritten(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "Id,Name\n1,Ann\n2,Bob\n")
    conn = connector(tmp_path)
    assert conn.find("Clients", "Id", ["2"]) == {"2": "2"}  # the index now describes this version
    status = path.stat()
    with path.open("r+b") as fh:  # same inode, same size, mtime put back: only the bytes tell
        fh.write(b"Id,Name\n1,Amy\n")
    os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns))
    conn.write("Clients", [WriteOp(Op.UPDATE, {"Name": "Bobby"}, key="2")])
    assert path.read_bytes().decode() == "Id,Name\n1,Amy\n2,Bobby\n"


def test_a_utf16_file_is_read_and_written_whole(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "Id,Name\r\n1,Zoë\r\n".encode("utf-16"))
    conn = connector(tmp_path, encoding="utf-16")
    assert changed(read_all(conn))["1"].fields == {"Id": "1", "Name": "Zoë"}
    conn.write("Clients", [WriteOp(Op.CREATE, {"Id": "2", "Name": "Åsa"})])
    assert path.read_bytes().decode("utf-16") == "Id,Name\r\n1,Zoë\r\n2,Åsa\r\n"
    assert conn.find("Clients", "Name", ["Åsa"]) == {"Åsa": "2"}


def whole_file_write(fmt: CsvFormat, data: bytes, ops: list[WriteOp]) -> tuple[bytes, list[WriteResult]]:
    """What the connector did before: load the whole file, apply the ops, render it whole."""
    document = fmt.open("Clients", data, editable=True)
    assert document is not None
    results = [document.table.apply(op) for op in ops]
    return (document.render() if document.table.changed else data), results


KEYS = st.sampled_from(["1", "2", "3", "4", " 2", "=5", "Zoë", ""])
CELLS = st.sampled_from(["", "a", "b", " b ", "x,y", 'q"q', "multi\nline", "=1+1", "'=1", "€5", "Zoë"])
ROWS = st.lists(st.tuples(KEYS, CELLS, CELLS), max_size=8)


@dataclass(frozen=True)
class Layout:
    """How a file is written out: the things a byte-exact rewrite must keep."""

    encoding: str
    bom: bool
    preamble: bool
    line_end: str
    last_line_end: bool

    def render(self, rows: list[tuple[str, str, str]]) -> bytes:
        out = io.StringIO()
        lines = (
            [("Exported", "2024"), ("Id", "Email", "Name")] if self.preamble else [("Id", "Email", "Name")]
        )
        csv.writer(out, lineterminator=self.line_end).writerows([*lines, *rows])
        text = out.getvalue()
        data = (text if self.last_line_end else text[: -len(self.line_end)]).encode(self.encoding)
        return (codecs.BOM_UTF8 if self.bom else b"") + data


LAYOUTS = st.builds(
    Layout,
    encoding=st.sampled_from(["utf-8", "cp1252"]),
    bom=st.booleans(),
    preamble=st.booleans(),
    line_end=st.sampled_from(["\n", "\r\n"]),
    last_line_end=st.booleans(),
).filter(lambda layout: not (layout.bom and layout.encoding == "cp1252"))

OPS = st.lists(
    st.builds(
        WriteOp,
        op=st.sampled_from(list(Op)),
        fields=st.dictionaries(st.sampled_from(["Id", "Email", "Name", "Phone"]), CELLS | KEYS, max_size=3),
        key=st.none() | KEYS,
        match=st.none() | st.tuples(st.sampled_from(["Id", "Email", "Phone"]), CELLS),
    ),
    max_size=5,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ROWS, LAYOUTS, st.lists(OPS, min_size=1, max_size=3))
def test_streamed_writes_give_the_bytes_and_results_of_whole_file_writes(
    rows: list[tuple[str, str, str]], layout: Layout, batches: list[list[WriteOp]]
) -> None:
    encoding = "utf-8-sig" if layout.encoding == "utf-8" else layout.encoding
    header_row = 2 if layout.preamble else 1
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = layout.render(rows)
        path = csv_file(work, data)
        conn = connector(work, encoding=encoding, header_row=header_row)
        fmt = CsvFormat(work / "roster", Path("roster"), {}, {}, encoding, ",", header_row)
        for ops in batches:
            expected, expected_results = whole_file_write(fmt, data, ops)
            assert conn.write("Clients", ops) == expected_results
            assert path.read_bytes() == expected
            data = expected


# reads and the cursor


def test_an_old_format_cursor_is_understood(tmp_path: Path) -> None:
    text = "Id,Name\n1,Ann\n2,Bob\n3,Cy\n"
    path = csv_file(tmp_path, text)
    path.write_text("Id,Name\n1,Ann\n3,Cyrus\n4,Di\n")
    batches = read_all(connector(tmp_path), old_format_cursor(text))
    assert {k: (r.deleted, dict(r.fields)) for k, r in changed(batches).items()} == {
        "3": (False, {"Id": "3", "Name": "Cyrus"}),
        "4": (False, {"Id": "4", "Name": "Di"}),
        "2": (True, {}),
    }


def test_an_unchanged_file_after_an_old_format_cursor_yields_nothing(tmp_path: Path) -> None:
    text = "Id,Name\n1,Ann\n"
    csv_file(tmp_path, text)
    assert read_all(connector(tmp_path), old_format_cursor(text)) == []


def test_the_compact_cursor_survives_json_and_recognises_unchanged_rows(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "Id,Name\n1,Ann\n2,Bob\n")
    conn = connector(tmp_path)
    cursor = json_round_trip(read_all(conn)[-1].cursor)
    path.write_text('Id,Name\r\n"1","Ann"\r\n2,Bobby\r\n')  # other bytes, one changed row
    assert list(changed(read_all(conn, cursor))) == ["2"]


def test_a_deleted_row_is_reported_through_the_compact_cursor(tmp_path: Path) -> None:
    path = csv_file(tmp_path, 'Id,Name\n1,Ann\n"Zoë\nline two",Bob\n3,Cy\n')
    conn = connector(tmp_path)
    cursor = json_round_trip(read_all(conn)[-1].cursor)
    path.write_text("Id,Name\n1,Ann\n3,Cy\n")
    [gone] = [r for b in read_all(conn, cursor) for r in b.records]
    assert (gone.key, gone.deleted) == ("Zoë\nline two", True)


def test_fingerprints_round_trip_through_their_json(tmp_path: Path) -> None:
    prints = Fingerprints()
    for number, key in enumerate(["1", "Zoë", "a\nb", "", "ÿ"]):
        prints.add(key.encode("utf-8"), text_hash(key), number * 2**60)
    again = Fingerprints.from_json(json_round_trip(prints.to_json()))
    assert again is not None
    assert [again.key(i) for i in range(len(again))] == ["1", "Zoë", "a\nb", "", "ÿ"]
    assert list(again.row_hashes) == [n * 2**60 for n in range(5)]
    assert again.find(b"a\nb", text_hash("a\nb")) == 2


def test_a_damaged_cursor_means_a_full_read(tmp_path: Path) -> None:
    csv_file(tmp_path, "Id,Name\n1,Ann\n")
    conn = connector(tmp_path)
    cursor = read_all(conn)[-1].cursor
    assert isinstance(cursor, dict)
    damaged = {**cursor, "file_hash": "other", "keys": "not base64!"}
    assert list(changed(read_all(conn, damaged))) == ["1"]


def test_the_cursor_costs_under_thirty_bytes_a_row(tmp_path: Path) -> None:
    csv_file(tmp_path, "Id,Name\n" + "".join(f"ACC-{i:07},Client {i}\n" for i in range(10_000)))
    cursor = read_all(connector(tmp_path, batch_size=100_000))[-1].cursor
    assert len(json.dumps(cursor)) / 10_000 < 30


def test_duplicate_keys_are_reported_with_the_first_rows_place(tmp_path: Path) -> None:
    rows = "".join(f"{i},n{i}\n" for i in range(1, 500))
    csv_file(tmp_path, f"Id,Name\n{rows}7,again\n")
    batches = read_all(connector(tmp_path))
    [problem] = [p for b in batches for p in b.problems]
    assert (problem.category, problem.key, problem.place) == ("duplicate", "7", "Clients.csv:501")
    assert "the row at Clients.csv:8" in problem.message
    assert changed(batches)["7"].fields["Name"] == "n7"


def test_keys_whose_hashes_collide_stay_separate_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reading, "bytes_hash", lambda data: 42)
    monkeypatch.setattr(fingerprints, "bytes_hash", lambda data: 42)
    monkeypatch.setattr(csv_index, "text_hash", lambda text: 42)
    path = csv_file(tmp_path, "Id,Name\n1,Ann\n2,Bob\n3,Cy\n")
    conn = connector(tmp_path)
    first = read_all(conn)
    assert list(changed(first)) == ["1", "2", "3"] and not [p for b in first for p in b.problems]
    path.write_text("Id,Name\n1,Ann\n3,Cyrus\n")
    later = changed(read_all(conn, first[-1].cursor))
    assert {k: r.deleted for k, r in later.items()} == {"3": False, "2": True}
    assert conn.find("Clients", "Id", ["3", "2"]) == {"3": "3"}
    [result] = conn.write("Clients", [WriteOp(Op.CREATE, {"Id": "4", "Name": "Di"})])
    assert result.created and path.read_bytes().decode() == "Id,Name\n1,Ann\n3,Cyrus\n4,Di\n"


def test_a_bad_byte_is_named_by_its_position_in_the_file(tmp_path: Path) -> None:
    csv_file(tmp_path, b"\xef\xbb\xbfId,Name\n" + b"1,Ann\n" * 300_000 + b"2,Zo\xeb\n")
    with pytest.raises(ConfigError, match=f"byte {3 + 8 + 6 * 300_000 + 4} is not valid utf-8-sig text"):
        read_all(connector(tmp_path))


def test_an_update_of_a_file_with_no_index_yet_scans_for_its_rows_and_keeps_no_index(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "Id,Email,Name\n1,a@x.org,Ann\n2,b@x.org,Bob\n3,c@x.org,Cid\n")
    conn = connector(tmp_path)
    ops = [
        WriteOp(Op.UPDATE, {"Name": "Bea"}, key="2"),
        WriteOp(Op.CREATE, {"Id": "9", "Email": "c@x.org", "Name": "Cyd"}, match=("Email", "c@x.org")),
    ]
    results = conn.write("Clients", ops)
    assert [r.ok for r in results] == [True, True] and results[1].created is False
    assert path.read_text() == "Id,Email,Name\n1,a@x.org,Ann\n2,b@x.org,Bea\n9,c@x.org,Cyd\n"
    assert conn._indexes == {}  # a pass that changes a few rows of a big file holds no index
