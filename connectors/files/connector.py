"""The `files` connector: CSV and XLSX files as tables keyed by one column.

Files have no change log and no per-row timestamps, so a read compares the file with a
fingerprint of what was last read (reading.py), kept on disk beside the journal (snapshots.py). CSV files are streamed: reading, writing and `find` hold a few dozen bytes per
row, never the file, so a 1,000,000-row file syncs in bounded memory (csv_index.py).

XLSX workbooks are loaded whole (openpyxl has no way to change one cell of a saved workbook
without loading it): memory grows with the sheet, which Excel caps at 1,048,576 rows anyway.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, ClassVar

from pydantic import BaseModel

from connectors.files.atomic import replace_atomically
from connectors.files.csv_format import CsvFormat, is_blank
from connectors.files.csv_index import CsvIndex, FileChanged, RowScan, identity_of
from connectors.files.csv_stream import CHUNK, file_digest
from connectors.files.document import FileFormat, TableDocument
from connectors.files.reading import CsvRow, DocumentRow, FileCursor, SourceRow, changes, snapshot_changes
from connectors.files.settings import FilesSettings
from connectors.files.snapshots import SnapshotStore, store_path
from connectors.files.table import cell_text
from connectors.files.xlsx_format import XlsxFormat
from syncd.errors import ConnectionDown
from syncd.records import (
    Batch,
    Cursor,
    FieldInfo,
    Op,
    RecordFailure,
    StreamInfo,
    WriteOp,
    WriteResult,
)

log = logging.getLogger(__name__)

WRITE_ATTEMPTS = 3
"""Tries to write when someone else saves the file between our load and our save."""

_locks_guard = threading.Lock()
_locks: dict[Path, threading.Lock] = {}


def _file_lock(path: Path) -> threading.Lock:
    """One writer per file in this process: two mappings writing the same file would lose updates.

    Also one builder per snapshot store (its path is the lock's key), see `_snapshot_read`.
    """
    with _locks_guard:
        return _locks.setdefault(path.resolve(), threading.Lock())


def _failure(category: str, code: str, message: str) -> WriteResult:
    return WriteResult(ok=False, error=RecordFailure(category=category, code=code, message=message))


class FilesConnector:
    """Streams are CSV files in a folder, or the worksheets of one XLSX workbook."""

    Settings: ClassVar[type[BaseModel]] = FilesSettings

    write_batch_size: ClassVar[int] = 2_000
    """Ops the engine hands one write call. Every call copies the whole file once (that is what
    replacing it atomically costs), so bigger is faster for a first load; but the engine holds a
    batch's records, links and plans (4-6 KB a record), and at 5,000 that alone took a pass over
    a 1,000,000-row file past 1.5x the memory of a 10,000-row one. At 2,000 a first load of 1,000,000
    rows is 500 copies in the same time as 200 (the copy is not what costs), and a pass after 10,000
    changes makes 5 copies instead of 2 (36 s against 28 s)."""

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
        self._indexes: dict[str, CsvIndex] = {}
        self._indexed_fields: dict[str, set[str]] = {}
        self._state_dir: Path | None = None
        self._closed = False

    def use_state_dir(self, path: Path) -> None:
        """CSV reads keep each row's fingerprint in a snapshot store there instead of the cursor."""
        self._state_dir = path

    # the protocol

    def streams(self) -> list[StreamInfo]:
        infos: list[StreamInfo] = []
        for stream in sorted({*self._format.stream_names(), *self.settings.keys}):
            found = self._columns(stream)
            if found is None:
                continue
            names, key = found
            fields = tuple(FieldInfo(name=c, nullable=c != key) for c in names)
            infos.append(StreamInfo(stream, key, fields, frozenset({"find", "add-columns"})))
        return infos

    def read(self, stream: str, cursor: Cursor | None) -> Iterator[Batch]:
        """Rows new or changed since `cursor`, then deletions; only the last batch is a checkpoint.

        A missing or empty file yields nothing at all rather than deleting every row: a file that
        vanished is far more often moved or being re-saved than emptied on purpose.
        """
        previous = FileCursor.from_json(cursor)
        if isinstance(self._format, CsvFormat):
            return self._read_csv(self._format, stream, previous)
        return self._read_document(stream, previous)

    def write(self, stream: str, ops: Sequence[WriteOp]) -> list[WriteResult]:
        """Apply every op and replace the file once, atomically.

        Nothing is written when no op changed anything, so a repeated write leaves the file (and
        its modification time) alone. If someone saves the file while we work, the ops are applied
        again to their version rather than overwriting it.
        """
        if not ops:
            return []
        path = self._format.file_of(stream)
        with _file_lock(path):
            for _ in range(WRITE_ATTEMPTS):
                try:
                    return self._write_once(stream, path, ops)
                except FileChanged:
                    self._indexes.pop(stream, None)
        message = f"{self._format.label(stream)} kept changing while syncd wrote it"
        return [_failure("transient-exhausted", "FILE_BUSY", message) for _ in ops]

    def find(self, stream: str, field: str, values: Collection[str]) -> dict[str, str]:
        """{value: key} of the first row whose `field` holds each value, without a read per call."""
        if not any(cell_text(value) for value in values):
            return {}
        if isinstance(self._format, CsvFormat) and self._format.streaming_writes:
            path = self._format.file_of(stream)
            with _file_lock(path):
                for _ in range(WRITE_ATTEMPTS):
                    with self._open_file(stream) as fh:
                        if fh is None:
                            return {}
                        index = self._index(stream, fh, [field])
                        if index is None:
                            break
                        try:
                            return index.find(fh, field, values)
                        except FileChanged:
                            self._indexes.pop(stream, None)
        return self._find_in_document(stream, field, values)

    def close(self) -> None:
        """Nothing stays open between calls; closing forgets the indexes and marks the connector done."""
        self._indexes.clear()
        self._closed = True

    # CSV, streamed

    def _read_csv(self, fmt: CsvFormat, stream: str, previous: FileCursor | None) -> Iterator[Batch]:
        if self._state_dir is not None:
            yield from self._read_csv_snapshots(fmt, stream, previous, self._state_dir)
            return
        if previous is not None and self._hash_file(stream) in (None, previous.file_hash):
            return
        with self._csv_rows(fmt, stream) as source:
            if source is None:
                return
            rows, key_column, read_hash = source
            yield from changes(
                rows,
                read_hash,
                previous,
                key_column=key_column,
                place=self._placer(stream),
                batch_size=self.settings.batch_size,
                modified_column=self.settings.modified.get(stream),
            )

    def _read_csv_snapshots(
        self, fmt: CsvFormat, stream: str, previous: FileCursor | None, state_dir: Path
    ) -> Iterator[Batch]:
        """A CSV read whose fingerprints live in the snapshot store, so memory stays flat."""
        file_hash = self._hash_file(stream)
        if file_hash is None or (previous is not None and previous.file_hash == file_hash):
            return
        with self._csv_rows(fmt, stream) as source:
            if source is None:
                return
            rows, key_column, read_hash = source
            path = store_path(state_dir, self._format.file_of(stream))
            with _file_lock(path):  # one read builds a file's snapshot at a time (see _file_lock)
                yield from self._snapshot_read(stream, path, rows, key_column, file_hash, read_hash, previous)

    @contextlib.contextmanager
    def _csv_rows(
        self, fmt: CsvFormat, stream: str
    ) -> Iterator[tuple[Iterator[SourceRow], str, Callable[[], str]] | None]:
        """The file's data rows, its key column and the hash of the bytes read; None for no table.

        A file without a header yet holds no table; one whose header lacks the key column but has
        data rows is a config error naming the file.
        """
        with self._open_file(stream) as fh:
            if fh is None:
                yield None
                return
            scanner = fmt.scanner(stream, fh)
            records = iter(scanner)
            header = fmt.take_header(stream, records)
            if header is None or header.key is None:
                if header is not None and any(not is_blank(record.cells) for record in records):
                    raise fmt.blank_header(stream, header)
                yield None
                return
            columns = fmt.columns(stream, header.names, header.key)
            yield (CsvRow(record, columns) for record in records), header.key, scanner.hexdigest

    def _snapshot_read(
        self,
        stream: str,
        path: Path,
        rows: Iterator[SourceRow],
        key_column: str,
        file_hash: str,
        read_hash: Callable[[], str],
        previous: FileCursor | None,
    ) -> Iterator[Batch]:
        """Changes against the snapshot store at `path`; the caller holds the store's lock.

        Two mappings of the daemon reading one file at once would otherwise both build the same
        version: the second discards the first's half-written rows, and the first then marks an
        incomplete snapshot complete, which would hide deletions from a later read.
        """
        store = self._snapshot_store(stream, path)
        try:
            yield from snapshot_changes(
                rows,
                file_hash,
                read_hash,
                self._previous_version(stream, store, previous),
                previous.problems if previous is not None else frozenset(),
                store,
                key_column=key_column,
                place=self._placer(stream),
                batch_size=self.settings.batch_size,
                modified_column=self.settings.modified.get(stream),
            )
        finally:
            store.close()

    def _snapshot_store(self, stream: str, path: Path) -> SnapshotStore:
        try:
            return SnapshotStore(path)
        except sqlite3.Error as error:
            raise ConnectionDown(f"cannot open the snapshot store {path}: {error}") from None

    def _previous_version(self, stream: str, store: SnapshotStore, previous: FileCursor | None) -> str | None:
        """The version the cursor names, in the store; None (a full read) when it is gone.

        A cursor of an in-cursor format carries the previous rows itself: they become a snapshot
        once, and later cursors name it.
        """
        if previous is None:
            return None
        if previous.in_snapshots:
            if store.complete(previous.file_hash):
                return previous.file_hash
        else:
            prints = previous.fingerprints()
            if prints is not None:
                if not store.complete(previous.file_hash):
                    store.discard(previous.file_hash)
                    store.add_rows(
                        previous.file_hash,
                        ((prints.key(i), prints.row_hashes[i]) for i in range(len(prints))),
                    )
                    store.mark_complete(previous.file_hash)
                return previous.file_hash
        log.warning(
            "%s: the record of the last read is gone, so every row is handed on again; "
            "deletions made since the last read cannot be seen; syncd reconcile finds them",
            self._format.label(stream),
        )
        return None

    def _columns(self, stream: str) -> tuple[list[str], str] | None:
        """The stream's column names and key column, reading no further than its header."""
        fmt = self._format
        if not isinstance(fmt, CsvFormat):
            document = self._open(stream, self._read_bytes(stream), new_key=self.settings.keys.get(stream))
            return None if document is None else (document.table.columns, document.table.key_column)
        with self._open_file(stream) as fh:
            records = iter(fmt.scanner(stream, fh)) if fh is not None else iter(())
            header = fmt.take_header(stream, records)
            if header is not None and header.key is not None:
                return header.names, header.key
            if header is not None and any(not is_blank(record.cells) for record in records):
                raise fmt.blank_header(stream, header)
        key = self.settings.keys.get(stream)
        return None if key is None else ([key], key)

    def _index(self, stream: str, fh: BinaryIO, fields: Collection[str]) -> CsvIndex | None:
        """The index of the file open as `fh`, scanning it when the one kept describes another version."""
        fmt = self._format
        assert isinstance(fmt, CsvFormat)
        wanted = self._indexed_fields.setdefault(stream, set())
        wanted.update(fields)
        kept = self._kept_index(stream, fh, wanted)
        if kept is not None:
            return kept
        self._indexes.pop(stream, None)
        fh.seek(0)
        index = CsvIndex.scan(fmt, stream, fh, wanted)
        if index is not None:
            self._indexes[stream] = index
        return index

    def _write_once(self, stream: str, path: Path, ops: Sequence[WriteOp]) -> list[WriteResult]:
        fmt = self._format
        if isinstance(fmt, CsvFormat) and fmt.streaming_writes:
            with self._open_file(stream) as fh:
                if fh is not None:
                    index = self._writer(stream, fh, fmt, ops)
                    if index is not None:
                        try:
                            return index.write(fh, path, ops)
                        finally:
                            if not index.valid:
                                self._indexes.pop(stream, None)
        return self._write_document(stream, path, ops)

    def _kept_index(self, stream: str, fh: BinaryIO, fields: Collection[str]) -> CsvIndex | None:
        """The index kept for `stream` if it still describes the file open as `fh` and covers `fields`."""
        kept = self._indexes.get(stream)
        if kept is not None and kept.identity == identity_of(os.fstat(fh.fileno())) and kept.covers(fields):
            return kept
        return None

    def _writer(self, stream: str, fh: BinaryIO, fmt: CsvFormat, ops: Sequence[WriteOp]) -> CsvIndex | None:
        """The kept index if it still describes the file; else a new index for a batch of creates
        (a first load: the index pays off over its many batches), else a scan for just the rows
        these ops look up, so a pass that changes a few rows of a big file holds no index."""
        fields = {op.match[0] for op in ops if op.match}
        if all(op.op is Op.CREATE for op in ops):
            return self._index(stream, fh, fields)
        kept = self._kept_index(stream, fh, fields)
        if kept is not None:
            return kept
        self._indexes.pop(stream, None)
        fh.seek(0)
        return RowScan.open(fmt, stream, fh, ops)

    def _hash_file(self, stream: str) -> str | None:
        with self._open_file(stream) as fh:
            if fh is None:
                return None
            digest = file_digest()
            while data := fh.read(CHUNK):
                digest.update(data)
            return digest.hexdigest()

    # whole documents: XLSX, and CSV files without a header yet or in UTF-16/32

    def _read_document(self, stream: str, previous: FileCursor | None) -> Iterator[Batch]:
        data = self._read_bytes(stream)
        if data is None:
            return
        digest = file_digest()
        digest.update(data)
        file_hash = digest.hexdigest()
        if previous is not None and previous.file_hash == file_hash:
            return
        document = self._open(stream, data)
        if document is None:
            return
        table = document.table
        del data
        yield from changes(
            (DocumentRow(row, document) for row in table.live_rows()),
            lambda: file_hash,
            previous,
            key_column=table.key_column,
            place=self._placer(stream),
            batch_size=self.settings.batch_size,
            modified_column=self.settings.modified.get(stream),
        )

    def _write_document(self, stream: str, path: Path, ops: Sequence[WriteOp]) -> list[WriteResult]:
        new_key = self.settings.keys.get(stream) or next((op.match[0] for op in ops if op.match), None)
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
            raise FileChanged(self._format.label(stream))
        self._replace(stream, path, output)
        self._indexes.pop(stream, None)
        return results

    def _find_in_document(self, stream: str, field: str, values: Collection[str]) -> dict[str, str]:
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

    # plumbing

    def _placer(self, stream: str) -> Callable[[int], str]:
        """How a read problem names its row: "Clients.csv:14", "roster.xlsx[Clients]:14"."""
        name = Path(self._format.label(stream)).name
        return lambda line: f"{name}:{line}"

    def _open(
        self, stream: str, data: bytes | None, *, new_key: str | None = None, editable: bool = False
    ) -> TableDocument | None:
        return self._format.open(stream, data, new_key=new_key, editable=editable)

    @contextlib.contextmanager
    def _open_file(self, stream: str) -> Iterator[BinaryIO | None]:
        """The stream's file open for reading, or None if it does not exist; errors are ConnectionDown."""
        path = self._format.file_of(stream)
        try:
            fh = path.open("rb")
        except FileNotFoundError:
            yield None
            return
        except OSError as error:
            raise ConnectionDown(f"cannot read {self._format.label(stream)}: {error.strerror}") from None
        with fh:
            try:
                yield fh
            except OSError as error:
                raise ConnectionDown(f"cannot read {self._format.label(stream)}: {error.strerror}") from None

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
