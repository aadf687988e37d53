"""An XLSX workbook as tables: one stream per worksheet.

Writes load the workbook fully (not read-only) and set only the cells an op changed, so other
sheets, formatting and untouched cells survive the save. Reads use openpyxl's streaming read-only
mode, which is several times lighter on memory for large sheets.

Unlike CSV files (streamed, see csv_index.py), a sheet is still held whole as a Table, for reads
and writes: openpyxl cannot change a saved workbook without loading all of it, and Excel caps a
worksheet at 1,048,576 rows, which bounds what this costs.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, MergedCell
from openpyxl.utils import get_column_letter

from connectors.files.headers import column_names, key_column
from connectors.files.table import Row, Table
from syncd.cells import quote, unquote
from syncd.errors import ConfigError, ConfigProblem
from syncd.records import JSONValue, to_jsonable

MAX_CELL_TEXT = 32_767  # Excel's limit; longer text is cut off when the file is opened
MAX_SHEET_TITLE = 31
FORBIDDEN_TITLE_CHARS = frozenset("[]:*?/\\")


class XlsxCodec:
    """Numbers and booleans are stored as such; text is always stored as text, never a formula."""

    def to_cell(self, value: JSONValue, formula: bool) -> Any:
        if value is None or value == "":
            return None
        if isinstance(value, bool | int):
            return value
        if isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError(f"{value!r} is not a number a workbook can hold")
            return int(value) if value.is_integer() else value  # 3.0 is saved as 3 and read back as int
        if not isinstance(value, str):
            raise ValueError(f"a {type(value).__name__} cannot be stored in a cell")
        if ILLEGAL_CHARACTERS_RE.search(value):
            raise ValueError("text with control characters cannot be stored in an XLSX cell")
        if len(value) > MAX_CELL_TEXT:
            raise ValueError(f"text of {len(value)} characters is longer than a cell holds ({MAX_CELL_TEXT})")
        return value if formula else quote(value)

    def from_cell(self, stored: Any, formula: bool) -> JSONValue:
        if stored is None or stored == "":
            return None
        if isinstance(stored, str):
            return stored if formula else unquote(stored)
        text = getattr(stored, "text", None)  # ArrayFormula, DataTableFormula
        if isinstance(text, str):
            return text
        return to_jsonable(stored)


def _cell_name(line: int) -> Callable[[int], str]:
    return lambda index: f"cell {get_column_letter(index + 1)}{line}"


class XlsxDocument:
    def __init__(
        self,
        table: Table,
        label: str,
        sheet: str,
        header_row: int,
        workbook: Any | None,
        original_width: int,
        last_used_row: int,
    ) -> None:
        self.table = table
        self.label = label
        self.sheet = sheet
        self.header_row = header_row
        self.workbook = workbook
        self.original_width = original_width
        self.last_used_row = last_used_row

    def place(self, row: Row) -> str:
        return f"{Path(self.label).name}:{row.line}"

    def raw(self, row: Row) -> str:
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerow(
            ["" if c is None else to_jsonable(self.table.codec.from_cell(c, True)) for c in row.cells]
        )
        return out.getvalue()

    def render(self) -> bytes:
        if self.workbook is None:
            raise RuntimeError("a document loaded for reading cannot be saved")
        sheet = self.workbook[self.sheet]
        for index in range(self.original_width, len(self.table.columns)):
            self._set(_writable(sheet, self.header_row, index + 1), self.table.columns[index], formula=False)
        next_free = self.last_used_row + 1
        for row in self.table.rows:
            if row.deleted or not row.changed:
                continue
            position = row.origin
            if position is None:
                position, next_free = next_free, next_free + 1
            for index in sorted(row.changed):
                formula = self.table.columns[index] in self.table.formula_columns
                self._set(_writable(sheet, position, index + 1), row.cells[index], formula)
        for start, count in _runs(sorted(r.origin for r in self.table.rows if r.deleted and r.origin)):
            sheet.delete_rows(start, count)
        out = io.BytesIO()
        self.workbook.save(out)
        return out.getvalue()

    @staticmethod
    def _set(cell: Any, value: Any, formula: bool) -> None:
        cell.value = value
        if isinstance(value, str) and not formula:
            cell.data_type = "s"  # openpyxl would store "=..." as a formula and "#N/A" as an error


def _writable(sheet: Any, row: int, column: int) -> Any:
    """The cell at (row, column), unmerging the merged range it lies inside first.

    Only the top-left cell of merged cells holds a value (the others read as empty, which is what
    syncd read), and openpyxl refuses to set the others: writing a different value per row there
    needs the range unmerged. Found by tests/badinput (a write into a merged cell crashed the pass).
    """
    cell = sheet.cell(row, column)
    if isinstance(cell, MergedCell):
        for merged in list(sheet.merged_cells.ranges):
            if cell.coordinate in merged:
                sheet.unmerge_cells(str(merged))
        cell = sheet.cell(row, column)
    return cell


def _runs(positions: Sequence[int]) -> list[tuple[int, int]]:
    """Consecutive positions as (start, count), bottom run first so deleting one keeps the others' numbers."""
    runs: list[tuple[int, int]] = []
    for position in positions:
        if runs and runs[-1][0] + runs[-1][1] == position:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((position, 1))
    return runs[::-1]


class XlsxFormat:
    def __init__(
        self,
        path: Path,
        configured: Path,
        keys: Mapping[str, str],
        formulas: Mapping[str, Sequence[str]],
        header_row: int,
    ) -> None:
        self.path = path
        self.configured = configured
        self.keys = keys
        self.formulas = formulas
        self.header_row = header_row

    def stream_names(self) -> list[str]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        workbook = self._load(data, read_only=True)
        try:
            return [sheet.title for sheet in workbook.worksheets]
        finally:
            workbook.close()

    def file_of(self, stream: str) -> Path:
        if not stream or len(stream) > MAX_SHEET_TITLE or FORBIDDEN_TITLE_CHARS & set(stream):
            raise ConfigError(f"{stream!r} cannot name a worksheet of {self.configured}")
        return self.path

    def label(self, stream: str) -> str:
        return f"{self.configured}[{stream}]"

    def open(
        self, stream: str, data: bytes | None, *, new_key: str | None = None, editable: bool = False
    ) -> XlsxDocument | None:
        if data is None:
            if new_key is None:
                return None
            workbook = Workbook()
            workbook.active.title = stream
        else:
            workbook = self._load(data, read_only=not editable)
        try:
            titles = [sheet.title for sheet in workbook.worksheets]
            if stream not in titles:
                if new_key is None:
                    return None
                workbook.create_sheet(stream)
            sheet = workbook[stream]
            return self._document(stream, sheet, workbook if editable else None, new_key)
        finally:
            if not editable:
                workbook.close()

    def _document(
        self, stream: str, sheet: Any, workbook: Any | None, new_key: str | None
    ) -> XlsxDocument | None:
        label = self.label(stream)
        header: Sequence[Any] = ()
        rows: list[Row] = []
        for number, values in enumerate(sheet.iter_rows(min_row=1, values_only=True), start=1):
            if number < self.header_row:
                continue
            if number == self.header_row:
                header = values
            else:
                rows.append(Row(cells=list(values), origin=number, line=number))
        names = column_names(header, label, self.header_row, _cell_name(self.header_row))
        if not names and any(not row.is_blank() for row in rows):
            raise ConfigError(
                [ConfigProblem(label, self.header_row, None, "", f"sheet {stream!r} has no header")]
            )
        if names:
            key = key_column(names, self.keys.get(stream), label, self.header_row)
        elif new_key is not None:
            key = new_key
        else:
            return None
        table = Table(names, key, self.formulas.get(stream, []), XlsxCodec(), rows)
        used = [row.origin for row in rows if row.origin is not None and not row.is_blank()]
        return XlsxDocument(
            table, label, stream, self.header_row, workbook, len(names), max(used, default=self.header_row)
        )

    def _load(self, data: bytes, read_only: bool) -> Any:
        try:
            return load_workbook(io.BytesIO(data), read_only=read_only, data_only=False)
        except Exception as error:  # openpyxl raises zipfile, KeyError, ValueError... for a bad file
            raise ConfigError(
                [
                    ConfigProblem(
                        str(self.configured), None, None, "", f"not a readable XLSX workbook: {error}"
                    )
                ]
            ) from None
