"""The `files` connector: CSV and XLSX files as tables keyed by one column.

Files have no change log and no per-row timestamps, so the cursor is a fingerprint of what was
read: the hash of the file and the content hash of every row. A read compares the file with it
and hands the engine only rows that are new, changed or gone.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel

from connectors.files.atomic import replace_atomically
from connectors.files.csv_format import CsvFormat
from connectors.files.document import FileFormat, TableDocument
from connectors.files.settings import FilesSettings
from connectors.files.table import Row, cell_text
from connectors.files.xlsx_format import XlsxFormat
from syncd.cells import parse_edit_time
from syncd.errors import ConnectionDown
from syncd.records import (
    Batch,
    Cursor,
    FieldInfo,
    JSONValue,
    ReadProblem,
    Record,
    RecordFailure,
    StreamInfo,
    WriteOp,
    WriteResult,
    content_hash,
)

WRITE_ATTEMPTS = 3
"""Tries to write when someone else saves the file between our load and our save."""

_locks_guard = threading.Lock()
_locks: dict[Path, threading.Lock] = {}


def _file_lock(path: Path) -> threading.Lock:
    """One writer per file in this process: two mappings writing the same file would lose updates."""
    with _locks_guard:
        return _locks.setdefault(path.resolve(), threading.Lock())


def _file_hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def row_hash(fields: Mapping[str, JSONValue]) -> str:
    """A row's content hash; empty cells are left out so adding an empty column changes no row."""
    return content_hash({name: value for name, value in fields.items() if value is not None})


@dataclass(frozen=True, slots=True)
class FileCursor:
    file_hash: str
    rows: dict[str, str]
    problems: frozenset[str]

    def to_json(self) -> dict[str, Any]:
        return {"file_hash": self.file_hash, "rows": self.rows, "problems": sorted(self.problems)}

    @classmethod
    def from_json(cls, cursor: Cursor | None) -> FileCursor | None:
        """The cursor as stored, or None for one that is absent or not ours (a full read is safe)."""
        if not isinstance(cursor, dict):
            return None
        file_hash, rows, problems = cursor.get("file_hash"), cursor.get("rows"), cursor.get("problems", [])
        if not isinstance(file_hash, str) or not isinstance(rows, dict) or not isinstance(problems, list):
            return None
        return cls(file_hash, {str(k): str(v) for k, v in rows.items()}, frozenset(map(str, problems)))


def _failure(category: str, code: str, message: str) -> WriteResult:
    return WriteResult(ok=False, error=RecordFailure(category=category, code=code, message=message))


class FilesConnector:
    """Streams are CSV files in a folder, or the worksheets of one XLSX workbook."""

    Settings: ClassVar[type[BaseModel]] = FilesSettings

    def __init__(self, name: str, settings: FilesSettings, base_dir: Path) -> None:
        self.name = name
        self.settings = settings
        root = settings.path if settings.path.is_absolute() else base_dir / settings.path
        self._format: FileFormat
        if settings.is_workbook():
            self._format = XlsxFormat(
                root, settings.path, settings.keys, settings.formulas, settings.header_row
            )
        else:
            self._format = CsvFormat(
                root,
                settings.path,
                settings.keys,
                settings.formulas,
                settings.encoding,
                settings.delimiter,
                settings.header_row,
            )
        for stream in {*settings.keys, *settings.formulas}:
            self._format.file_of(stream)  # a stream name the files cannot hold is a config error now
        self._closed = False

    # the protocol

    def streams(self) -> list[StreamInfo]:
        infos: list[StreamInfo] = []
        for stream in sorted({*self._format.stream_names(), *self.settings.keys}):
            document = self._open(stream, self._read_bytes(stream), new_key=self.settings.keys.get(stream))
            if document is None:
                continue
            table = document.table
            fields = tuple(FieldInfo(name=c, nullable=c != table.key_column) for c in table.columns)
            infos.append(StreamInfo(stream, table.key_column, fields, frozenset({"find", "add-columns"})))
        return infos

    def read(self, stream: str, cursor: Cursor | None) -> Iterator[Batch]:
        """Rows new or changed since `cursor`, then deletions; only the last batch is a checkpoint.

        A missing or empty file yields nothing at all rather than deleting every row: a file that
        vanished is far more often moved or being re-saved than emptied on purpose.
        """
        data = self._read_bytes(stream)
        if data is None:
            return
        file_hash = _file_hash(data)
        previous = FileCursor.from_json(cursor)
        if previous is not None and previous.file_hash == file_hash:
            return
        document = self._open(stream, data)
        if document is None:
            return
        old_rows = previous.rows if previous else {}
        modified_column = self.settings.modified.get(stream)
        old_problems = previous.problems if previous else frozenset()
        table = document.table
        rows: dict[str, str] = {}
        first_row: dict[str, Row] = {}
        problems_seen: set[str] = set()
        batch = Batch(records=[], cursor=None)
        for row in table.live_rows():
            if row.is_blank():
                continue
            key = table.key_of(row)
            problem: ReadProblem | None = None
            if not key:
                problem = ReadProblem(
                    "bad-input",
                    f"the key column {table.key_column!r} is blank",
                    raw=document.raw(row),
                    place=document.place(row),
                )
            elif key in rows:
                problem = ReadProblem(
                    "duplicate",
                    f"{table.key_column} {key!r} is also the key of the row at {document.place(first_row[key])}",
                    raw=document.raw(row),
                    key=key,
                    place=document.place(row),
                )
            else:
                fields = table.fields_of(row)
                rows[key] = row_hash(fields)
                first_row[key] = row
                if old_rows.get(key) != rows[key]:
                    edited = parse_edit_time(fields.get(modified_column)) if modified_column else None
                    batch.records.append(Record(key=key, fields=fields, modified_at=edited))
            if problem is not None:
                fingerprint = content_hash([problem.category, problem.raw])
                problems_seen.add(fingerprint)
                if fingerprint not in old_problems:  # reported once, not on every later change
                    batch.problems.append(problem)
            if len(batch.records) + len(batch.problems) >= self.settings.batch_size:
                yield batch
                batch = Batch(records=[], cursor=None)
        for key in old_rows:
            if key in rows:
                continue
            batch.records.append(Record(key=key, fields={}, deleted=True))
            if len(batch.records) + len(batch.problems) >= self.settings.batch_size:
                yield batch
                batch = Batch(records=[], cursor=None)
        batch.cursor = FileCursor(file_hash, rows, frozenset(problems_seen)).to_json()
        yield batch

    def write(self, stream: str, ops: Sequence[WriteOp]) -> list[WriteResult]:
        """Apply every op to the file in memory and replace the file once, atomically.

        Nothing is written when no op changed anything, so a repeated write leaves the file (and
        its modification time) alone. If someone saves the file while we work, the ops are applied
        again to their version rather than overwriting it.
        """
        if not ops:
            return []
        path = self._format.file_of(stream)
        new_key = self.settings.keys.get(stream) or next((op.match[0] for op in ops if op.match), None)
        with _file_lock(path):
            for _ in range(WRITE_ATTEMPTS):
                data = self._read_bytes(stream)
                document = self._open(stream, data, new_key=new_key, editable=True)
                if document is None:
                    message = (
                        f"{self._format.label(stream)} does not exist yet and keys.{stream} is not set, "
                        "so syncd cannot know which column is its key"
                    )
                    return [_failure("validation", "NO_KEY_COLUMN", message) for _ in ops]
                results = [document.table.apply(op) for op in ops]
                if not document.table.changed:
                    return results
                output = document.render()
                if self._read_bytes(stream) != data:
                    continue
                self._replace(stream, path, output)
                return results
        message = f"{self._format.label(stream)} kept changing while syncd wrote it"
        return [_failure("transient-exhausted", "FILE_BUSY", message) for _ in ops]

    def find(self, stream: str, field: str, values: Collection[str]) -> dict[str, str]:
        """{value: key} of the first row whose `field` holds each value, from one read of the file."""
        wanted = {cell_text(value): value for value in values if cell_text(value)}
        document = self._open(stream, self._read_bytes(stream))
        if document is None or not wanted:
            return {}
        table = document.table
        column = table.position(field)
        if column is None:
            return {}
        found: dict[str, str] = {}
        for row in table.live_rows():
            text = cell_text(table.value(row, column))
            if text in wanted and wanted[text] not in found:
                key = table.key_of(row)
                if key:
                    found[wanted[text]] = key
        return found

    def close(self) -> None:
        """Nothing stays open between calls; closing only marks the connector as done."""
        self._closed = True

    # plumbing

    def _open(
        self, stream: str, data: bytes | None, *, new_key: str | None = None, editable: bool = False
    ) -> TableDocument | None:
        return self._format.open(stream, data, new_key=new_key, editable=editable)

    def _read_bytes(self, stream: str) -> bytes | None:
        path = self._format.file_of(stream)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise ConnectionDown(f"cannot read {self._format.label(stream)}: {error.strerror}") from None

    def _replace(self, stream: str, path: Path, data: bytes) -> None:
        try:
            replace_atomically(path, data)
        except OSError as error:
            raise ConnectionDown(f"cannot write {self._format.label(stream)}: {error.strerror}") from None
