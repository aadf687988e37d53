"""The `sheets` connector: the worksheets of one Google spreadsheet as tables keyed by one column.

Sheets has no change feed and no per-row edit times, so the cursor is the content hash of every row
seen: a read (one `values.batchGet` per worksheet) hands on only rows that are new, changed or gone.
A write makes at most one `values.batchUpdate` for updates and deletes and one `values.append` for new
rows, whatever the number of records, because the per-minute quota, not bandwidth, is what runs out.
"""

from __future__ import annotations

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

from connectors.sheets.client import SheetsClient, api_message
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
    content_hash,
    to_jsonable,
)

MAX_CELL_CHARS = 50_000
MAX_CELLS = 10_000_000
_DELETED = "-"
_FIRST_ROW = re.compile(r"![A-Z]+(\d+)")


def row_hash(fields: Mapping[str, JSONValue]) -> str:
    """A row's content hash; blank cells are left out so a new empty column changes no row."""
    return content_hash({name: value for name, value in fields.items() if value is not None})


@dataclass
class SheetCursor:
    rows: dict[str, str]
    pending: dict[str, tuple[str, float]] = field(default_factory=dict)
    problems: frozenset[str] = frozenset()

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "pending": {k: [h, t] for k, (h, t) in self.pending.items()},
            "problems": sorted(self.problems),
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
        return cls(
            {str(k): str(v) for k, v in cursor["rows"].items()},
            pending,
            frozenset(map(str, cursor.get("problems") or [])),
        )


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


class SheetsConnector:
    """Streams are the worksheets of one spreadsheet, read and written through the Sheets API."""

    Settings: ClassVar[type[BaseModel]] = SheetsSettings

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
        previous = SheetCursor.from_json(cursor)
        table = self._load(stream)
        if self.settings.keys.get(stream) == SYNCD_ID:
            table = self._assign_ids(stream, table)
        elif not table.has_key_column:
            raise ConfigError(
                f"worksheet {stream!r} has no column {table.key_column!r} (its key column); "
                f"its headers are {', '.join(repr(h) for h in table.columns)}"
            )
        current, problems = self._scan(stream, table)
        out, rows, pending = self._changes(stream, previous, current)
        seen_problems = {content_hash([p.category, p.raw]) for p in problems}
        fresh = [p for p in problems if content_hash([p.category, p.raw]) not in previous.problems]
        size = self.settings.batch_size
        items: list[Record | ReadProblem] = [*out, *fresh]
        final = SheetCursor(rows, pending, frozenset(seen_problems)).to_json()
        for start in range(0, max(len(items), 1), size):
            chunk = items[start : start + size]
            yield Batch(
                records=[i for i in chunk if isinstance(i, Record)],
                cursor=final if start + size >= len(items) else None,
                problems=[i for i in chunk if isinstance(i, ReadProblem)],
            )

    def _scan(
        self, stream: str, table: SheetTable
    ) -> tuple[dict[str, tuple[str, dict[str, JSONValue]]], list[ReadProblem]]:
        """Every keyed row as (content hash, fields), and the rows that cannot be records."""
        formulas = frozenset(self.settings.formulas.get(stream, []))
        current: dict[str, tuple[str, dict[str, JSONValue]]] = {}
        first_place: dict[str, str] = {}
        problems: list[ReadProblem] = []
        for index, row in enumerate(table.rows):
            if table.is_blank(row):
                continue
            key = table.key_of(row)
            raw = json.dumps(row, ensure_ascii=False, default=str)
            if not key:
                message = f"the key column {table.key_column!r} is blank"
                problems.append(ReadProblem("bad-input", message, raw, None, table.place(index)))
            elif key in current:
                message = f"{table.key_column} {key!r} is also the key of the row at {first_place[key]}"
                problems.append(ReadProblem("duplicate", message, raw, key, table.place(index)))
            else:
                fields = table.fields_of(row, formulas)
                current[key] = (row_hash(fields), fields)
                first_place[key] = table.place(index)
        return current, problems

    def _changes(
        self, stream: str, previous: SheetCursor, current: dict[str, tuple[str, dict[str, JSONValue]]]
    ) -> tuple[list[Record], dict[str, str], dict[str, tuple[str, float]]]:
        """Records for rows new, changed or gone since `previous` and settled; the next cursor's parts."""
        modified = self.settings.modified.get(stream)
        settle = self.settings.settle_seconds
        now = self.clock()
        rows = dict(previous.rows)
        pending: dict[str, tuple[str, float]] = {}
        out: list[Record] = []

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

        for key, (digest, fields) in current.items():
            if previous.rows.get(key) == digest or not settled(key, digest):
                continue
            edited = parse_edit_time(fields.get(modified)) if modified else None
            out.append(Record(key=key, fields=fields, modified_at=edited))
            rows[key] = digest
        for key in previous.rows:
            if key not in current and settled(key, _DELETED):
                out.append(Record(key=key, fields={}, deleted=True))
                del rows[key]
        return out, rows, pending

    def write(self, stream: str, ops: Sequence[WriteOp]) -> list[WriteResult]:
        """Apply `ops` with one read of the keys and at most one batchUpdate plus one append.

        Rows are located by their key column at write time (never by a row number remembered from
        an earlier read), so rows a person inserted or moved meanwhile are still hit correctly.
        A delete clears the row's cells instead of removing the row: removing would shift every row
        below under anyone editing the sheet at that moment.
        """
        if not ops:
            return []
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
        return plan.results

    def find(self, stream: str, field_name: str, values: Collection[str]) -> dict[str, str]:
        """{value: key} of the first row whose `field_name` holds each value, from one read."""
        table = self._load(stream)
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

    def close(self) -> None:
        """Closes the HTTP session; safe to call twice."""
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
        try:
            value_range = self.client.batch_get([absolute_range_name(stream)])[0]
        except APIError as exc:
            status, message = api_message(exc)
            raise ConnectionDown(
                f"worksheet {stream!r} of the spreadsheet cannot be read: {status}: {message}"
            ) from None
        return SheetTable.parse(stream, value_range, self.settings.header_row, self.settings.keys.get(stream))

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
                cells[(number, column)] = new_id
        data = self._ranges(table, cells)
        if header is not None:
            data.insert(0, header)
        if data:
            self.client.batch_update_values(data, "RAW")
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
                for column in range(len(table.headers)):
                    self._set(table, plan, number, row, column, "", stream)
            return WriteResult(ok=True, key=op.key)
        if op.op is Op.UPDATE:
            row = index.get(op.key or "")
            if row is None:
                return _failure(
                    "not-found", "NOT_FOUND", f"no row of {stream!r} has {table.key_column} {op.key!r}"
                )
            self._set_fields(stream, table, plan, number, row, op.fields)
            return WriteResult(ok=True, key=op.key)
        row = self._match(table, index, op)
        if row is not None:
            self._set_fields(stream, table, plan, number, row, op.fields)
            return WriteResult(ok=True, key=table.key_of(table.rows[row]))
        return self._plan_new_row(stream, table, plan, number, op)

    def _match(self, table: SheetTable, index: dict[str, int], op: WriteOp) -> int | None:
        if op.key and op.key in index:
            return index[op.key]
        if op.match is not None:
            name, value = op.match
            if name == table.key_column:
                return index.get(cell_text(value))
            column = table.columns.get(name)
            if column is not None:
                wanted = cell_text(value)
                for number, row in enumerate(table.rows):
                    if wanted and cell_text(table.cell(row, column)) == wanted:
                        return number
        key = cell_text(op.fields.get(table.key_column))
        return index.get(key) if key else None

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
        for name, value in fields.items():
            self._set(
                table, plan, number, row, table.columns[name], self._cell_value(stream, name, value), stream
            )

    def _set(
        self,
        table: SheetTable,
        plan: _Plan,
        number: int,
        row: int,
        column: int,
        value: JSONValue,
        stream: str,
    ) -> None:
        if _same(table.cell(table.rows[row], column), value):
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

    @staticmethod
    def _ranges(table: SheetTable, cells: Mapping[tuple[int, int], JSONValue]) -> list[dict[str, Any]]:
        """Few ranges for many cells: each run of neighbouring rows becomes one block, `null` where a
        cell is left as it is (the API skips null), so untouched cells keep their content."""
        rows = sorted({r for r, _ in cells})
        data: list[dict[str, Any]] = []
        run: list[int] = []
        for row in [*rows, None]:
            if row is not None and (not run or row == run[-1] + 1):
                run.append(row)
                continue
            if run:
                cols = [c for (r, c) in cells if run[0] <= r <= run[-1]]
                first, last = min(cols), max(cols)
                values = [[cells.get((r, c)) for c in range(first, last + 1)] for r in run]
                data.append(
                    {
                        "range": table.range_a1(
                            table.sheet_row(run[0]), table.sheet_row(run[-1]), first, last
                        ),
                        "values": values,
                    }
                )
            run = [row] if row is not None else []
        return data

    def _send(
        self, stream: str, table: SheetTable, plan: _Plan, ops: Sequence[WriteOp], added: list[str]
    ) -> None:
        header: list[dict[str, Any]] = []
        if added:
            first = len(table.headers) - len(added)
            self._grow_columns(stream, table, len(table.headers))
            header = [
                {
                    "range": table.range_a1(
                        table.header_row, table.header_row, first, len(table.headers) - 1
                    ),
                    "values": [added],
                }
            ]
        data = [*header, *self._ranges(table, plan.cells)]
        if data:
            try:
                self.client.batch_update_values(data, "RAW")
            except APIError:
                self._send_one_by_one(table, plan, plan.cells, "RAW")
        if plan.new_rows:
            self._append(table, plan)
        if plan.typed_cells:
            try:
                self.client.batch_update_values(self._ranges(table, plan.typed_cells), "USER_ENTERED")
            except APIError:
                self._send_one_by_one(table, plan, plan.typed_cells, "USER_ENTERED")

    def _append(self, table: SheetTable, plan: _Plan) -> None:
        """One values.append for every new row; their typed cells join the USER_ENTERED call after it."""
        last = column_letter(max(len(table.headers) - 1, 0))
        target = absolute_range_name(table.title, f"A{table.header_row}:{last}")
        rows = [[v if v is not None else "" for v in r] for r in plan.new_rows.values()]
        try:
            answer = self.client.append(target, rows)
        except APIError as exc:
            status, message = api_message(exc)
            for numbers in plan.new_row_ops.values():
                for number in numbers:
                    plan.results[number] = _failure("validation", status, message)
            return
        m = _FIRST_ROW.search(str(answer.get("updates", {}).get("updatedRange", "")))
        if m is None:
            return
        first = int(m.group(1)) - table.header_row - 1
        for offset, key in enumerate(plan.new_rows):
            for column, value in plan.typed_new.get(key, {}).items():
                plan.typed_cells[(first + offset, column)] = value
                plan.owners[(first + offset, column)] = plan.new_row_ops[key][-1]

    def _send_one_by_one(
        self, table: SheetTable, plan: _Plan, cells: Mapping[tuple[int, int], JSONValue], option: str
    ) -> None:
        """The combined call was refused: send each op's cells alone so one bad record fails alone."""
        by_op: dict[int, dict[tuple[int, int], JSONValue]] = {}
        for place, value in cells.items():
            by_op.setdefault(plan.owners[place], {})[place] = value
        for number, own in by_op.items():
            try:
                self.client.batch_update_values(self._ranges(table, own), option)
            except APIError as exc:
                status, message = api_message(exc)
                plan.results[number] = _failure("validation", status, message)
