"""A worksheet read as a table: a header row naming the columns, one key column, rows below.

Columns are found by header name on every read, so a user who reorders or inserts columns between
passes breaks nothing; a header the table cannot be read with (a duplicate, or a blank one above
data) stops the stream with an error naming the cells, because guessing would write into the wrong
column.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from gspread.utils import absolute_range_name, rowcol_to_a1

from syncd.cells import unquote
from syncd.errors import ConfigError
from syncd.records import JSONValue, to_jsonable

_ECHO = re.compile(r"!([A-Z]+)(\d+)(?::([A-Z]+)(\d+))?$")


def column_letter(index: int) -> str:
    """0-based column index -> letters."""
    return rowcol_to_a1(1, index + 1)[:-1]


def cell_text(value: Any) -> str:
    """A cell value as the text a key is compared by ("1001" for the number 1001)."""
    value = to_jsonable(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    return str(value).strip()


def grid_size(echoed_range: str) -> tuple[int, int]:
    """(rows, columns) of a sheet from the range the API echoes for a whole-sheet read."""
    m = _ECHO.search(echoed_range)
    if not m or not m.group(3):
        return 1, 1
    end_col = 0
    for ch in m.group(3):
        end_col = end_col * 26 + ord(ch) - 64
    return int(m.group(4)), end_col


_pack = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode
_unpack = json.JSONDecoder().decode


class PackedRows:
    """A worksheet's rows, each kept as one compact JSON string and decoded when asked for.

    Parsed, a row of six short cells is a list and six str objects, ~500 bytes; packed it is one str
    of ~130. A write holds the whole worksheet to find its rows by key, so at 100,000 rows that is
    ~13 MB instead of ~55 MB. Decoding costs about what json.loads of the whole response cost, once
    per full scan. Rows handed out are copies: change one and put it back with `rows[i] = row`.
    """

    __slots__ = ("_packed",)

    def __init__(self, rows: Iterable[list[Any]] = ()) -> None:
        self._packed = [_pack(row) for row in rows]

    def __len__(self) -> int:
        return len(self._packed)

    def __getitem__(self, index: int) -> list[Any]:
        row: list[Any] = _unpack(self._packed[index])
        return row

    def __setitem__(self, index: int, row: list[Any]) -> None:
        self._packed[index] = _pack(row)

    def __iter__(self) -> Iterator[list[Any]]:
        for text in self._packed:
            row: list[Any] = _unpack(text)
            yield row

    def append(self, row: list[Any]) -> None:
        self._packed.append(_pack(row))


@dataclass
class SheetTable:
    title: str
    header_row: int
    headers: list[str]
    columns: dict[str, int]
    rows: PackedRows
    key_column: str
    row_count: int
    col_count: int

    @classmethod
    def parse(
        cls, title: str, value_range: Mapping[str, Any], header_row: int, key: str | None
    ) -> SheetTable:
        return cls.from_rows(
            title, iter(value_range.get("values", [])), str(value_range.get("range", "")), header_row, key
        )

    @classmethod
    def from_rows(
        cls, title: str, values: Iterator[list[Any]], echoed_range: str, header_row: int, key: str | None
    ) -> SheetTable:
        """The table of a worksheet's rows as they stream out of a response, packed one by one (see
        PackedRows), so the whole parsed worksheet never exists at once."""
        header_cells: list[Any] = []
        for number, row in enumerate(values, start=1):
            if number == header_row:
                header_cells = row
                break
        width = len(header_cells)
        data = PackedRows()
        for row in values:
            width = max(width, len(row))
            data.append(row)
        row_count, col_count = grid_size(str(echoed_range))
        headers = [cell_text(v) for v in header_cells]
        headers += [""] * (width - len(headers))
        columns: dict[str, int] = {}
        problems: list[str] = []
        for index, name in enumerate(headers):
            cell = f"{title}!{column_letter(index)}{header_row}"
            if not name:
                filled = next((i for i, r in enumerate(data) if index < len(r) and cell_text(r[index])), None)
                if filled is not None:
                    problems.append(
                        f"{cell} has no header but {column_letter(index)}{header_row + 1 + filled} holds data"
                    )
                continue
            if name in columns:
                first = f"{title}!{column_letter(columns[name])}{header_row}"
                problems.append(f"{first} and {cell} are both headed {name!r}")
                continue
            columns[name] = index
        if problems:
            raise ConfigError(f"worksheet {title!r} cannot be read as a table: " + "; ".join(problems))
        key_column = key or next((h for h in headers if h), "")
        return cls(title, header_row, headers, columns, data, key_column, row_count, col_count)

    @property
    def has_key_column(self) -> bool:
        return self.key_column in self.columns

    def sheet_row(self, index: int) -> int:
        """1-based sheet row of data row `index`."""
        return self.header_row + 1 + index

    def place(self, index: int) -> str:
        column = self.columns.get(self.key_column, 0)
        return f"{self.title}!{column_letter(column)}{self.sheet_row(index)}"

    def cell(self, row: list[Any], column: int) -> Any:
        return row[column] if column < len(row) else None

    def key_of(self, row: list[Any]) -> str:
        if not self.has_key_column:
            return ""
        return cell_text(self.cell(row, self.columns[self.key_column]))

    def is_blank(self, row: list[Any]) -> bool:
        return all(cell_text(v) == "" for v in row)

    def fields_of(self, row: list[Any], formula_columns: frozenset[str]) -> dict[str, JSONValue]:
        """A row's cells by header; blank is None. Written for speed: it runs for every row of a
        full read (100k rows here), and strings, the usual cell, need no conversion."""
        fields: dict[str, JSONValue] = {}
        width = len(row)
        for name, index in self.columns.items():
            value = row[index] if index < width else None
            if isinstance(value, str):
                if value == "":
                    fields[name] = None
                else:
                    fields[name] = value if name in formula_columns else unquote(value)
            else:
                fields[name] = to_jsonable(value)
        return fields

    def range_a1(self, first_row: int, last_row: int, first_col: int, last_col: int) -> str:
        """A1 range (1-based rows, 0-based columns), quoted with the sheet title."""
        cells = f"{column_letter(first_col)}{first_row}:{column_letter(last_col)}{last_row}"
        return absolute_range_name(self.title, cells)
