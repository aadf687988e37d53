"""Writing to a large CSV file at a cost bounded by the ops in hand, not by the file.

The engine writes a pass in batches of `write_batch_size` ops. Re-reading, re-parsing and
re-rendering the whole file for every batch made a 1,000,000-row first pass quadratic (2,000
full rewrites); so did answering `find` by parsing the file on every call.

Instead one streaming scan builds an index: where every row starts (its byte offset) and a
64-bit hash of its key cell (and of each column `find` or a match was asked about). It stays
valid while the file is the one it describes: same size, modification time and inode as when
scanned or last written by us. A write then

- looks its keys and match values up in the index and reads only the rows they hit (one seek
  each), into a `Table` of just those rows, and applies the ops there with the same rules as a
  whole-file table: only touched cells change, formulas neutralised, a create that finds its row
  updates it, a repeated key is refused;
- copies the file's bytes to a temporary file, writing the changed rows in place of their old
  bytes and the new rows at the end, and renames it over the file. Nothing is parsed while
  copying; the bytes copied are hashed and must be the bytes the index was built from, or the
  write starts again on the new version (someone saved the file meanwhile).

A batch of creates whose keys are all new is the common case (a first pass): it copies the file
and appends, and the index learns the new rows without a rescan.
"""

from __future__ import annotations

import bisect
import contextlib
import os
from array import array
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from connectors.files.atomic import atomic_writer
from connectors.files.csv_format import CsvColumns, CsvFormat, CsvHeader, format_row, is_blank
from connectors.files.csv_stream import CHUNK, Crc32, CsvRecord, body_encoding, record_at
from connectors.files.hashes import HashSlots, text_hash
from connectors.files.table import Row, Table, cell_text
from syncd.errors import ConnectionDown
from syncd.records import JSONValue, WriteOp, WriteResult

Identity = tuple[int, int, int]


def identity_of(status: os.stat_result) -> Identity:
    """What tells us a file is still the version we scanned or wrote: size, mtime and inode."""
    return (status.st_size, status.st_mtime_ns, status.st_ino)


def _identity_at(path: Path) -> Identity | None:
    try:
        return identity_of(os.stat(path))
    except FileNotFoundError:
        return None


class FileChanged(Exception):
    """The file is no longer the version the index describes; scan it again and retry."""


@dataclass(slots=True)
class _Column:
    hashes: array[int]
    slots: HashSlots


@dataclass(frozen=True, slots=True)
class _Edit:
    start: int
    end: int
    data: bytes


class CsvIndex:
    """Where each row of one CSV file starts, and its indexed cells' hashes, in file order."""

    def __init__(
        self,
        fmt: CsvFormat,
        stream: str,
        header: CsvHeader,
        columns: CsvColumns,
        identity: Identity,
        checksum: str,
        starts: array[int],
        indexed: dict[int, _Column],
    ) -> None:
        self.fmt = fmt
        self.stream = stream
        self.label = fmt.label(stream)
        self.header = header
        self.columns = columns
        self.identity = identity
        self.checksum = checksum
        self.starts = starts
        self.dead = bytearray(len(starts))
        self.indexed = indexed
        self.valid = True
        self.append_at = 0
        self._encoding = body_encoding(fmt.encoding)

    @classmethod
    def scan(cls, fmt: CsvFormat, stream: str, fh: BinaryIO, fields: Iterable[str] = ()) -> CsvIndex | None:
        """The index of the open file `fh`, covering the key column and `fields`.

        None when the file has no header row with names yet (the whole-file path creates it) or
        when its encoding did not re-encode to the same byte count (offsets would be wrong).
        """
        identity = identity_of(os.fstat(fh.fileno()))
        scanner = fmt.scanner(stream, fh, digest=Crc32)
        records = iter(scanner)
        header = fmt.take_header(stream, records)
        if header is None or not header.names or header.key is None:
            return None
        columns = fmt.columns(stream, header.names, header.key)
        positions = {columns.key_index} | {columns.positions[f] for f in fields if f in columns.positions}
        hashes: dict[int, array[int]] = {p: array("Q") for p in sorted(positions)}
        text = columns.text
        starts: array[int] = array("Q")
        for record in records:
            if is_blank(record.cells):
                continue  # a blank row holds no key or match value, so no op can find it
            starts.append(record.start)
            for position, values in hashes.items():
                values.append(text_hash(text(record.cells, position)))
        if not scanner.offsets_exact:
            return None
        indexed = {p: _Column(values, HashSlots(values)) for p, values in hashes.items()}
        return cls(fmt, stream, header, columns, identity, scanner.hexdigest(), starts, indexed)

    def covers(self, fields: Iterable[str]) -> bool:
        """Whether every one of `fields` that is a column is indexed."""
        positions = self.columns.positions
        return all(positions[f] in self.indexed for f in fields if f in positions)

    # find

    def find(self, fh: BinaryIO, field: str, values: Collection[str]) -> dict[str, str]:
        """{value: key} of the first row whose `field` holds each value (and has a key)."""
        position = self.columns.positions.get(field)
        if position is None:
            return {}
        wanted = {cell_text(value): value for value in values if cell_text(value)}
        found: dict[str, str] = {}
        for text, value in wanted.items():
            for _, record in self._rows_holding(fh, position, text):
                key = self.columns.key_of(record.cells)
                if key:
                    found[value] = key
                    break
        return found

    def _rows_holding(self, fh: BinaryIO, position: int, text: str) -> list[tuple[int, CsvRecord]]:
        """(row number, record) of every live row whose cell at `position` reads as `text`."""
        column = self.indexed[position]
        rows: list[tuple[int, CsvRecord]] = []
        for row in column.slots.rows(text_hash(text)):
            if self.dead[row]:
                continue
            record = self._record(fh, row)
            if self.columns.text(record.cells, position) == text:  # the hash only said "maybe"
                rows.append((row, record))
        return rows

    def _record(self, fh: BinaryIO, row: int) -> CsvRecord:
        record = record_at(fh, self.starts[row], self.fmt.encoding, self.fmt.delimiter, self.label)
        if record is None:
            raise FileChanged(f"{self.label}: no row at byte {self.starts[row]}")
        return record

    # write

    def write(self, fh: BinaryIO, path: Path, ops: Sequence[WriteOp]) -> list[WriteResult]:
        """Apply `ops` to the rows they touch and replace the file once, if anything changed.

        Raises FileChanged when `fh` is not the version indexed, before or while copying; the
        file is then left as it is.
        """
        if identity_of(os.fstat(fh.fileno())) != self.identity:
            raise FileChanged(self.label)
        loaded = self._rows_touched_by(fh, ops)
        codec = self.columns.codec
        rows = [Row(cells=list(record.cells), origin=row, raw=record.raw) for row, record in loaded.items()]
        table = Table(self.columns.names, self.columns.key, self.columns.formulas, codec, rows)
        results = [table.apply(op) for op in ops]
        if not table.changed:
            return results
        line_end = self.header.line_end
        edits: list[_Edit] = []
        if table.added_columns:
            kept = self.header.record.cells[: len(self.columns.names)]
            text = format_row([*kept, *table.added_columns], self.fmt.delimiter, line_end)
            edits.append(_Edit(self.header.record.start, self.header.record.end, self._encode(text)))
        for row in table.rows:
            if row.origin is None or not (row.deleted or row.changed):
                continue
            record = loaded[row.origin]
            data = b"" if row.deleted else self._encode(format_row(row.cells, self.fmt.delimiter, line_end))
            edits.append(_Edit(record.start, record.end, data))
        edits.sort(key=lambda edit: edit.start)
        added = [row for row in table.rows if row.origin is None and not row.deleted]
        appended = [self._encode(format_row(row.cells, self.fmt.delimiter, line_end)) for row in added]
        self._replace(fh, path, edits, appended, line_end)
        self._learn(table, loaded, edits, added, [len(data) for data in appended])
        return results

    def _rows_touched_by(self, fh: BinaryIO, ops: Sequence[WriteOp]) -> dict[int, CsvRecord]:
        """Every row an op could locate: those holding an op's key, new key or match value.

        Table finds rows only by the key column and by match columns, with values taken from
        the ops, so rows outside this set can neither be changed nor block a change.
        """
        columns, key = self.columns, self.columns.key_index
        wanted = self._wanted_by(ops)
        self._prefetch(fh, wanted)
        loaded: dict[int, CsvRecord] = {}
        for position, texts in wanted.items():
            for text in texts:
                for row, record in self._rows_holding(fh, position, text):
                    loaded[row] = record
        # A row found by a match value keeps its key, and Table refuses the change if an earlier
        # row holds that key too (a file with duplicate keys): those rows must be there to see.
        keys = {columns.key_of(record.cells) for record in loaded.values()} - wanted.get(key, set())
        keys.discard("")
        if keys:
            self._prefetch(fh, {key: keys})
        for text in keys:
            for row, record in self._rows_holding(fh, key, text):
                loaded[row] = record
        return dict(sorted(loaded.items()))

    def _wanted_by(self, ops: Sequence[WriteOp]) -> dict[int, set[str]]:
        """Column position -> the texts the ops look rows up by (keys, new keys, match values)."""
        columns, key = self.columns, self.columns.key_index
        wanted: dict[int, set[str]] = {}

        def want(position: int | None, value: JSONValue) -> None:
            text = cell_text(value)
            if position is not None and text:
                wanted.setdefault(position, set()).add(text)

        formula = columns.key in columns.formulas
        for op in ops:
            if op.key is not None:
                want(key, op.key)
            if op.match is not None:
                want(columns.positions.get(op.match[0]), op.match[1])
            for name, value in op.fields.items():
                if isinstance(name, str) and name.strip() == columns.key:
                    want(key, value)
                    with contextlib.suppress(ValueError):  # a value that cannot be stored refuses its op
                        want(key, columns.codec.from_cell(columns.codec.to_cell(value, formula), formula))
        return wanted

    def _prefetch(self, fh: BinaryIO, wanted: dict[int, set[str]]) -> None:
        """Make the rows holding `wanted` (column position -> texts) cheap to look up; the index
        needs nothing (it finds any row by hash), a `RowScan` reads the file once for them."""

    def _encode(self, text: str) -> bytes:
        return text.encode(self._encoding)

    def _replace(
        self, fh: BinaryIO, path: Path, edits: Sequence[_Edit], appended: Sequence[bytes], line_end: str
    ) -> None:
        """Copy the file with `edits` applied and `appended` at the end, then rename it over the file."""
        try:
            self.identity, self.checksum, self.append_at = self._copy(fh, path, edits, appended, line_end)
        except OSError as error:
            raise ConnectionDown(f"cannot write {self.label}: {error.strerror}") from None

    def _copy(
        self, fh: BinaryIO, path: Path, edits: Sequence[_Edit], appended: Sequence[bytes], line_end: str
    ) -> tuple[Identity, str, int]:
        """The copy itself: the new file's identity and hash, and where the appended rows start."""
        seen, written = Crc32(), Crc32()
        size = 0
        last = b""

        def take(count: int | None) -> bytes:
            try:
                data = fh.read(CHUNK if count is None else min(count, CHUNK))
            except OSError as error:
                raise ConnectionDown(f"cannot read {self.label}: {error.strerror}") from None
            seen.update(data)
            return data

        fh.seek(0)
        with atomic_writer(path) as out:

            def emit(data: bytes) -> None:
                nonlocal size, last
                if data:
                    out.write(data)
                    written.update(data)
                    size += len(data)
                    last = data[-1:]

            position = 0
            for edit in edits:
                while position < edit.start:
                    data = take(edit.start - position)
                    if not data:
                        raise FileChanged(self.label)
                    emit(data)
                    position += len(data)
                while position < edit.end:
                    data = take(edit.end - position)
                    if not data:
                        raise FileChanged(self.label)
                    position += len(data)
                emit(edit.data)
            while data := take(None):
                emit(data)
                position += len(data)
            if position != self.identity[0] or seen.hexdigest() != self.checksum:
                raise FileChanged(self.label)
            if appended and last not in (b"\n", b"\r"):
                emit(self._encode(line_end))  # the last row had no line end; new rows follow it
                self.valid = False  # that row (or the header) is now longer than the index says
            append_at = size
            for data in appended:
                emit(data)
            if _identity_at(path) != self.identity:  # saved by someone after we copied: keep theirs
                raise FileChanged(self.label)
        assert out.stat is not None
        return identity_of(out.stat), written.hexdigest(), append_at

    def _learn(
        self,
        table: Table,
        loaded: dict[int, CsvRecord],
        edits: Sequence[_Edit],
        added: Sequence[Row],
        lengths: Sequence[int],
    ) -> None:
        """Bring the index up to the file just written, without scanning it again.

        Rows after an edit move by the edit's change in length; deleted rows are marked dead. A
        new column (the header moved every name's meaning), an update of an indexed cell (its
        hash would sit in the wrong place of the table) or a line end added to the file's last
        line makes the index stale instead: rare, and the next call scans again.
        """
        if table.added_columns or not self.valid:
            self.valid = False
            return
        text = self.columns.text
        for row in table.rows:
            if row.origin is None:
                continue
            if row.deleted:
                self.dead[row.origin] = 1
                continue
            before = loaded[row.origin].cells
            if any(text(row.cells, p) != text(before, p) for p in self.indexed):
                self.valid = False
                return
        if edits:
            self._shift(edits)
        position = self.append_at
        for row, length in zip(added, lengths, strict=True):
            self.starts.append(position)
            self.dead.append(0)
            for index, column in self.indexed.items():
                column.hashes.append(text_hash(text(row.cells, index)))
            position += length
        for column in self.indexed.values():
            column.slots.catch_up()

    def _shift(self, edits: Sequence[_Edit]) -> None:
        """Move each row's start by the length changes of the edits before it.

        Rows between two edits move by the same amount, so each such run is shifted in one
        slice assignment (a C loop) rather than row by row: this runs on every write that
        changes rows in place, over every row below the first change.
        """
        starts = self.starts
        bounds = [bisect.bisect_right(starts, edit.start) for edit in edits] + [len(starts)]
        shift = 0
        for number, edit in enumerate(edits):
            shift += len(edit.data) - (edit.end - edit.start)
            low, high = bounds[number], bounds[number + 1]
            if shift and low < high:
                starts[low:high] = array("Q", map(shift.__add__, starts[low:high]))


class RowScan(CsvIndex):
    """A write's rows found by one streaming scan of the file, with no index kept.

    A full index costs ~28 bytes a row (offsets, hashes, hash slots), about 28 MB for a
    1,000,000-row file, and pays off over the many batches of a first load, where each batch
    must know which of its keys are new. A pass that updates a few rows of a big file needs it
    for a write call or two: scanning for just the keys and match values of the ops in hand keeps
    its memory to those rows. The write itself (patching rows, copying, checks) is the index's.
    """

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._found: dict[tuple[int, str], list[tuple[int, CsvRecord]]] = {}
        self._covered: dict[int, set[str]] = {}

    @classmethod
    def open(cls, fmt: CsvFormat, stream: str, fh: BinaryIO, ops: Sequence[WriteOp]) -> RowScan | None:
        """The file's version and the rows `ops` look up, from one scan; None where CsvIndex.scan
        would give none (no header yet, or offsets that re-encoding would not reproduce)."""
        identity = identity_of(os.fstat(fh.fileno()))
        scanner = fmt.scanner(stream, fh, digest=Crc32)
        records = iter(scanner)
        header = fmt.take_header(stream, records)
        if header is None or not header.names or header.key is None:
            return None
        columns = fmt.columns(stream, header.names, header.key)
        scan = cls(fmt, stream, header, columns, identity, "", array("Q"), {})
        wanted = scan._wanted_by(ops)
        scan._collect(records, wanted)
        if not scanner.offsets_exact:
            return None
        scan.checksum = scanner.hexdigest()
        scan._covered = wanted
        return scan

    def _collect(self, records: Iterable[CsvRecord], wanted: dict[int, set[str]]) -> None:
        text = self.columns.text
        row = 0
        for record in records:
            if is_blank(record.cells):
                continue  # numbered as CsvIndex.scan numbers rows: blank rows are not rows
            for position, texts in wanted.items():
                cell = text(record.cells, position)
                if cell in texts:
                    self._found.setdefault((position, cell), []).append((row, record))
            row += 1

    def _prefetch(self, fh: BinaryIO, wanted: dict[int, set[str]]) -> None:
        if all(texts <= self._covered.get(position, set()) for position, texts in wanted.items()):
            return  # the scan at open() already looked for these
        fh.seek(0)
        scanner = self.fmt.scanner(self.stream, fh, digest=Crc32)
        records = iter(scanner)
        self.fmt.take_header(self.stream, records)
        self._found.clear()  # collected again for everything asked, so no row is listed twice
        covered = {p: set(t) for p, t in self._covered.items()}
        for position, texts in wanted.items():
            covered.setdefault(position, set()).update(texts)
        self._collect(records, covered)
        if scanner.hexdigest() != self.checksum:
            raise FileChanged(self.label)
        self._covered = covered

    def _rows_holding(self, fh: BinaryIO, position: int, text: str) -> list[tuple[int, CsvRecord]]:
        return self._found.get((position, text), [])

    def _learn(
        self,
        table: Table,
        loaded: dict[int, CsvRecord],
        edits: Sequence[_Edit],
        added: Sequence[Row],
        lengths: Sequence[int],
    ) -> None:
        self.valid = False  # nothing to keep: the next write scans for its own rows
