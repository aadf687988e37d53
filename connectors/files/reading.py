"""Turning a file's rows into changes since the last read: new, changed and deleted rows.

Files have no change log and no per-row timestamps, so the cursor is a fingerprint of what was
read: the hash of the file and a hash of every row. A read compares the file with it and hands
the engine only rows that are new, changed or gone. With a state dir (syncd gives one beside the
journal) the row hashes live on disk in a snapshot store (snapshots.py) and memory stays flat;
without one they live in the cursor (fingerprints.py), a few dozen bytes a row in memory.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from connectors.files.csv_format import CsvColumns, is_blank
from connectors.files.csv_stream import CsvRecord
from connectors.files.document import TableDocument
from connectors.files.fingerprints import Fingerprints
from connectors.files.hashes import bytes_hash, hex_hash
from connectors.files.snapshots import SnapshotStore
from connectors.files.table import Row
from syncd.cells import parse_edit_time
from syncd.records import Batch, Cursor, JSONValue, ReadProblem, Record, content_hash

CHUNK_ROWS = 2_000
"""Rows looked up in the snapshot store per query: few queries, a few megabytes of rows at most."""


def row_hash(fields: Mapping[str, JSONValue]) -> str:
    """A row's content hash; empty cells are left out so adding an empty column changes no row."""
    return content_hash({name: value for name, value in fields.items() if value is not None})


class SourceRow(Protocol):
    """One row of a file as a read sees it; fields are only worked out for rows that need them."""

    @property
    def line(self) -> int: ...

    def is_blank(self) -> bool: ...

    def key(self) -> str: ...

    def fields(self) -> dict[str, JSONValue]: ...

    def raw(self) -> str:
        """The row as CSV text, kept with a read problem so nothing read is lost."""
        ...


class CsvRow:
    """A CSV record seen through the header's columns."""

    __slots__ = ("columns", "record")

    def __init__(self, record: CsvRecord, columns: CsvColumns) -> None:
        self.record = record
        self.columns = columns

    @property
    def line(self) -> int:
        return self.record.line

    def is_blank(self) -> bool:
        return is_blank(self.record.cells)

    def key(self) -> str:
        return self.columns.key_of(self.record.cells)

    def fields(self) -> dict[str, JSONValue]:
        return self.columns.fields_of(self.record.cells)

    def raw(self) -> str:
        return self.record.raw


class DocumentRow:
    """A row of a table loaded whole (XLSX)."""

    __slots__ = ("document", "row")

    def __init__(self, row: Row, document: TableDocument) -> None:
        self.row = row
        self.document = document

    @property
    def line(self) -> int:
        return self.row.line or 0

    def is_blank(self) -> bool:
        return self.row.is_blank()

    def key(self) -> str:
        return self.document.table.key_of(self.row)

    def fields(self) -> dict[str, JSONValue]:
        return self.document.table.fields_of(self.row)

    def raw(self) -> str:
        return self.document.raw(self.row)


@dataclass(frozen=True, slots=True)
class FileCursor:
    """The file hash, the fingerprints of the rows read, and the problems already reported.

    The fingerprints are decoded only when a read needs them: an unchanged file is recognised by
    its hash alone.
    """

    file_hash: str
    stored: Mapping[str, Any]
    problems: frozenset[str]

    @classmethod
    def from_json(cls, cursor: Cursor | None) -> FileCursor | None:
        """The cursor as stored, or None for one that is absent or not ours (a full read is safe)."""
        if not isinstance(cursor, dict):
            return None
        file_hash, problems = cursor.get("file_hash"), cursor.get("problems", [])
        if not isinstance(file_hash, str) or not isinstance(problems, list):
            return None
        if "rows" not in cursor and "row_hashes" not in cursor and cursor.get("snapshots") is not True:
            return None
        return cls(file_hash, cursor, frozenset(map(str, problems)))

    @property
    def in_snapshots(self) -> bool:
        """The rows read are in the snapshot store (snapshots.py), not in the cursor."""
        return self.stored.get("snapshots") is True

    def fingerprints(self) -> Fingerprints | None:
        """The rows of an in-cursor format; None for a snapshot cursor (a read then sees no deletions)."""
        return None if self.in_snapshots else Fingerprints.from_json(self.stored)

    @staticmethod
    def to_json(file_hash: str, prints: Fingerprints, problems: frozenset[str] | set[str]) -> dict[str, Any]:
        return {"file_hash": file_hash, **prints.to_json(), "problems": sorted(problems)}


def changes(
    rows: Iterator[SourceRow],
    file_hash: Callable[[], str],
    previous: FileCursor | None,
    *,
    key_column: str,
    place: Callable[[int], str],
    batch_size: int,
    modified_column: str | None,
) -> Iterator[Batch]:
    """Rows new or changed since `previous`, then deletions; only the last batch is a checkpoint.

    The first row with a key is the row of that key; a later row with the same key is reported
    as a duplicate (once), with the place of the first. `file_hash` is asked once `rows` is
    exhausted, so it can be the hash of exactly the bytes the rows came from.
    """
    old = previous.fingerprints() if previous is not None else None
    old_problems = previous.problems if previous is not None else frozenset()
    seen = bytearray(len(old)) if old is not None else bytearray()
    new = Fingerprints()
    lines: array[int] = array("I")  # of each row in `new`, for duplicate messages
    problems_seen: set[str] = set()
    batch = Batch(records=[], cursor=None)
    for row in rows:
        if row.is_blank():
            continue
        key = row.key()
        problem: ReadProblem | None = None
        if not key:
            problem = ReadProblem(
                "bad-input", f"the key column {key_column!r} is blank", raw=row.raw(), place=place(row.line)
            )
        else:
            key_bytes = key.encode("utf-8")
            key_hash = bytes_hash(key_bytes)
            first = new.find(key_bytes, key_hash)
            if first is not None:
                problem = ReadProblem(
                    "duplicate",
                    f"{key_column} {key!r} is also the key of the row at {place(lines[first])}",
                    raw=row.raw(),
                    key=key,
                    place=place(row.line),
                )
            else:
                fields = row.fields()
                hashed = hex_hash(row_hash(fields))
                new.add(key_bytes, key_hash, hashed)
                lines.append(row.line)
                unchanged = False
                if old is not None:
                    before = old.find(key_bytes, key_hash)
                    if before is not None:
                        seen[before] = 1
                        unchanged = old.row_hashes[before] == hashed
                if not unchanged:
                    edited = parse_edit_time(fields.get(modified_column)) if modified_column else None
                    batch.records.append(Record(key=key, fields=fields, modified_at=edited))
        if problem is not None:
            fingerprint = content_hash([problem.category, problem.raw])
            problems_seen.add(fingerprint)
            if fingerprint not in old_problems:  # reported once, not on every later change
                batch.problems.append(problem)
        if len(batch.records) + len(batch.problems) >= batch_size:
            yield batch
            batch = Batch(records=[], cursor=None)
    del lines
    new.forget_lookups()  # the cursor needs only the rows; the table would sit beside its JSON
    if old is not None:
        for before in range(len(old)):
            if seen[before]:
                continue
            batch.records.append(Record(key=old.key(before), fields={}, deleted=True))
            if len(batch.records) + len(batch.problems) >= batch_size:
                yield batch
                batch = Batch(records=[], cursor=None)
        del old, seen
    batch.cursor = FileCursor.to_json(file_hash(), new, problems_seen)
    yield batch


def snapshot_changes(
    rows: Iterator[SourceRow],
    file_hash: str,
    read_hash: Callable[[], str],
    previous_version: str | None,
    old_problems: frozenset[str],
    store: SnapshotStore,
    *,
    key_column: str,
    place: Callable[[int], str],
    batch_size: int,
    modified_column: str | None,
) -> Iterator[Batch]:
    """`changes`, with both versions' rows in `store` instead of memory; the cursor names a version.

    `file_hash` is the hash of the file before it was read and `read_hash` (asked once `rows` is
    exhausted) that of the bytes read. The new version's rows are written unless another read
    (another mapping) already wrote that version completely; it is marked complete last.
    """
    writing = not store.complete(file_hash)
    if writing:
        store.discard(file_hash)  # rows of a read that crashed half way: never trusted, redone
    problems_seen: set[str] = set()
    batch = Batch(records=[], cursor=None)

    def noted(problem: ReadProblem) -> ReadProblem | None:
        fingerprint = content_hash([problem.category, problem.raw])
        problems_seen.add(fingerprint)
        return None if fingerprint in old_problems else problem

    def chunk_changes(chunk: list[SourceRow]) -> list[Record | ReadProblem]:
        keyed = [(row, row.key()) for row in chunk]
        earlier = store.first_lines(list({key for _, key in keyed if key}))
        here: dict[str, int] = {}
        entries: list[ReadProblem | tuple[str, dict[str, JSONValue], int]] = []
        for row, key in keyed:
            if not key:
                blank = f"the key column {key_column!r} is blank"
                entries.append(ReadProblem("bad-input", blank, raw=row.raw(), place=place(row.line)))
                continue
            first = earlier.get(key, here.get(key))
            if first is not None:
                also = f"{key_column} {key!r} is also the key of the row at {place(first)}"
                entries.append(ReadProblem("duplicate", also, raw=row.raw(), key=key, place=place(row.line)))
                continue
            here[key] = row.line
            fields = row.fields()
            entries.append((key, fields, hex_hash(row_hash(fields))))
        kept = [entry for entry in entries if isinstance(entry, tuple)]
        before = store.row_hashes(previous_version, [key for key, _, _ in kept]) if previous_version else {}
        store.see(here.items())
        if writing:
            store.add_rows(file_hash, ((key, hashed) for key, _, hashed in kept))
        out: list[Record | ReadProblem] = []
        for entry in entries:
            if isinstance(entry, ReadProblem):
                problem = noted(entry)
                if problem is not None:
                    out.append(problem)
                continue
            key, fields, hashed = entry
            if before.get(key) != hashed:
                edited = parse_edit_time(fields.get(modified_column)) if modified_column else None
                out.append(Record(key=key, fields=fields, modified_at=edited))
        return out

    def pending() -> Iterator[Record | ReadProblem]:
        chunk: list[SourceRow] = []
        for row in rows:
            if row.is_blank():
                continue
            chunk.append(row)
            if len(chunk) >= CHUNK_ROWS:
                yield from chunk_changes(chunk)
                chunk = []
        if chunk:
            yield from chunk_changes(chunk)

    for item in pending():
        if isinstance(item, Record):
            batch.records.append(item)
        else:
            batch.problems.append(item)
        if len(batch.records) + len(batch.problems) >= batch_size:
            yield batch
            batch = Batch(records=[], cursor=None)
    version = read_hash()
    if version != file_hash and writing:  # the file changed while it was read: rows are of `version`
        store.rename(file_hash, version)
    if previous_version is not None:
        for key in store.missing_from(previous_version):
            batch.records.append(Record(key=key, fields={}, deleted=True))
            if len(batch.records) + len(batch.problems) >= batch_size:
                yield batch
                batch = Batch(records=[], cursor=None)
        store.touch(previous_version)
    if writing:
        store.mark_complete(version)
    else:
        # Another mapping's read wrote this version. Had the file changed while we read it,
        # `version` has no snapshot and the next read is a full one (rare; safe).
        store.touch(version)
    store.collect_garbage()
    batch.cursor = {"file_hash": version, "problems": sorted(problems_seen), "snapshots": True}
    yield batch
