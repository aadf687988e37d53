"""A file's table in memory, and how write operations change it.

The table is format-agnostic: cells hold what the file stores (CSV text, XLSX cell values) and a
`CellCodec` of the file format translates between that and JSON values. Rows remember where they
came from and which cells changed, so the CSV and XLSX writers rewrite only what an op touched
and every other byte and cell of the file stays as the user left it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from syncd.records import JSONValue, Op, RecordFailure, WriteOp, WriteResult


class CellCodec(Protocol):
    """How one file format stores a JSON value in a cell, and reads it back."""

    def to_cell(self, value: JSONValue, formula: bool) -> Any:
        """The stored form of `value`; raises ValueError (message for the user) if it cannot be stored."""
        ...

    def from_cell(self, stored: Any, formula: bool) -> JSONValue: ...


@dataclass(eq=False, slots=True)
class Row:
    """One row of the table. `origin` is where it sits in the file (None for a row added by a write)."""

    cells: list[Any]
    origin: int | None = None
    line: int | None = None
    raw: str | None = None
    changed: set[int] = field(default_factory=set)
    deleted: bool = False

    def cell(self, index: int) -> Any:
        return self.cells[index] if index < len(self.cells) else None

    def is_blank(self) -> bool:
        return all(c is None or (isinstance(c, str) and not c.strip()) for c in self.cells)


def cell_text(value: JSONValue) -> str:
    """The text a key or match value is compared by: what a user sees in the cell, trimmed."""
    return "" if value is None else str(value).strip()


def _same(stored: Any, replacement: Any) -> bool:
    """Equal as cells: an empty string and a missing cell are both an empty cell."""
    if stored is None or stored == "":
        return replacement is None or replacement == ""
    return bool(type(stored) is type(replacement) and stored == replacement)


class _Refused(Exception):
    """Raised before a refused op touches the table, so the table holds only whole ops."""

    def __init__(self, category: str, code: str, message: str) -> None:
        super().__init__(message)
        self.failure = RecordFailure(category=category, code=code, message=message)


class Table:
    """Columns found by header name, rows found by the key column or any match column."""

    def __init__(
        self,
        columns: Sequence[str],
        key_column: str,
        formula_columns: Iterable[str],
        codec: CellCodec,
        rows: Iterable[Row] = (),
    ) -> None:
        self.columns = list(columns)
        self.added_columns: list[str] = []
        self.key_column = key_column
        self.formula_columns = frozenset(formula_columns)
        self.codec = codec
        self.rows = list(rows)
        self.changed = False
        self._positions = {name: i for i, name in enumerate(self.columns)}
        if key_column not in self._positions:
            self._add_column(key_column)
        self._key_index = self._positions[key_column]
        self._indexes: dict[int, dict[str, Row]] = {}
        self._counts: dict[int, dict[str, int]] = {}
        self._stale: set[int] = set()
        self.changed = False  # a key column added to a table not yet in a file is not a change by itself

    # reading

    def value(self, row: Row, index: int) -> JSONValue:
        return self.codec.from_cell(row.cell(index), self.columns[index] in self.formula_columns)

    def key_of(self, row: Row) -> str:
        return cell_text(self.value(row, self._key_index))

    def fields_of(self, row: Row) -> dict[str, JSONValue]:
        return {name: self.value(row, i) for i, name in enumerate(self.columns)}

    def live_rows(self) -> Iterator[Row]:
        return (row for row in self.rows if not row.deleted)

    def position(self, column: str) -> int | None:
        return self._positions.get(column)

    def find(self, column: str, value: str) -> Row | None:
        index = self._positions.get(column)
        if index is None:
            return None
        return self._index(index).get(cell_text(value))

    # writing

    def apply(self, op: WriteOp) -> WriteResult:
        """Apply one op, or refuse it without touching the table (so it never spoils the others)."""
        try:
            if op.op is Op.DELETE:
                return self._delete(op)
            if op.op is Op.UPDATE:
                return self._update(op)
            return self._create(op)
        except _Refused as refused:
            return WriteResult(ok=False, key=op.key, error=refused.failure)

    def _create(self, op: WriteOp) -> WriteResult:
        row = self._locate(op)
        if row is None and self.key_column in op.fields:
            row = self.find(self.key_column, cell_text(op.fields[self.key_column]))
        if row is not None:
            self._assign(row, self._prepare(row, op.fields))
            return WriteResult(ok=True, key=self.key_of(row), created=False)
        fields = dict(op.fields)
        if op.match is not None and op.match[0] not in fields:
            fields[op.match[0]] = op.match[1]
        if self.key_column not in fields and op.key is not None:
            fields[self.key_column] = op.key
        prepared = self._prepare(None, fields)
        row = Row(cells=[])
        self.rows.append(row)
        self._assign(row, prepared, new=True)
        return WriteResult(ok=True, key=self.key_of(row), created=True)

    def _update(self, op: WriteOp) -> WriteResult:
        row = self._locate(op)
        if row is None:
            wanted = op.key if op.key is not None else (op.match[1] if op.match else "")
            raise _Refused("not-found", "NOT_FOUND", f"no row with {self.key_column} = {wanted!r}")
        self._assign(row, self._prepare(row, op.fields))
        return WriteResult(ok=True, key=self.key_of(row))

    def _delete(self, op: WriteOp) -> WriteResult:
        row = self._locate(op)
        if row is None:
            return WriteResult(ok=True, key=op.key)
        key = self.key_of(row)
        self._unindex(row, range(len(self.columns)))
        row.deleted = True
        self.changed = True
        return WriteResult(ok=True, key=key)

    def _locate(self, op: WriteOp) -> Row | None:
        if op.match is not None:
            row = self.find(op.match[0], op.match[1])
            if row is not None:
                return row
        if op.key is not None:
            return self.find(self.key_column, op.key)
        return None

    def _prepare(self, row: Row | None, fields: Mapping[str, JSONValue]) -> dict[str, Any]:
        """Stored forms of every field, after checking the whole op can be applied."""
        stored: dict[str, Any] = {}
        for name, value in fields.items():
            if not isinstance(name, str) or not name.strip():
                raise _Refused(
                    "bad-input", "BAD_FIELD_NAME", f"field name {name!r} cannot be a column header"
                )
            try:
                stored[name.strip()] = self.codec.to_cell(value, name.strip() in self.formula_columns)
            except ValueError as error:
                raise _Refused("bad-input", "UNSUPPORTED_VALUE", f"{name}: {error}") from None
        if self.key_column in stored:
            formula = self.key_column in self.formula_columns
            new_key = cell_text(self.codec.from_cell(stored[self.key_column], formula))
        else:
            new_key = self.key_of(row) if row is not None else ""
        if not new_key:
            raise _Refused("bad-input", "BLANK_KEY", f"the key column {self.key_column!r} would be blank")
        holder = self.find(self.key_column, new_key)
        if holder is not None and holder is not row:
            raise _Refused(
                "duplicate", "DUPLICATE_KEY", f"another row already has {self.key_column} = {new_key!r}"
            )
        return stored

    def _assign(self, row: Row, stored: Mapping[str, Any], new: bool = False) -> None:
        targets = {self._position_or_add(name): value for name, value in stored.items()}
        touched = [i for i, value in targets.items() if new or not _same(row.cell(i), value)]
        if not touched and not new:
            return
        self._unindex(row, touched)
        width = max(touched, default=-1) + 1
        if len(row.cells) < width:
            row.cells.extend([None] * (width - len(row.cells)))
        for i in touched:
            row.cells[i] = targets[i]
            row.changed.add(i)
        self._reindex(row, touched)
        self.changed = True

    def _position_or_add(self, name: str) -> int:
        if name not in self._positions:
            self._add_column(name)
        return self._positions[name]

    def _add_column(self, name: str) -> None:
        self._positions[name] = len(self.columns)
        self.columns.append(name)
        self.added_columns.append(name)
        self.changed = True

    # indexes: built on first lookup of a column, kept current as rows change

    def _index(self, column: int) -> dict[str, Row]:
        if column not in self._indexes or column in self._stale:
            index: dict[str, Row] = {}
            counts: dict[str, int] = {}
            for row in self.live_rows():
                text = cell_text(self.value(row, column))
                if text:
                    index.setdefault(text, row)
                    counts[text] = counts.get(text, 0) + 1
            self._indexes[column], self._counts[column] = index, counts
            self._stale.discard(column)
        return self._indexes[column]

    def _unindex(self, row: Row, columns: Iterable[int]) -> None:
        for column in columns:
            if column not in self._indexes or column in self._stale:
                continue
            text = cell_text(self.value(row, column))
            if not text:
                continue
            counts = self._counts[column]
            counts[text] -= 1
            if counts[text] > 0:
                self._stale.add(column)  # a duplicate further down may now be the first
            else:
                del counts[text]
                if self._indexes[column].get(text) is row:
                    del self._indexes[column][text]

    def _reindex(self, row: Row, columns: Iterable[int]) -> None:
        for column in columns:
            if column not in self._indexes or column in self._stale:
                continue
            text = cell_text(self.value(row, column))
            if text:
                self._indexes[column].setdefault(text, row)
                self._counts[column][text] = self._counts[column].get(text, 0) + 1
