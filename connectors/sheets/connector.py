"""The `sheets` connector: the worksheets of one Google spreadsheet as tables keyed by one column.

Sheets has no change feed and no per-row edit times, so the cursor is the content hash of every row
seen: a read (one `values.batchGet` per worksheet) hands on only rows that are new, changed or gone.
A write makes one `values.batchUpdate` for updates and deletes and one `values.append` for new rows,
whatever the number of records, because the per-minute quota, not bandwidth, is what runs out; only a
payload past `max_request_bytes` (default 9 MB, under the 10 MiB Google refuses; Google recommends
2 MB for speed) is cut into more calls of that size.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import secrets
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import requests
from gspread.exceptions import APIError
from gspread.utils import absolute_range_name
from pydantic import BaseModel

from connectors.sheets.client import SheetsClient, api_message, single_value_range
from connectors.sheets.settings import SYNCD_ID, SheetsSettings
from connectors.sheets.table import SheetTable, cell_text, column_letter
from syncd.cells import parse_edit_time, quote
from syncd.errors import ConfigError, ConnectionDown
from syncd.records import (
    Batch,
    Cursor,
    FieldInfo,
    JSONValue,
    Op,
    ReadProblem,
    Record,
    RecordFailure,
    StreamInfo,
    WriteOp,
    WriteResult,
    canonical_json,
    content_hash,
    to_jsonable,
)

MAX_CELL_CHARS = 50_000
MAX_CELLS = 10_000_000
TABLE_REUSE_SECONDS = 5.0
"""How old a table read by find() may be for the next write() to the worksheet to use it instead of
reading again: the same few seconds a write has always had between its own read and its update."""
_ENVELOPE_BYTES = 200  # a request body's JSON around its ranges or rows, with room to spare
_DELETED = "-"
_FIRST_ROW = re.compile(r"![A-Z]+(\d+)")


#: `syncd.records.canonical_json` built once: json.dumps builds an encoder per call, a third of
#: the cost of hashing a row. The output, and so every hash stored in cursors, is the same.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def row_hash(fields: Mapping[str, JSONValue]) -> str:
    """A row's content hash (== content_hash); blank cells are left out so a new empty column
    changes no row."""
    text = _CANONICAL.encode({name: value for name, value in fields.items() if value is not None})
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


@dataclass
class SheetCursor:
    rows: dict[str, str]
    pending: dict[str, tuple[str, float]] = field(default_factory=dict)
    problems: frozenset[str] = frozenset()
    #: Hash of the whole values response this cursor was made from (see SheetsConnector._digest).
    digest: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "pending": {k: [h, t] for k, (h, t) in self.pending.items()},
            "problems": sorted(self.problems),
            "digest": self.digest,
        }

    @classmethod
    def from_json(cls, cursor: Cursor | None) -> SheetCursor:
        """The stored cursor, or an empty one when it is absent or not ours (a full read is safe)."""
        if not isinstance(cursor, dict) or not isinstance(cursor.get("rows"), dict):
            return cls({})
        pending = {
            str(k): (str(v[0]), float(v[1]))
            for k, v in (cursor.get("pending") or {}).items()
            if isinstance(v, list) and len(v) == 2
        }
        digest = cursor.get("digest")
        return cls(
            {str(k): str(v) for k, v in cursor["rows"].items()},
            pending,
            frozenset(map(str, cursor.get("problems") or [])),
            digest if isinstance(digest, str) else None,
        )


def _raw(row: list[Any]) -> str:
    return json.dumps(row, ensure_ascii=False, default=str)


def _failure(category: str, code: str, message: str) -> WriteResult:
    return WriteResult(ok=False, error=RecordFailure(category=category, code=code, message=message))


def _same(current: Any, new: JSONValue) -> bool:
    """Whether a cell read as `current` already holds what writing `new` would store."""
    old = to_jsonable(current)
    old = "" if old is None else old
    new = "" if new is None else new
    if isinstance(old, bool) or isinstance(new, bool):
        return type(old) is type(new) and old == new
    if isinstance(old, int | float) and isinstance(new, int | float):
        return old == new
    return type(old) is type(new) and bool(old == new)


def _resolve(base_dir: Path, path: Path | None) -> Path | None:
    if path is None or path.is_absolute():
        return path
    return base_dir / path


_RANGE_BYTES = 100  # one range's JSON besides its values: the A1 range, keys, brackets


def _json_size(value: Any) -> int:
    """Bytes `value` adds to a request body, serialised as requests does it (ASCII-escaped)."""
    return len(json.dumps(value))


def _runs(rows: Sequence[int]) -> Iterator[tuple[int, int]]:
    """[start, end) index spans of `rows` (sorted) holding consecutive numbers."""
    start = 0
    for i in range(1, len(rows) + 1):
        if i == len(rows) or rows[i] != rows[i - 1] + 1:
            yield start, i
            start = i


def _cut(sizes: Sequence[int], budget: int) -> list[tuple[int, int]]:
    """[start, end) spans of consecutive items, each holding as many as fit in `budget` (at least one)."""
    spans: list[tuple[int, int]] = []
    start, total = 0, 0
    for i, size in enumerate(sizes):
        if i > start and total + size > budget:
            spans.append((start, i))
            start, total = i, 0
        total += size
    if sizes:
        spans.append((start, len(sizes)))
    return spans


@dataclass
class _Block:
    """One range of a values.batchUpdate: its entry in the body, about how many bytes of JSON it
    adds, and the cells it carries (none for a header), so a refused request can be retried op by op."""

    entry: dict[str, Any]
    size: int
    cells: dict[tuple[int, int], JSONValue]


@dataclass
class _Plan:
    """What one write() will send: cell values by (data row, column), rows to append, results."""

    cells: dict[tuple[int, int], JSONValue] = field(default_factory=dict)
    #: Cells written as if typed (USER_ENTERED): formulas in formula columns, dates in date columns.
    typed_cells: dict[tuple[int, int], JSONValue] = field(default_factory=dict)
    #: The same for rows still to be appended, by key: column -> value (placed once the append answers).
    typed_new: dict[str, dict[int, JSONValue]] = field(default_factory=dict)
    owners: dict[tuple[int, int], int] = field(default_factory=dict)
    new_rows: dict[str, list[JSONValue]] = field(default_factory=dict)
    new_row_ops: dict[str, list[int]] = field(default_factory=dict)
    results: list[WriteResult] = field(default_factory=list)
    #: Rows by the text of a non-key column, for creates matched on it (see _column_index).
    by_column: dict[int, dict[str, int]] = field(default_factory=dict)


class SheetsConnector:
    """Streams are the worksheets of one spreadsheet, read and written through the Sheets API."""

    Settings: ClassVar[type[BaseModel]] = SheetsSettings
    #: Ops the engine hands one write(): a write costs the same few calls for 1 row or 10,000, so
    #: big batches are what save quota. Not 100,000: the engine holds a batch's source records,
    #: links and plans (5-7 KB a record from Salesforce), and a first load of 100,000 rows from
    #: Salesforce in one batch peaked at 720 MB against 206 MB in ten, for 2 appends instead of 10.
    #: A mapping that wants the fewer calls sets `batch_size: 100000`; `max_request_bytes`, not
    #: this number, bounds a request.
    write_batch_size: ClassVar[int] = 10_000

    def __init__(
        self, name: str, settings: SheetsSettings, base_dir: Path, *, session: requests.Session | None = None
    ) -> None:
        self.name = name
        self.settings = settings.model_copy(
            update={
                "service_account_file": _resolve(base_dir, settings.service_account_file),
                "oauth_token_file": _resolve(base_dir, settings.oauth_token_file),
                "ca_file": _resolve(base_dir, settings.ca_file),
            }
        )
        self.client = SheetsClient(self.settings, session, name=name)
        self.clock: Callable[[], float] = time.time
        #: Ages the table find() read, for write() to use or re-read (never moved by wall-clock changes).
        self.monotonic: Callable[[], float] = time.monotonic
        #: Largest request body a write sends (the `max_request_bytes` setting).
        self.max_payload_bytes = self.settings.max_request_bytes
        self.table_reuse_seconds = TABLE_REUSE_SECONDS
        self._found: dict[str, tuple[float, SheetTable]] = {}
        # After a write that only appended: the table it wrote, with its new rows, for the next
        # find/write of this pass (see `_continued`).
        self._appended: dict[str, SheetTable] = {}
        self._closed = False

    # --- the protocol -------------------------------------------------------------------------

    def streams(self) -> list[StreamInfo]:
        """Every worksheet with its headers, from two calls whatever the number of worksheets."""
        meta = self.client.metadata()
        titles = [str(s["properties"]["title"]) for s in meta.get("sheets", [])]
        row = self.settings.header_row
        ranges = [absolute_range_name(t, f"A1:{row}") for t in titles]
        infos = []
        for title, value_range in zip(titles, self.client.batch_get(ranges), strict=True):
            table = SheetTable.parse(title, value_range, row, self.settings.keys.get(title))
            fields = tuple(FieldInfo(name=h, nullable=h != table.key_column) for h in table.columns)
            infos.append(StreamInfo(title, table.key_column, fields, frozenset({"find", "add-columns"})))
        return infos

    def read(self, stream: str, cursor: Cursor | None) -> Iterator[Batch]:
        """Rows new, changed or gone since `cursor`; only the last batch is a checkpoint.

        With `settle_seconds`, a row whose content changed is held back until it has kept the same
        content for that long (the pending hash and when it was first seen live in the cursor).
        """
        self._found.pop(stream, None)  # assigning syncd ids below would make it stale
        self._appended.pop(stream, None)
        body = self._fetch(stream)
        digest = self._digest(stream, body)
        if self._unchanged(cursor, digest):
            yield Batch(records=[], cursor=cursor)
            return
        previous = SheetCursor.from_json(cursor)
        table = self._parse(stream, body)
        if self.settings.keys.get(stream) == SYNCD_ID:
            table = self._assign_ids(stream, table)
        elif not table.has_key_column:
            raise ConfigError(
                f"worksheet {stream!r} has no column {table.key_column!r} (its key column); "
                f"its headers are {', '.join(repr(h) for h in table.columns)}"
            )
        following = SheetCursor({})
        records: list[Record] = []
        problems: list[ReadProblem] = []
        for item in self._changes(stream, table, previous, following):
            if isinstance(item, Record):
                records.append(item)
            else:
                problems.append(item)
            if len(records) + len(problems) >= self.settings.batch_size:
                yield Batch(records=records, cursor=None, problems=problems)
                records, problems = [], []
        following.digest = digest
        yield Batch(records=records, cursor=following.to_json(), problems=problems)

    def _digest(self, stream: str, body: bytes) -> str:
        """A hash of the raw values response and of the settings that shape records from it.

        Hashing the bytes as they came costs about a hundredth of parsing them and hashing every row
        (9 ms against 1.1 s for 100k rows of 6 columns here), so an idle pass pays for the one call
        and little else.
        Equal bytes mean equal cells; unequal bytes with equal cells only cost the full path.
        """
        shape = canonical_json(
            [
                1,  # the digest's own version: change it when what a read makes of the bytes changes
                self.settings.header_row,
                self.settings.keys.get(stream),
                sorted(self.settings.formulas.get(stream, [])),
            ]
        )
        h = hashlib.blake2b(shape.encode("utf-8"), digest_size=16)
        h.update(body)
        return h.hexdigest()

    def _unchanged(self, cursor: Cursor | None, digest: str) -> bool:
        """Whether `cursor` was made from these very values with nothing due to be handed on.

        Rows waiting out the settle delay were hashed from these same values, so they only need the
        full path once one of them has waited long enough; until then the cursor stays as it is.
        """
        if not isinstance(cursor, dict) or cursor.get("digest") != digest:
            return False
        if not isinstance(cursor.get("rows"), dict):
            return False
        pending = cursor.get("pending") or {}
        if not pending:
            return True
        settle = self.settings.settle_seconds
        if settle <= 0 or not isinstance(pending, dict):
            return False
        now = self.clock()
        return all(
            isinstance(seen, list) and len(seen) == 2 and now - float(seen[1]) < settle
            for seen in pending.values()
        )

    def _changes(
        self, stream: str, table: SheetTable, previous: SheetCursor, following: SheetCursor
    ) -> Iterator[Record | ReadProblem]:
        """Records for rows new, changed or gone since `previous` and settled, and problems not
        reported before, in sheet order as the rows are scanned; `following` becomes the next cursor.

        A row's fields are kept only if it is handed on: a pass after a few edits of a 100,000-row
        worksheet holds a few records, not 100,000 field dicts, and a first read hands each batch on
        before it scans the next rows.
        """
        formulas = frozenset(self.settings.formulas.get(stream, []))
        modified = self.settings.modified.get(stream)
        settle = self.settings.settle_seconds
        now = self.clock()
        rows, pending = following.rows, following.pending
        problems: set[str] = set()
        first_index: dict[str, int] = {}

        def settled(key: str, digest: str) -> bool:
            if settle <= 0:
                return True
            seen = previous.pending.get(key)
            if seen is None or seen[0] != digest:
                pending[key] = (digest, now)
                return False
            if now - seen[1] < settle:
                pending[key] = seen
                return False
            return True

        def problem(
            category: str, message: str, row: list[Any], key: str | None, index: int
        ) -> Iterator[ReadProblem]:
            raw = _raw(row)
            seen = content_hash([category, raw])
            problems.add(seen)
            if seen not in previous.problems:
                yield ReadProblem(category, message, raw, key, table.place(index))

        for index, row in enumerate(table.rows):
            key = table.key_of(row)  # a row with a key is not blank: the blank test is for the rest
            if not key and table.is_blank(row):
                continue
            if not key:
                yield from problem(
                    "bad-input", f"the key column {table.key_column!r} is blank", row, None, index
                )
                continue
            if key in first_index:
                first = table.place(first_index[key])
                message = f"{table.key_column} {key!r} is also the key of the row at {first}"
                yield from problem("duplicate", message, row, key, index)
                continue
            first_index[key] = index
            fields = table.fields_of(row, formulas)
            digest = row_hash(fields)
            before = previous.rows.get(key)
            if before == digest or not settled(key, digest):
                if before is not None:
                    rows[key] = before
                continue
            rows[key] = digest
            edited = parse_edit_time(fields.get(modified)) if modified else None
            yield Record(key=key, fields=fields, modified_at=edited)
        for key, before in previous.rows.items():
            if key in first_index:
                continue
            if settled(key, _DELETED):
                yield Record(key=key, fields={}, deleted=True)
            else:
                rows[key] = before
        following.problems = frozenset(problems)

    def write(self, stream: str, ops: Sequence[WriteOp]) -> list[WriteResult]:
        """Apply `ops` with one read of the keys and at most one batchUpdate plus one append.

        Rows are located by their key column at write time (never by a row number remembered from
        an earlier read), so rows a person inserted or moved meanwhile are still hit correctly.
        A delete clears the row's cells instead of removing the row: removing would shift every row
        below under anyone editing the sheet at that moment.
        """
        if not ops:
            return []
        table = self._recent_table(stream) or self._appended.get(stream)
        continued = table is not None and table is self._appended.get(stream)
        self._appended.pop(stream, None)
        if table is not None and continued and not self._appends_only(table, ops):
            table = None  # this write touches existing rows: locate them in a fresh read
        if table is None:
            table = self._load(stream)
        if not table.columns:  # an empty worksheet: the first write lays down the header
            table.key_column = self.settings.keys.get(stream) or next(
                (op.match[0] for op in ops if op.match), ""
            )
        if table.key_column == SYNCD_ID and not table.has_key_column:
            table = self._assign_ids(stream, table)
        added = self._add_columns(table, ops)
        if not table.has_key_column:
            message = f"worksheet {stream!r} has no column {table.key_column!r} to find rows by"
            return [_failure("validation", "NO_KEY_COLUMN", message) for _ in ops]
        plan = _Plan()
        index = self._index(table)
        plan.results = [
            self._plan_op(stream, table, index, plan, number, op) for number, op in enumerate(ops)
        ]
        self._send(stream, table, plan, ops, added)
        if plan.new_rows and not plan.cells and not plan.typed_cells and not added:
            self._keep_appended(stream, table, plan)
        return plan.results

    def _appends_only(self, table: SheetTable, ops: Sequence[WriteOp]) -> bool:
        """Whether every op creates a row whose key is not in `table` (so no row position is needed)."""
        index = self._index(table)
        probe = _Plan()  # one plan, so a match on a non-key column builds its index once
        return all(
            op.op is Op.CREATE
            and (op.key is None or op.key not in index)
            and self._match(table, index, probe, op) is None
            for op in ops
        )

    def _keep_appended(self, stream: str, table: SheetTable, plan: _Plan) -> None:
        """Keep the table this append-only write used, with the rows it appended, for the pass's next batch.

        An initial sync of 100,000 rows is ten write batches; reading the whole sheet before each
        one costs ten reads of a growing sheet. values.append places rows after the table whatever
        its length, so a batch that again only appends new keys needs no fresher read; one that
        touches existing rows reads again (see `write`). A failed append keeps nothing.
        """
        if any(not r.ok for r in plan.results):
            return
        for row in plan.new_rows.values():
            table.rows.append(list(row))
        self._appended[stream] = table

    def find(self, stream: str, field_name: str, values: Collection[str]) -> dict[str, str]:
        """{value: key} of the first row whose `field_name` holds each value, from one read.

        The engine calls find() right before write() with the same batch, so the table is kept for
        that write (see `_recent_table`): an initial sync then costs one read per batch, not two.
        """
        started = self.monotonic()
        table = self._appended.get(stream) or self._load(stream)
        self._found[stream] = (started, table)
        column = table.columns.get(field_name)
        wanted = {cell_text(v): v for v in values if cell_text(v)}
        found: dict[str, str] = {}
        if column is None or not wanted:
            return found
        for row in table.rows:
            text = cell_text(table.cell(row, column))
            if text in wanted and wanted[text] not in found:
                key = table.key_of(row)
                if key:
                    found[wanted[text]] = key
        return found

    def new_pass(self) -> None:
        """A new pass trusts no table read in an earlier one."""
        self._found.clear()
        self._appended.clear()

    def close(self) -> None:
        """Closes the HTTP session; safe to call twice."""
        self._found.clear()
        self._appended.clear()
        if not self._closed:
            self._closed = True
            self.client.close()

    def stats(self) -> dict[str, Any]:
        """Calls and retries by kind and the quota left, for the metrics exporter."""
        return {
            "calls": dict(self.client.stats.calls),
            "retries": dict(self.client.stats.retries),
            "throttled": self.client.stats.throttled,
            "read_budget": self.client.reads.remaining(),
            "write_budget": self.client.writes.remaining(),
        }

    # --- reading plumbing -----------------------------------------------------------------------

    def _load(self, stream: str) -> SheetTable:
        return self._parse(stream, self._fetch(stream))

    def _fetch(self, stream: str) -> bytes:
        try:
            return self.client.batch_get_bytes([absolute_range_name(stream)])
        except APIError as exc:
            status, message = api_message(exc)
            raise ConnectionDown(
                f"worksheet {stream!r} of the spreadsheet cannot be read: {status}: {message}"
            ) from None

    def _parse(self, stream: str, body: bytes) -> SheetTable:
        echoed, rows = single_value_range(body)
        return SheetTable.from_rows(
            stream, rows, echoed, self.settings.header_row, self.settings.keys.get(stream)
        )

    def _recent_table(self, stream: str) -> SheetTable | None:
        """The table find() read for this worksheet if it is fresh enough to write by; used once.

        Rows are located by key in it, as in a table the write reads itself, and it is no older
        than the gap a write has always had between its read and its update, so trusting it risks
        nothing new. Older, it is dropped and the write reads again.
        """
        found = self._found.pop(stream, None)
        if found is None or self.monotonic() - found[0] > self.table_reuse_seconds:
            return None
        return found[1]

    @staticmethod
    def _index(table: SheetTable) -> dict[str, int]:
        index: dict[str, int] = {}
        for number, row in enumerate(table.rows):
            key = table.key_of(row)
            if key and key not in index:
                index[key] = number
        return index

    def _assign_ids(self, stream: str, table: SheetTable) -> SheetTable:
        """Give every non-blank row without one a syncd id, in a hidden `syncd id` column added if needed."""
        column = table.columns.get(SYNCD_ID)
        cells: dict[tuple[int, int], JSONValue] = {}
        if column is None:
            column = len(table.headers)
            self._grow_columns(stream, table, column + 1)
            self.client.batch_update([self._hide_column(stream, column)])
            table.headers.append(SYNCD_ID)
            table.columns[SYNCD_ID] = column
            header = {
                "range": table.range_a1(table.header_row, table.header_row, column, column),
                "values": [[SYNCD_ID]],
            }
        else:
            header = None
        table.key_column = SYNCD_ID
        for number, row in enumerate(table.rows):
            if not table.is_blank(row) and not table.key_of(row):
                new_id = secrets.token_hex(6)
                while len(row) <= column:
                    row.append("")
                row[column] = new_id
                table.rows[number] = row  # rows are handed out as copies (PackedRows)
                cells[(number, column)] = new_id
        blocks = self._blocks(table, cells)
        if header is not None:
            blocks.insert(0, _Block(header, _RANGE_BYTES, {}))
        for request in self._requests(blocks):
            self.client.batch_update_values([block.entry for block in request], "RAW")
        return table

    def _hide_column(self, stream: str, column: int) -> dict[str, Any]:
        sheet_id = self._sheet_id(stream)
        return {
            "updateDimensionProperties": {
                "range": {
                    "sheetId": sheet_id,
                    "dimension": "COLUMNS",
                    "startIndex": column,
                    "endIndex": column + 1,
                },
                "properties": {"hiddenByUser": True},
                "fields": "hiddenByUser",
            }
        }

    def _sheet_id(self, stream: str) -> int:
        for sheet in self.client.metadata().get("sheets", []):
            if sheet["properties"]["title"] == stream:
                return int(sheet["properties"]["sheetId"])
        raise ConnectionDown(f"worksheet {stream!r} is not in the spreadsheet")

    def _grow_columns(self, stream: str, table: SheetTable, needed: int) -> None:
        if needed > table.col_count:
            request = {
                "appendDimension": {
                    "sheetId": self._sheet_id(stream),
                    "dimension": "COLUMNS",
                    "length": needed - table.col_count,
                }
            }
            self.client.batch_update([request])
            table.col_count = needed

    # --- writing plumbing -----------------------------------------------------------------------

    def _add_columns(self, table: SheetTable, ops: Sequence[WriteOp]) -> list[str]:
        """Fields no column holds yet get a new column at the right end of the header."""
        added: list[str] = []
        for op in ops:
            for name in op.fields:
                if name not in table.columns and name not in added:
                    added.append(name)
        for name in added:
            table.columns[name] = len(table.headers)
            table.headers.append(name)
        return added

    def _plan_op(
        self, stream: str, table: SheetTable, index: dict[str, int], plan: _Plan, number: int, op: WriteOp
    ) -> WriteResult:
        too_long = next(
            (n for n, v in op.fields.items() if isinstance(v, str) and len(quote(v)) > MAX_CELL_CHARS),
            None,
        )
        if too_long is not None:
            return _failure(
                "validation",
                "CELL_TOO_LONG",
                f"{too_long}: more than {MAX_CELL_CHARS} characters, the limit of a cell",
            )
        if op.op is Op.DELETE:
            row = index.get(op.key or "")
            if row is not None:
                current = table.rows[row]
                for column in range(len(table.headers)):
                    self._set(table, plan, number, row, current, column, "", stream)
            return WriteResult(ok=True, key=op.key)
        if op.op is Op.UPDATE:
            row = index.get(op.key or "")
            if row is None:
                return _failure(
                    "not-found", "NOT_FOUND", f"no row of {stream!r} has {table.key_column} {op.key!r}"
                )
            self._set_fields(stream, table, plan, number, row, op.fields)
            return WriteResult(ok=True, key=op.key)
        row = self._match(table, index, plan, op)
        if row is not None:
            self._set_fields(stream, table, plan, number, row, op.fields)
            return WriteResult(ok=True, key=table.key_of(table.rows[row]))
        return self._plan_new_row(stream, table, plan, number, op)

    def _match(self, table: SheetTable, index: dict[str, int], plan: _Plan, op: WriteOp) -> int | None:
        if op.key and op.key in index:
            return index[op.key]
        if op.match is not None:
            name, value = op.match
            if name == table.key_column:
                return index.get(cell_text(value))
            column = table.columns.get(name)
            wanted = cell_text(value)
            if column is not None and wanted:
                found = self._column_index(table, plan, column).get(wanted)
                if found is not None:
                    return found
        key = cell_text(op.fields.get(table.key_column))
        return index.get(key) if key else None

    @staticmethod
    def _column_index(table: SheetTable, plan: _Plan, column: int) -> dict[str, int]:
        """The first row holding each text of `column`, built once per write: scanning the sheet for
        every create matched on a non-key column made a 10,000-op write cost 10,000 scans."""
        index = plan.by_column.get(column)
        if index is None:
            index = {}
            for number, row in enumerate(table.rows):
                index.setdefault(cell_text(table.cell(row, column)), number)
            plan.by_column[column] = index
        return index

    def _plan_new_row(
        self, stream: str, table: SheetTable, plan: _Plan, number: int, op: WriteOp
    ) -> WriteResult:
        fields = dict(op.fields)
        key = cell_text(fields.get(table.key_column)) or (op.key or "")
        if not key and table.key_column == SYNCD_ID:
            key = secrets.token_hex(6)
        if not key:
            return _failure("validation", "BLANK_KEY", f"the key column {table.key_column!r} would be blank")
        fields[table.key_column] = key
        cells_after = (table.row_count + len(plan.new_rows) + 1) * max(table.col_count, len(table.headers))
        if cells_after > MAX_CELLS:
            return _failure(
                "validation", "SPREADSHEET_FULL", f"a new row would pass the {MAX_CELLS} cell limit"
            )
        row = plan.new_rows.setdefault(key, [None] * len(table.headers))
        for name, value in fields.items():
            cell = self._cell_value(stream, name, value)
            if self._typed(stream, name, cell):
                plan.typed_new.setdefault(key, {})[table.columns[name]] = cell
                cell = ""
            row[table.columns[name]] = cell
        plan.new_row_ops.setdefault(key, []).append(number)
        return WriteResult(ok=True, key=key, created=True)

    def _cell_value(self, stream: str, name: str, value: JSONValue) -> JSONValue:
        if value is None:
            return ""
        if isinstance(value, dict | list):
            value = json.dumps(value, ensure_ascii=False)
        if isinstance(value, str) and name not in self.settings.formulas.get(stream, []):
            return quote(value)
        return value

    def _set_fields(
        self,
        stream: str,
        table: SheetTable,
        plan: _Plan,
        number: int,
        row: int,
        fields: Mapping[str, JSONValue],
    ) -> None:
        current = table.rows[row]  # decoded once for all its cells (rows are packed)
        for name, value in fields.items():
            column = table.columns[name]
            self._set(
                table, plan, number, row, current, column, self._cell_value(stream, name, value), stream
            )

    def _set(
        self,
        table: SheetTable,
        plan: _Plan,
        number: int,
        row: int,
        current: list[Any],
        column: int,
        value: JSONValue,
        stream: str,
    ) -> None:
        if _same(table.cell(current, column), value):
            return  # already there: an unchanged cell costs no quota and touches nothing
        typed = self._typed(stream, table.headers[column], value)
        (plan.typed_cells if typed else plan.cells)[(row, column)] = value
        plan.owners[(row, column)] = number

    def _typed(self, stream: str, name: str, value: JSONValue) -> bool:
        """Whether a value must be written as if typed: a formula in a formula column, a date in a
        date column. Everything else is written RAW, exactly as given."""
        if not isinstance(value, str) or not value:
            return False
        if name in self.settings.formulas.get(stream, []):
            return value.startswith("=")
        return name in self.settings.dates.get(stream, [])

    def _blocks(self, table: SheetTable, cells: Mapping[tuple[int, int], JSONValue]) -> list[_Block]:
        """Few ranges for many cells: each run of neighbouring rows becomes one block, `null` where a
        cell is left as it is (the API skips null), so untouched cells keep their content. A run too
        big for one request is cut between rows."""
        columns: dict[int, list[int]] = {}
        for row, column in cells:
            columns.setdefault(row, []).append(column)
        rows = sorted(columns)
        budget = self.max_payload_bytes - _ENVELOPE_BYTES - _RANGE_BYTES
        blocks: list[_Block] = []
        for run_start, run_end in _runs(rows):
            run = rows[run_start:run_end]
            first = min(min(columns[r]) for r in run)
            last = max(max(columns[r]) for r in run)
            lines = [[cells.get((r, c)) for c in range(first, last + 1)] for r in run]
            sizes = [_json_size(line) + 2 for line in lines]
            for a, b in _cut(sizes, budget):
                a1 = table.range_a1(table.sheet_row(run[a]), table.sheet_row(run[b - 1]), first, last)
                own = {(r, c): cells[(r, c)] for r in run[a:b] for c in columns[r]}
                entry = {"range": a1, "values": lines[a:b]}
                blocks.append(_Block(entry, sum(sizes[a:b]) + _RANGE_BYTES, own))
        return blocks

    def _requests(self, blocks: list[_Block]) -> list[list[_Block]]:
        """Consecutive blocks grouped into as few requests as keep each under the payload limit."""
        budget = self.max_payload_bytes - _ENVELOPE_BYTES
        return [blocks[a:b] for a, b in _cut([block.size for block in blocks], budget)]

    def _send(
        self, stream: str, table: SheetTable, plan: _Plan, ops: Sequence[WriteOp], added: list[str]
    ) -> None:
        header: list[_Block] = []
        if added:
            first = len(table.headers) - len(added)
            self._grow_columns(stream, table, len(table.headers))
            a1 = table.range_a1(table.header_row, table.header_row, first, len(table.headers) - 1)
            header = [_Block({"range": a1, "values": [added]}, _json_size(added) + _RANGE_BYTES, {})]
        self._update(table, plan, [*header, *self._blocks(table, plan.cells)], "RAW")
        if plan.new_rows:
            self._append(table, plan)
        if plan.typed_cells:
            self._update(table, plan, self._blocks(table, plan.typed_cells), "USER_ENTERED")

    def _update(self, table: SheetTable, plan: _Plan, blocks: list[_Block], option: str) -> None:
        """One values.batchUpdate per payload-sized group of blocks (one for all but huge writes)."""
        for group in self._requests(blocks):
            try:
                self.client.batch_update_values([block.entry for block in group], option)
            except APIError:
                self._send_one_by_one(table, plan, group, option)

    def _append(self, table: SheetTable, plan: _Plan) -> None:
        """One values.append for every new row (more only past the payload limit); their typed cells
        join the USER_ENTERED call after it."""
        last = column_letter(max(len(table.headers) - 1, 0))
        target = absolute_range_name(table.title, f"A{table.header_row}:{last}")
        keys = list(plan.new_rows)
        rows = [[v if v is not None else "" for v in r] for r in plan.new_rows.values()]
        budget = self.max_payload_bytes - _ENVELOPE_BYTES
        for a, b in _cut([_json_size(row) + 2 for row in rows], budget):
            try:
                answer = self.client.append(target, rows[a:b])
            except APIError as exc:
                status, message = api_message(exc)
                for key in keys[a:b]:
                    for number in plan.new_row_ops[key]:
                        plan.results[number] = _failure("validation", status, message)
                continue
            m = _FIRST_ROW.search(str(answer.get("updates", {}).get("updatedRange", "")))
            if m is None:
                continue
            first = int(m.group(1)) - table.header_row - 1
            for offset, key in enumerate(keys[a:b]):
                for column, value in plan.typed_new.get(key, {}).items():
                    plan.typed_cells[(first + offset, column)] = value
                    plan.owners[(first + offset, column)] = plan.new_row_ops[key][-1]

    def _send_one_by_one(self, table: SheetTable, plan: _Plan, group: list[_Block], option: str) -> None:
        """A request was refused: send each op's cells alone so one bad record fails alone."""
        by_op: dict[int, dict[tuple[int, int], JSONValue]] = {}
        for block in group:
            if not block.cells:  # the header of new columns; if refused alone, the next read says so
                with contextlib.suppress(APIError):
                    self.client.batch_update_values([block.entry], option)
            for place, value in block.cells.items():
                by_op.setdefault(plan.owners[place], {})[place] = value
        for number, own in by_op.items():
            try:
                for request in self._requests(self._blocks(table, own)):
                    self.client.batch_update_values([block.entry for block in request], option)
            except APIError as exc:
                status, message = api_message(exc)
                plan.results[number] = _failure("validation", status, message)
