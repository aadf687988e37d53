"""The Sheets API v4 endpoints of the sandbox, as plain functions over a Spreadsheet.

Each function takes parsed inputs and returns the response JSON or raises ApiError with the status
and message the live API uses; HTTP, auth, quotas and faults live in `sheets.py`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from typing import Any

from syncd.sandbox import a1
from syncd.sandbox.sheets_model import Sheet, Spreadsheet
from syncd.sandbox.sheets_values import (
    KEEP,
    Cell,
    InvalidValue,
    formatted,
    from_raw,
    from_user_entered,
    render,
)

VALUE_RENDER = ("FORMATTED_VALUE", "UNFORMATTED_VALUE", "FORMULA")
DATE_RENDER = ("SERIAL_NUMBER", "FORMATTED_STRING")
INPUT_OPTIONS = ("RAW", "USER_ENTERED")


class ApiError(Exception):
    def __init__(self, code: int, message: str, status: str, details: list[Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.status, self.details = code, message, status, details

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message, "status": self.status}
        if self.details:
            error["details"] = self.details
        return {"error": error}


def bad_request(message: str) -> ApiError:
    return ApiError(400, message, "INVALID_ARGUMENT")


def invalid_value(field: str, value: Any, proto: str = "google.protobuf.ListValue") -> ApiError:
    shown = json.dumps(value) if not isinstance(value, str) else f'"{value}"'
    message = f"Invalid value at '{field}' (type.googleapis.com/{proto}), {shown}"
    return ApiError(
        400,
        message,
        "INVALID_ARGUMENT",
        [
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": field, "description": message}],
            }
        ],
    )


def choice(value: str | None, allowed: tuple[str, ...], default: str, name: str) -> str:
    if value is None:
        return default
    if value not in allowed:
        raise invalid_value(name, value, "google.apps.sheets.v4." + name)
    return value


# --- ranges ---------------------------------------------------------------------------------------


def resolve(book: Spreadsheet, text: str) -> tuple[Sheet, a1.Bounded]:
    """The sheet and closed range a client's A1 text designates in `book` (400 when it cannot)."""
    exact = book.sheet_by_title(text)
    if exact is not None and exact.title == text:
        return exact, a1.bound(a1.A1Range(exact.title), exact.title, exact.row_count, exact.col_count)
    try:
        rng = a1.parse_range(text)
    except a1.A1Error as exc:
        raise bad_request(str(exc)) from exc
    sheet: Sheet | None
    if rng.sheet is None and rng.name is not None:
        name = rng.name
        sheet = book.sheet_by_title(name)
        if sheet is not None:
            rng = a1.A1Range(sheet.title)
        else:
            named = _named_range(book, name, None)
            if named is None:
                raise bad_request(f"Unable to parse range: {text}")
            return named
    sheet = book.sheets[0] if rng.sheet is None else book.sheet_by_title(rng.sheet)
    if sheet is None:
        raise bad_request(f"Unable to parse range: {text}")
    if rng.name is not None:
        named = _named_range(book, rng.name, sheet)
        if named is None:
            raise bad_request(f"Unable to parse range: {text}")
        return named
    try:
        return sheet, a1.bound(rng, sheet.title, sheet.row_count, sheet.col_count)
    except a1.A1Error as exc:
        raise bad_request(str(exc)) from exc


def _named_range(book: Spreadsheet, name: str, sheet: Sheet | None) -> tuple[Sheet, a1.Bounded] | None:
    for entry in book.named_ranges:
        if entry["name"].lower() != name.lower():
            continue
        rng = entry["range"]
        target = book.sheet_by_id(int(rng.get("sheetId", 0)))
        if target is None or (sheet is not None and target is not sheet):
            continue
        return target, a1.Bounded(
            target.title,
            int(rng.get("startRowIndex", 0)),
            int(rng.get("endRowIndex", target.row_count)),
            int(rng.get("startColumnIndex", 0)),
            int(rng.get("endColumnIndex", target.col_count)),
        )
    return None


# --- reading --------------------------------------------------------------------------------------


def value_range(
    sheet: Sheet, b: a1.Bounded, major: str, value_render: str, date_render: str
) -> dict[str, Any]:
    """A ValueRange: trailing empty cells and rows trimmed, empty rows in between as []."""
    rows: list[list[Any]] = []
    if major == "COLUMNS":
        for c in range(b.start_col, b.end_col):
            rows.append(
                [
                    render(sheet.cell(r, c), value_render, date_render)
                    for r in range(b.start_row, min(b.end_row, len(sheet.rows)))
                ]
            )
    else:
        for r in range(b.start_row, min(b.end_row, len(sheet.rows))):
            cells = sheet.rows[r]
            rows.append(
                [
                    render(cells[c] if c < len(cells) else None, value_render, date_render)
                    for c in range(b.start_col, min(b.end_col, len(cells)))
                ]
            )
    for line in rows:
        while line and line[-1] == "":
            line.pop()
    while rows and not rows[-1]:
        rows.pop()
    out: dict[str, Any] = {"range": b.a1(), "majorDimension": major}
    if rows:
        out["values"] = rows
    return out


def values_get(book: Spreadsheet, text: str, params: dict[str, str | None]) -> dict[str, Any]:
    major = choice(params.get("majorDimension"), ("ROWS", "COLUMNS"), "ROWS", "majorDimension")
    value_render = choice(
        params.get("valueRenderOption"), VALUE_RENDER, "FORMATTED_VALUE", "valueRenderOption"
    )
    date_render = choice(
        params.get("dateTimeRenderOption"), DATE_RENDER, "SERIAL_NUMBER", "dateTimeRenderOption"
    )
    sheet, b = resolve(book, text)
    return value_range(sheet, b, major, value_render, date_render)


# --- writing --------------------------------------------------------------------------------------


def _matrix(values: Any, field: str, major: str) -> list[list[Any]]:
    if values is None:
        return []
    if not isinstance(values, list):
        raise invalid_value(field, values)
    for i, row in enumerate(values):
        if not isinstance(row, list):
            raise invalid_value(f"{field}[{i}]", row)
        for j, item in enumerate(row):
            if isinstance(item, dict | list):
                raise invalid_value(f"{field}[{i}][{j}]", item, "google.protobuf.Value")
    if major == "COLUMNS":
        width = max((len(r) for r in values), default=0)
        return [[col[i] if i < len(col) else None for col in values] for i in range(width)]
    return values


def _convert(matrix: list[list[Any]], option: str) -> list[list[Cell | object | None]]:
    parse = from_raw if option == "RAW" else from_user_entered
    try:
        return [[parse(v) for v in row] for row in matrix]
    except InvalidValue as exc:
        raise bad_request(f"Invalid values: {exc}") from exc


def write_block(sheet: Sheet, top: int, left: int, cells: list[list[Cell | object | None]]) -> dict[str, Any]:
    """Write converted cells from (top, left) and return the update counts the API reports."""
    touched_rows: set[int] = set()
    touched_cols: set[int] = set()
    count = 0
    width = max((len(r) for r in cells), default=0)
    for i, row in enumerate(cells):
        for j, cell in enumerate(row):
            if cell is KEEP:
                continue
            r, c = top + i, left + j
            old = sheet.cell(r, c)
            new: Cell | None = cell if isinstance(cell, Cell) or cell is None else None
            if old is not None:
                new = old.cleared() if new is None else old.with_content(new)
            sheet.put(r, c, new)
            touched_rows.add(r)
            touched_cols.add(c)
            count += 1
    rng = a1.Bounded(sheet.title, top, top + max(len(cells), 1), left, left + max(width, 1))
    result: dict[str, Any] = {"updatedRange": rng.a1()}
    if count:
        result.update(
            {"updatedRows": len(touched_rows), "updatedColumns": len(touched_cols), "updatedCells": count}
        )
    result["_cols"] = touched_cols
    result["_rows"] = touched_rows
    return result


def _check_fits(b: a1.Bounded, explicit: a1.A1Range | None, rows: int, cols: int) -> None:
    if explicit is None:
        return
    if explicit.end_row is not None and rows > b.rows:
        raise bad_request(
            f"Requested writing within range [{b.a1()}], but tried writing to row [{b.start_row + rows}]"
        )
    if explicit.end_col is not None and cols > b.cols:
        raise bad_request(
            f"Requested writing within range [{b.a1()}], but tried writing to column "
            f"[{a1.column_letters(b.start_col + cols - 1)}]"
        )


def check_grid(sheet: Sheet, top: int, left: int, rows: int, cols: int) -> None:
    """Refuse a write reaching past the grid, as the live API does: it never adds rows or columns
    for values.update (values.append adds rows), so clients must resize first."""
    last_row, last_col = top + max(rows, 1), left + max(cols, 1)
    if last_row > sheet.row_count or last_col > sheet.col_count:
        past = a1.Bounded(sheet.title, max(top, 0), last_row, max(left, 0), last_col)
        raise bad_request(
            f"Range ({past.a1()}) exceeds grid limits. Max rows: {sheet.row_count}, max columns: {sheet.col_count}"
        )


def _explicit(text: str) -> a1.A1Range | None:
    try:
        rng = a1.parse_range(text)
    except a1.A1Error:
        return None
    if rng.name is not None or rng.whole_sheet:
        return None
    single = rng.end_row is not None and rng.start_row is not None and rng.end_row - rng.start_row == 1
    if single and rng.end_col is not None and rng.start_col is not None and rng.end_col - rng.start_col == 1:
        return None  # one cell is where writing starts, not a bound
    return rng


def update(
    book: Spreadsheet,
    text: str,
    body: dict[str, Any],
    option: str | None,
    field: str = "data.values",
    include_values: bool = False,
    params: dict[str, str | None] | None = None,
) -> dict[str, Any]:
    if option is None or option == "INPUT_VALUE_OPTION_UNSPECIFIED":
        raise bad_request("Invalid valueInputOption: INPUT_VALUE_OPTION_UNSPECIFIED")
    option = choice(option, INPUT_OPTIONS, "RAW", "valueInputOption")
    major = choice(body.get("majorDimension"), ("ROWS", "COLUMNS"), "ROWS", "majorDimension")
    matrix = _matrix(body.get("values"), field, major)
    cells = _convert(matrix, option)
    rows, cols = len(cells), max((len(r) for r in cells), default=0)
    sheet, b = resolve(book, text)
    _check_fits(b, _explicit(text), rows, cols)
    check_grid(sheet, b.start_row, b.start_col, rows, cols)
    result = write_block(sheet, b.start_row, b.start_col, cells)
    out = {"spreadsheetId": book.id, **result}
    if include_values:
        written = a1.Bounded(
            sheet.title, b.start_row, b.start_row + max(rows, 1), b.start_col, b.start_col + max(cols, 1)
        )
        p = params or {}
        out["updatedData"] = value_range(
            sheet,
            written,
            major,
            p.get("responseValueRenderOption") or "FORMATTED_VALUE",
            p.get("responseDateTimeRenderOption") or "SERIAL_NUMBER",
        )
    return out


def public(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if not k.startswith("_")}


def batch_update_values(book: Spreadsheet, body: dict[str, Any]) -> dict[str, Any]:
    option = body.get("valueInputOption")
    data = body.get("data") or []
    if not isinstance(data, list):
        raise invalid_value("data", data)
    snapshot = book.snapshot()
    responses: list[dict[str, Any]] = []
    rows: set[tuple[str, int]] = set()
    cols: set[tuple[str, int]] = set()
    sheets: set[str] = set()
    total = 0
    try:
        for i, item in enumerate(data):
            if not isinstance(item, dict) or "range" not in item:
                raise bad_request(f"Invalid data[{i}]: range is required")
            result = update(
                book,
                str(item["range"]),
                item,
                option,
                field=f"data[{i}].values",
                include_values=_truthy(body.get("includeValuesInResponse")),
                params={
                    "responseValueRenderOption": body.get("responseValueRenderOption"),
                    "responseDateTimeRenderOption": body.get("responseDateTimeRenderOption"),
                },
            )
            title = result["updatedRange"].rsplit("!", 1)[0]
            rows.update((title, r) for r in result["_rows"])
            cols.update((title, c) for c in result["_cols"])
            if result.get("updatedCells"):
                sheets.add(title)
                total += result["updatedCells"]
            responses.append(public(result))
    except ApiError:
        book.restore(snapshot)
        raise
    out: dict[str, Any] = {"spreadsheetId": book.id}
    if total:
        out.update(
            {
                "totalUpdatedRows": len(rows),
                "totalUpdatedColumns": len(cols),
                "totalUpdatedCells": total,
                "totalUpdatedSheets": len(sheets),
            }
        )
    out["responses"] = responses
    return out


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _tables(sheet: Sheet, b: a1.Bounded) -> list[tuple[int, int, int, int]]:
    """Blocks of non-empty cells in `b` joined by shared edges, as (r0, r1, c0, c1), in reading order."""
    filled: set[tuple[int, int]] = set()
    for r in range(b.start_row, min(b.end_row, len(sheet.rows))):
        line = sheet.rows[r]
        for c in range(b.start_col, min(b.end_col, len(line))):
            cell = line[c]
            if cell is not None and cell.has_value:
                filled.add((r, c))
    seen: set[tuple[int, int]] = set()
    blocks = []
    for start in sorted(filled):
        if start in seen:
            continue
        stack, seen_here = [start], {start}
        while stack:
            r, c = stack.pop()
            for nxt in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
                if nxt in filled and nxt not in seen_here:
                    seen_here.add(nxt)
                    stack.append(nxt)
        seen |= seen_here
        rs = [p[0] for p in seen_here]
        cs = [p[1] for p in seen_here]
        blocks.append((min(rs), max(rs) + 1, min(cs), max(cs) + 1))
    return blocks


def append(
    book: Spreadsheet, text: str, body: dict[str, Any], params: dict[str, str | None]
) -> dict[str, Any]:
    """values.append: find the table in the range, write after its last row from its first column."""
    option = params.get("valueInputOption")
    if option is None:
        raise bad_request("Invalid valueInputOption: INPUT_VALUE_OPTION_UNSPECIFIED")
    option = choice(option, INPUT_OPTIONS, "RAW", "valueInputOption")
    insert = choice(
        params.get("insertDataOption"), ("OVERWRITE", "INSERT_ROWS"), "OVERWRITE", "insertDataOption"
    )
    major = choice(body.get("majorDimension"), ("ROWS", "COLUMNS"), "ROWS", "majorDimension")
    cells = _convert(_matrix(body.get("values"), "data.values", major), option)
    sheet, b = resolve(book, text)
    tables = _tables(sheet, b)
    out: dict[str, Any] = {"spreadsheetId": book.id}
    if tables:
        r0, r1, c0, c1 = tables[-1]
        out["tableRange"] = a1.Bounded(sheet.title, r0, r1, c0, c1).a1()
        top, left = r1, c0
    else:
        top, left = b.start_row, b.start_col
    rows, cols = len(cells), max((len(r) for r in cells), default=0)
    check_grid(sheet, top, left, 0, cols)  # append adds the rows it needs, never columns
    if insert == "INSERT_ROWS" and rows:
        sheet.insert("ROWS", top, rows)
    sheet.grow(top + rows, 0)
    result = write_block(sheet, top, left, cells)
    updates = {"spreadsheetId": book.id, **public(result)}
    if _truthy(params.get("includeValuesInResponse")):
        written = a1.Bounded(sheet.title, top, top + max(rows, 1), left, left + max(cols, 1))
        updates["updatedData"] = value_range(
            sheet,
            written,
            major,
            params.get("responseValueRenderOption") or "FORMATTED_VALUE",
            params.get("responseDateTimeRenderOption") or "SERIAL_NUMBER",
        )
    out["updates"] = updates
    return out


def clear(book: Spreadsheet, text: str) -> str:
    sheet, b = resolve(book, text)
    for r in range(b.start_row, min(b.end_row, len(sheet.rows))):
        for c in range(b.start_col, min(b.end_col, len(sheet.rows[r]))):
            old = sheet.cell(r, c)
            if old is not None:
                sheet.put(r, c, old.cleared())
    return b.a1()


# --- spreadsheets.get -----------------------------------------------------------------------------


def cell_data(cell: Cell | None) -> dict[str, Any]:
    if cell is None:
        return {}
    out: dict[str, Any] = {}
    if cell.has_value:
        if cell.formula is not None:
            out["userEnteredValue"] = {"formulaValue": cell.formula}
        else:
            out["userEnteredValue"] = _typed(cell.value)
        if cell.error is not None:
            out["effectiveValue"] = {"errorValue": {"type": "ERROR", "message": cell.error}}
        else:
            out["effectiveValue"] = _typed(cell.value)
        out["formattedValue"] = formatted(cell)
    if cell.fmt is not None:
        out["userEnteredFormat"] = json.loads(cell.fmt)
    if cell.note is not None:
        out["note"] = cell.note
    if cell.validation is not None:
        out["dataValidation"] = json.loads(cell.validation)
    return out


def _typed(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, float):
        return {"numberValue": int(value) if value == int(value) and abs(value) < 1e15 else value}
    return {"stringValue": "" if value is None else value}


def grid_data(sheet: Sheet, b: a1.Bounded) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if b.start_row:
        data["startRow"] = b.start_row
    if b.start_col:
        data["startColumn"] = b.start_col
    row_data = []
    for r in range(b.start_row, min(b.end_row, len(sheet.rows))):
        values = [cell_data(sheet.cell(r, c)) for c in range(b.start_col, b.end_col)]
        while values and values[-1] == {}:
            values.pop()
        row_data.append({"values": values} if values else {})
    while row_data and row_data[-1] == {}:
        row_data.pop()
    if row_data:
        data["rowData"] = row_data
    data["rowMetadata"] = [{"pixelSize": 21} for _ in range(b.rows)]
    data["columnMetadata"] = [
        {"hiddenByUser": True, "pixelSize": sheet.column_pixels.get(c, 100)}
        if c in sheet.hidden_columns
        else {"pixelSize": sheet.column_pixels.get(c, 100)}
        for c in range(b.start_col, b.end_col)
    ]
    return data


def sheet_json(sheet: Sheet, data: list[dict[str, Any]] | None) -> dict[str, Any]:
    out: dict[str, Any] = {"properties": copy.deepcopy(sheet.props)}
    if data is not None:
        out["data"] = data
    if sheet.merges:
        out["merges"] = copy.deepcopy(sheet.merges)
    if sheet.row_groups:
        out["rowGroups"] = copy.deepcopy(sheet.row_groups)
    if sheet.column_groups:
        out["columnGroups"] = copy.deepcopy(sheet.column_groups)
    return out


def spreadsheet_json(book: Spreadsheet, ranges: Iterable[str], with_data: bool) -> dict[str, Any]:
    wanted: dict[int, list[a1.Bounded]] = {}
    order: list[Sheet] = []
    for text in ranges:
        sheet, b = resolve(book, text)
        if sheet.sheet_id not in wanted:
            wanted[sheet.sheet_id] = []
            order.append(sheet)
        wanted[sheet.sheet_id].append(b)
    sheets = order if wanted else book.sheets
    out: dict[str, Any] = {"spreadsheetId": book.id, "properties": copy.deepcopy(book.properties)}
    out["sheets"] = []
    for sheet in sheets:
        data = None
        if with_data:
            blocks = wanted.get(sheet.sheet_id) or [
                a1.Bounded(sheet.title, 0, sheet.row_count, 0, sheet.col_count)
            ]
            data = [grid_data(sheet, b) for b in blocks]
        out["sheets"].append(sheet_json(sheet, data))
    if book.named_ranges:
        out["namedRanges"] = copy.deepcopy(book.named_ranges)
    out["spreadsheetUrl"] = f"https://docs.google.com/spreadsheets/d/{book.id}/edit"
    return out
