"""The files connector's snapshot store: per-row fingerprints on disk beside the journal, not in the cursor."""

from __future__ import annotations

import logging
import sqlite3
import stat
import threading
from pathlib import Path
from typing import Any

import pytest

from connectors.files import FilesConnector, FilesSettings
from connectors.files.fingerprints import Fingerprints
from connectors.files.hashes import hex_hash
from connectors.files.reading import row_hash
from connectors.files.snapshots import KEEP_SECONDS, KEEP_VERSIONS, SnapshotStore, store_path
from syncd.project import load_project
from syncd.records import Batch, Record

ROWS = "Id,Name\n1,Ann\n2,Bob\n3,Cid\n"


def csv_file(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "roster"
    folder.mkdir(exist_ok=True)
    path = folder / "Clients.csv"
    path.write_bytes(text.encode("utf-8"))
    return path


def connector(tmp_path: Path, batch_size: int = 500) -> FilesConnector:
    conn = FilesConnector("roster", FilesSettings(path=Path("roster"), batch_size=batch_size), tmp_path)
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    conn.use_state_dir(state)
    return conn


def read_all(conn: FilesConnector, cursor: Any = None) -> list[Batch]:
    return list(conn.read("Clients", cursor))


def records(batches: list[Batch]) -> dict[str, Record]:
    return {r.key: r for b in batches for r in b.records}


def cursor_of(batches: list[Batch]) -> Any:
    return batches[-1].cursor


def store_of(tmp_path: Path) -> SnapshotStore:
    return SnapshotStore(store_path(tmp_path / "state", tmp_path / "roster" / "Clients.csv"))


def test_the_cursor_names_the_version_instead_of_holding_its_rows(tmp_path: Path) -> None:
    csv_file(tmp_path, ROWS)
    cursor = cursor_of(read_all(connector(tmp_path)))
    assert set(cursor) == {"file_hash", "problems", "snapshots"}


def test_a_changed_row_is_handed_on_and_an_unchanged_one_is_not(tmp_path: Path) -> None:
    path = csv_file(tmp_path, ROWS)
    conn = connector(tmp_path)
    cursor = cursor_of(read_all(conn))
    path.write_text("Id,Name\n1,Ann\n2,Bobby\n3,Cid\n")
    later = records(read_all(conn, cursor))
    assert (list(later), later["2"].fields["Name"]) == (["2"], "Bobby")


def test_a_deleted_row_is_handed_on_as_deleted(tmp_path: Path) -> None:
    path = csv_file(tmp_path, ROWS)
    conn = connector(tmp_path)
    cursor = cursor_of(read_all(conn))
    path.write_text("Id,Name\n1,Ann\n3,Cid\n")
    later = records(read_all(conn, cursor))
    assert [(key, r.deleted) for key, r in later.items()] == [("2", True)]


def test_two_cursors_on_one_file_each_see_their_own_changes(tmp_path: Path) -> None:
    path = csv_file(tmp_path, ROWS)
    first, second = connector(tmp_path), connector(tmp_path)
    first_cursor = cursor_of(read_all(first))
    second_cursor = cursor_of(read_all(second))
    path.write_text("Id,Name\n1,Anna\n2,Bob\n3,Cid\n")
    first_cursor = cursor_of(read_all(first, first_cursor))
    path.write_text("Id,Name\n1,Anna\n2,Bob\n3,Cyd\n")
    assert list(records(read_all(first, first_cursor))) == ["3"]
    assert sorted(records(read_all(second, second_cursor))) == ["1", "3"]


def test_a_missing_snapshot_falls_back_to_a_full_read_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = csv_file(tmp_path, ROWS)
    conn = connector(tmp_path)
    cursor = cursor_of(read_all(conn))
    store_path(tmp_path / "state", path).unlink()
    path.write_text("Id,Name\n1,Ann\n2,Bobby\n")
    with caplog.at_level(logging.WARNING):
        later = records(read_all(conn, cursor))
    assert sorted(later) == ["1", "2"]
    assert "Clients.csv" in caplog.text and "syncd reconcile finds them" in caplog.text


def test_an_old_format_cursor_is_converted_and_then_compared_against(tmp_path: Path) -> None:
    path = csv_file(tmp_path, ROWS)
    plain = FilesConnector("roster", FilesSettings(path=Path("roster")), tmp_path)
    old_cursor = cursor_of(list(plain.read("Clients", None)))
    assert "row_hashes" in old_cursor
    path.write_text("Id,Name\n1,Ann\n2,Bobby\n")
    conn = connector(tmp_path)
    batches = read_all(conn)
    later = records(read_all(conn, old_cursor))
    assert {k: r.deleted for k, r in later.items()} == {"2": False, "3": True}
    assert cursor_of(batches)["snapshots"] is True


def test_a_first_format_rows_cursor_is_converted_too(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "Id,Name\n1,Ann\n2,Bob\n")
    plain = FilesConnector("roster", FilesSettings(path=Path("roster")), tmp_path)
    compact = cursor_of(list(plain.read("Clients", None)))
    prints = Fingerprints.from_json(compact)
    assert prints is not None
    hashes = {"1": row_hash({"Id": "1", "Name": "Ann"}), "2": row_hash({"Id": "2", "Name": "Bob"})}
    assert [hex_hash(h) for h in hashes.values()] == list(prints.row_hashes)
    oldest = {"file_hash": compact["file_hash"], "rows": hashes, "problems": []}
    path.write_text("Id,Name\n1,Ann\n2,Bobby\n")
    assert list(records(read_all(connector(tmp_path), oldest))) == ["2"]


def test_a_half_written_version_is_not_trusted(tmp_path: Path) -> None:
    path = csv_file(tmp_path, ROWS)
    conn = connector(tmp_path)
    cursor = cursor_of(read_all(conn))
    store = store_of(tmp_path)
    store.discard(cursor["file_hash"])
    store.add_rows(cursor["file_hash"], [("1", 0)])  # a crashed read wrote one row and no mark
    store.close()
    path.write_text("Id,Name\n1,Ann\n2,Bob\n")
    assert sorted(records(read_all(conn, cursor))) == ["1", "2"]  # a full read, not "3 deleted"


def test_a_half_written_version_of_the_file_read_is_redone(tmp_path: Path) -> None:
    path = csv_file(tmp_path, ROWS)
    conn = connector(tmp_path)
    cursor = cursor_of(read_all(conn))
    path.write_text("Id,Name\n1,Ann\n2,Bobby\n")
    store = store_of(tmp_path)
    store.add_rows(conn._hash_file("Clients") or "", [("1", 0), ("9", 0)])
    store.close()
    second = cursor_of(read_all(conn, cursor))
    path.write_text("Id,Name\n1,Ann\n")
    assert [(k, r.deleted) for k, r in records(read_all(conn, second)).items()] == [("2", True)]


def test_garbage_collection_keeps_recent_versions_and_the_last_eight(tmp_path: Path) -> None:
    store = store_of_empty(tmp_path)
    now = 1_000_000_000.0
    old = now - KEEP_SECONDS - 100
    for n in range(KEEP_VERSIONS + 3):
        store.add_rows(f"old{n:02}", [("k", n)])
        store.mark_complete(f"old{n:02}", now=old + n)
    store.add_rows("recent", [("k", 0)])
    store.mark_complete("recent", now=now - 60)
    store.add_rows("crashed", [("k", 0)])
    store.collect_garbage(now=now)
    kept = sorted(store.versions())
    assert kept == sorted(["recent", *(f"old{n:02}" for n in range(4, KEEP_VERSIONS + 3))])
    assert store.row_hashes("crashed", ["k"]) == {} and store.row_hashes("old00", ["k"]) == {}


def store_of_empty(tmp_path: Path) -> SnapshotStore:
    (tmp_path / "state").mkdir()
    return store_of(tmp_path)


def test_duplicates_across_chunks_name_the_first_rows_place(tmp_path: Path) -> None:
    lines = "".join(f"{n},x\n" for n in range(5_000))
    csv_file(tmp_path, f"Id,Name\n{lines}7,again\n")
    batches = read_all(connector(tmp_path))
    [problem] = [p for b in batches for p in b.problems]
    assert (problem.category, problem.key, problem.place) == ("duplicate", "7", "Clients.csv:5002")
    assert "the row at Clients.csv:9" in problem.message


def test_project_connect_gives_files_connectors_a_state_dir_beside_the_journal(tmp_path: Path) -> None:
    (tmp_path / "roster").mkdir()
    config = tmp_path / "etc" / "syncd.yaml"
    config.parent.mkdir()
    journal = tmp_path / "var" / "syncd.db"
    config.write_text(
        f"version: 1\njournal: {journal}\nmappings: []\nconnections:\n  roster: {{kind: files, path: {tmp_path}/roster}}\n"
    )
    csv_file(tmp_path, ROWS)
    conn = load_project(config).connect("roster")
    assert isinstance(conn, FilesConnector)
    list(conn.read("Clients", None))
    state = journal.parent / "state"
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    [store] = state.glob("files-*.sqlite")
    with sqlite3.connect(store) as db:
        assert db.execute("SELECT count(*) FROM snapshots").fetchone() == (3,)


def test_a_second_read_of_a_file_waits_while_another_builds_its_snapshot(tmp_path: Path) -> None:
    csv_file(tmp_path, ROWS)
    first, second = connector(tmp_path, batch_size=1), connector(tmp_path, batch_size=1)
    start = cursor_of(read_all(first))
    csv_file(tmp_path, ROWS + "4,Dee\n5,Eve\n")
    first_reads, second_reads = first.read("Clients", start), second.read("Clients", start)
    head = next(first_reads)  # suspended half way through building the new version
    second_batches: list[Batch] = []
    waiter = threading.Thread(target=lambda: second_batches.extend(second_reads))
    waiter.start()
    waiter.join(timeout=1.0)
    assert waiter.is_alive()  # it would otherwise discard the first read's half-written rows
    first_batches = [head, *first_reads]
    waiter.join(timeout=30)
    assert cursor_of(first_batches) == cursor_of(second_batches)
    csv_file(tmp_path, ROWS)  # Dee and Eve deleted again
    gone = records(read_all(connector(tmp_path), cursor_of(first_batches)))
    assert sorted(k for k, r in gone.items() if r.deleted) == ["4", "5"]
