"""`spreadsheets.batchUpdate` request kinds in the Sheets sandbox.

Covered: the kinds gspread sends for worksheet management and for what the connector does (addSheet,
deleteSheet, updateSheetProperties, updateSpreadsheetProperties, insertDimension, deleteDimension,
appendDimension, updateCells, repeatCell) plus cheap ones the gspread recordings use (merges, named
ranges, dimension groups, autoResizeDimensions, copyPaste, cutPaste, setDataValidation). Anything else
is refused with the API's "Unknown name" error, never silently accepted.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

from syncd.sandbox.sheets_fields import FieldMaskError, FieldTree, parse_fields
from syncd.sandbox.sheets_model import Sheet, Spreadsheet, new_sheet, new_sheet_id
from syncd.sandbox.sheets_values import Cell, canonical_json, formula_cell


class RequestError(Exception):
    """A request the API refuses with 400 INVALID_ARGUMENT; the message is the API's wording."""


Handler = Callable[[Spreadsheet, dict[str, Any], str], dict[str, Any]]


def grid_range_out(rng: dict[str, Any]) -> dict[str, Any]:
    """A GridRange as the API returns it: proto3 drops `sheetId` when it is 0."""
    out = {k: v for k, v in rng.items() if k != "sheetId"}
    if rng.get("sheetId"):
        out = {"sheetId": rng["sheetId"], **out}
    return out


def _sheet(book: Spreadsheet, sheet_id: Any, where: str) -> Sheet:
    sheet = book.sheet_by_id(int(sheet_id or 0))
    if sheet is None:
        raise RequestError(f"Invalid {where}: No grid with id: {int(sheet_id or 0)}")
    return sheet


def _bounds(sheet: Sheet, rng: dict[str, Any], where: str) -> tuple[int, int, int, int]:
    r0 = int(rng.get("startRowIndex", 0))
    r1 = int(rng.get("endRowIndex", sheet.row_count))
    c0 = int(rng.get("startColumnIndex", 0))
    c1 = int(rng.get("endColumnIndex", sheet.col_count))
    if r0 < 0 or c0 < 0 or r1 < r0 or c1 < c0:
        raise RequestError(f"Invalid {where}: GridRange has invalid bounds")
    if r1 > sheet.row_count or c1 > sheet.col_count:
        raise RequestError(
            f"Invalid {where}: Range ({sheet.title}!R{r0 + 1}C{c0 + 1}:R{r1}C{c1}) exceeds grid limits. "
            f"Max rows: {sheet.row_count}, max columns: {sheet.col_count}"
        )
    return r0, r1, c0, c1


def _mask_paths(fields: str) -> list[list[str]]:
    """Each masked path of a `fields` value, e.g. "a.b,c(d,e)" -> [["a","b"], ["c","d"], ["c","e"]]."""
    try:
        tree = parse_fields(fields)
    except FieldMaskError as exc:
        raise RequestError(f"Invalid field mask: {fields}") from exc

    def walk(node: FieldTree, prefix: list[str]) -> list[list[str]]:
        out: list[list[str]] = []
        for key, sub in node.items():
            out.extend([[*prefix, key]] if sub is None else walk(sub, [*prefix, key]))
        return out

    return walk(tree, [])


def _apply_mask(target: dict[str, Any], source: dict[str, Any], fields: str) -> None:
    """Copy the masked fields of `source` onto `target`; a masked field absent from source is reset."""
    for path in _mask_paths(fields):
        if path == ["*"]:
            target.update(copy.deepcopy(source))
            continue
        src: Any = source
        dst = target
        for key in path[:-1]:
            src = src.get(key, {}) if isinstance(src, dict) else {}
            dst = dst.setdefault(key, {})
        leaf = path[-1]
        if isinstance(src, dict) and leaf in src:
            dst[leaf] = copy.deepcopy(src[leaf])
        else:
            dst.pop(leaf, None)


def add_sheet(book: Spreadsheet, req: dict[str, Any], where: str) -> dict[str, Any]:
    props = dict(req.get("properties", {}))
    title = props.get("title") or f"Sheet{len(book.sheets) + 1}"
    if book.sheet_by_title(title) is not None and book.sheet_by_title(title).title.lower() == title.lower():  # type: ignore[union-attr]
        raise RequestError(
            f'Invalid {where}: A sheet with the name "{title}" already exists. Please enter another name.'
        )
    sheet_id = int(props.get("sheetId", new_sheet_id()))
    if book.sheet_by_id(sheet_id) is not None:
        raise RequestError(f"Invalid {where}: A sheet with the id {sheet_id} already exists.")
    grid = props.get("gridProperties", {})
    index = min(int(props.get("index", len(book.sheets))), len(book.sheets))
    sheet = new_sheet(
        title, index, sheet_id, int(grid.get("rowCount", 1000)), int(grid.get("columnCount", 26))
    )
    for key in ("hidden", "tabColor", "rightToLeft"):
        if key in props:
            sheet.props[key] = props[key]
    book.sheets.insert(index, sheet)
    book.reindex()
    return {"addSheet": {"properties": copy.deepcopy(sheet.props)}}


def delete_sheet(book: Spreadsheet, req: dict[str, Any], where: str) -> dict[str, Any]:
    sheet = _sheet(book, req.get("sheetId"), where)
    if len(book.sheets) == 1:
        raise RequestError(f"Invalid {where}: You can't remove all the sheets in a document.")
    book.sheets.remove(sheet)
    book.reindex()
    book.named_ranges = [n for n in book.named_ranges if int(n["range"].get("sheetId", 0)) != sheet.sheet_id]
    return {}


def update_sheet_properties(book: Spreadsheet, req: dict[str, Any], where: str) -> dict[str, Any]:
    props = req.get("properties", {})
    sheet = _sheet(book, props.get("sheetId"), where)
    fields = req.get("fields", "")
    if not fields:
        raise RequestError(f"Invalid {where}: At least one field must be updated, but 'fields' is empty.")
    new_title = props.get("title")
    if new_title is not None and "title" in fields:
        other = book.sheet_by_title(new_title)
        if other is not None and other is not sheet and other.title.lower() == new_title.lower():
            raise RequestError(
                f'Invalid {where}: A sheet with the name "{new_title}" already exists. Please enter another name.'
            )
    before_index = sheet.props["index"]
    _apply_mask(sheet.props, props, fields)
    sheet.props["sheetId"] = sheet.sheet_id
    grid = sheet.props.setdefault("gridProperties", {})
    grid.setdefault("rowCount", 1000)
    grid.setdefault("columnCount", 26)
    if grid["rowCount"] < 1 or grid["columnCount"] < 1:
        raise RequestError(f"Invalid {where}: Sheets must have at least one row and one column.")
    for key in [k for k, v in grid.items() if k not in ("rowCount", "columnCount") and v in (0, False)]:
        grid.pop(key)  # proto3 leaves zero and false values out of responses
    if sheet.props.get("hidden") is False:
        sheet.props.pop("hidden")
    sheet.truncate()
    if "index" in sheet.props and sheet.props["index"] != before_index:
        target = max(0, min(int(sheet.props["index"]), len(book.sheets) - 1))
        book.sheets.remove(sheet)
        book.sheets.insert(target, sheet)
    sheet.props.setdefault("index", before_index)
    book.reindex()
    return {}


def update_spreadsheet_properties(book: Spreadsheet, req: dict[str, Any], where: str) -> dict[str, Any]:
    fields = req.get("fields", "")
    if not fields:
        raise RequestError(f"Invalid {where}: At least one field must be updated, but 'fields' is empty.")
    _apply_mask(book.properties, req.get("properties", {}), fields)
    return {}


def _dimension_range(book: Spreadsheet, rng: dict[str, Any], where: str) -> tuple[Sheet, str, int, int]:
    sheet = _sheet(book, rng.get("sheetId"), where)
    dimension = rng.get("dimension")
    if dimension not in ("ROWS", "COLUMNS"):
        raise RequestError(f"Invalid {where}: dimension must be ROWS or COLUMNS")
    limit = sheet.row_count if dimension == "ROWS" else sheet.col_count
    start = int(rng.get("startIndex", 0))
    end = int(rng.get("endIndex", limit))
    if start < 0 or end <= start:
        raise RequestError(f"Invalid {where}: Invalid dimension range: startIndex {start}, endIndex {end}")
    return sheet, dimension, start, end


def insert_dimension(book: Spreadsheet, req: dict[str, Any], where: str) -> dict[str, Any]:
    sheet, dimension, start, end = _dimension_range(book, req.get("range", {}), where)
    limit = sheet.row_count if dimension == "ROWS" else sheet.col_count
    if start > limit:
        raise RequestError(
            f"Invalid {where}: range start index ({start}) is after the end of the grid ({limit})"
        )
    if start == 0 and req.get("inheritFromBefore"):
        raise RequestError(f"Invalid {where}: Cannot inherit from before when inserting at index 0.")
    sheet.insert(dimension, start, end - start)
    return {}


def delete_dimension(book: Spreadsheet, req: dict[str, Any], where: str) -> dict[str, Any]:
    sheet, dimension, start, end = _dimension_range(book, req.get("range", {}), where)
    limit = sheet.row_count if dimension == "ROWS" else sheet.col_count
    if end > limit:
        raise RequestError(f"Invalid {where}: Range exceeds grid limits. Max {dimension.lower()}: {limit}")
    if end - start >= limit:
        raise RequestError(f"Invalid {where}: You can't delete all the {dimension.lower()} on the sheet.")
    sheet.delete(dimension, start, end)
    return {}


def append_dimension(book: Spreadsheet, req: dict[str, Any], where: str) -> dict[str, Any]:
    sheet = _sheet(book, req.get("sheetId"), where)
    length = int(req.get("length", 0))
    if length < 1:
        raise RequestError(f"Invalid {where}: length must be positive")
    if req.get("dimension") == "COLUMNS":
        sheet.grow(0, sheet.col_count + length)
    else:
        sheet.grow(sheet.row_count + length, 0)
    return {}


def _cell_from_data(data: dict[str, Any], old: Cell | None, fields: str) -> Cell | None:
    """Merge a CellData payload into a cell under an updateCells/repeatCell field mask."""
    paths = {p[0] for p in _mask_paths(fields)}
    everything = "*" in paths
    base = old or Cell()
    if everything or "userEnteredValue" in paths:
        uev = data.get("userEnteredValue") or {}
        if "formulaValue" in uev:
            content = formula_cell(str(uev["formulaValue"]))
        elif "numberValue" in uev:
            content = Cell(value=float(uev["numberValue"]))
        elif "boolValue" in uev:
            content = Cell(value=bool(uev["boolValue"]))
        elif "stringValue" in uev:
            content = Cell(value=str(uev["stringValue"])) if uev["stringValue"] != "" else Cell()
        else:
            content = Cell()
        base = Cell(
            value=content.value,
            formula=content.formula,
            error=content.error,
            note=base.note,
            fmt=base.fmt,
            validation=base.validation,
        )
    if everything or "note" in paths:
        note = data.get("note") or None
        base = Cell(base.value, base.formula, base.error, base.pattern, note, base.fmt, base.validation)
    if everything or "userEnteredFormat" in paths:
        fmt = data.get("userEnteredFormat")
        stored = canonical_json(_with_styles(fmt)) if fmt else None
        base = Cell(base.value, base.formula, base.error, base.pattern, base.note, stored, base.validation)
    if everything or "dataValidation" in paths:
        rule = data.get("dataValidation")
        base = Cell(
            base.value,
            base.formula,
            base.error,
            base.pattern,
            base.note,
            base.fmt,
            canonical_json(rule) if rule else None,
        )
    return None if base.empty else base


def _with_styles(fmt: dict[str, Any]) -> dict[str, Any]:
    """Add the `...Style` twins the API echoes next to plain colours."""
    out = copy.deepcopy(fmt)
    if "backgroundColor" in out:
        out["backgroundColorStyle"] = {"rgbColor": out["backgroundColor"]}
    text = out.get("textFormat")
    if isinstance(text, dict) and "foregroundColor" in text:
        text["foregroundColorStyle"] = {"rgbColor": text["foregroundColor"]}
    return out


def update_cells(book: Spreadsheet, req: dict[str, Any], where: str) -> dict[str, Any]:
    fields = req.get("fields", "")
    if not fields:
        raise RequestError(f"Invalid {where}: At least one field must be updated, but 'fields' is empty.")
    if "range" in req:
        sheet = _sheet(book, req["range"].get("sheetId"), where)
        r0, r1, c0, c1 = _bounds(sheet, req["range"], where)
    else:
        start = req.get("start", {})
        sheet = _sheet(book, start.get("sheetId"), where)
        r0, c0 = int(start.get("rowIndex", 0)), int(start.get("columnIndex", 0))
        r1, c1 = sheet.row_count, sheet.col_count
    rows = req.get("rows", [])
    for i, row in enumerate(rows):
        r = r0 + i
        if r >= r1:
            break
        for j, data in enumerate(row.get("values", [])):
            c = c0 + j
            if c >= c1:
                break
            sheet.put(r, c, _cell_from_data(data, sheet.cell(r, c), fields))
    return {}


def repeat_cell(book: Spreadsheet, req: dict[str, Any], where: str) -> dict[str, Any]:
    rng = req.get("range", {})
    sheet = _sheet(book, rng.get("sheetId"), where)
    r0, r1, c0, c1 = _bounds(sheet, rng, where)
    fields = req.get("fields", "")
    data = req.get("cell", {})
    for r in range(r0, r1):
        for c in range(c0, c1):
            sheet.put(r, c, _cell_from_data(data, sheet.cell(r, c), fields))
    return {}


def merge_cells(book: Spreadsheet, req: dict[str, Any], where: str) -> dict[str, Any]:
    rng = req.get("range", {})
    sheet = _sheet(book, rng.get("sheetId"), where)
    r0, r1, c0, c1 = _bounds(sheet, rng, where)
    kind = req.get("mergeType", "MERGE_ALL")
    blocks: list[tuple[int, int, int, int]]
    if kind == "MERGE_ROWS":
        blocks = [(r, r + 1, c0, c1) for r in range(r0, r1)]
    elif kind == "MERGE_COLUMNS":
        blocks = [(r0, r1, c, c + 1) for c in range(c0, c1)]
    else:
        blocks = [(r0, r1, c0, c1)]
    for a, b, c, d in blocks:
        # A new merge replaces the merges it overlaps, as re-merging in the UI does.
        sheet.merges = [
            m
            for m in sheet.merges
            if not (
                a < m["endRowIndex"]
                and m["startRowIndex"] < b
                and c < m["endColumnIndex"]
                and m["startColumnIndex"] < d
            )
        ]
        for r in range(a, b):
            for col in range(c, d):
                if (r, col) != (a, c):
                    old = sheet.cell(r, col)
                    sheet.put(r, col, old.cleared() if old else None)
        sheet.merges.append(
            {"startRowIndex": a, "endRowIndex": b, "startColumnIndex": c, "endColumnIndex": d}
        )
    return {}


def unmerge_cells(book: Spreadsheet, req: dict[str, Any], where: str) -> dict[str, Any]:
    rng = req.get("range", {})
    sheet = _sheet(book, rng.get("sheetId"), where)
    r0, r1, c0, c1 = _bounds(sheet, rng, where)
    sheet.merges = [
        m
        for m in sheet.merges
        if not (
            r0 <= m["startRowIndex"]
            and m["endRowIndex"] <= r1
            and c0 <= m["startColumnIndex"]
            and m["endColumnIndex"] <= c1
        )
    ]
    return {}


def add_named_range(book: Spreadsheet, req: dict[str, Any], where: str) -> dict[str, Any]:
    named = dict(req.get("namedRange", {}))
    name = str(named.get("name", ""))
    if not name or any(n["name"].lower() == name.lower() for n in book.named_ranges):
        raise RequestError(f"Invalid {where}: Named range with name {name!r} already exists or is invalid.")
    rng = named.get("range", {})
    sheet = _sheet(book, rng.get("sheetId"), where)
    _bounds(sheet, rng, where)
    entry = {"namedRangeId": str(new_sheet_id()), "name": name, "range": grid_range_out(rng)}
    book.named_ranges.append(entry)
    return {"addNamedRange": {"namedRange": copy.deepcopy(entry)}}


def _named(book: Spreadsheet, named_id: Any, where: str) -> dict[str, Any]:
    for entry in book.named_ranges:
        if entry["namedRangeId"] == str(named_id):
            return entry
    raise RequestError(f"Invalid {where}: No named range with id {named_id}.")


def update_named_range(book: Spreadsheet, req: dict[str, Any], where: str) -> dict[str, Any]:
    named = req.get("namedRange", {})
    entry = _named(book, named.get("namedRangeId"), where)
    fields = req.get("fields", "")
    update = copy.deepcopy(named)
    if "range" in update:
        update["range"] = grid_range_out(update["range"])
    _apply_mask(entry, update, fields)
    return {}


def delete_named_range(book: Spreadsheet, req: dict[str, Any], where: str) -> dict[str, Any]:
    entry = _named(book, req.get("namedRangeId"), where)
    book.named_ranges.remove(entry)
    return {}


def _groups(sheet: Sheet, dimension: str) -> list[dict[str, Any]]:
    return sheet.row_groups if dimension == "ROWS" else sheet.column_groups


def add_dimension_group(book: Spreadsheet, req: dict[str, Any], where: str) -> dict[str, Any]:
    sheet, dimension, start, end = _dimension_range(book, req.get("range", {}), where)
    groups = _groups(sheet, dimension)
    groups.append({"range": {"dimension": dimension, "startIndex": start, "endIndex": end}, "depth": 1})
    flag = "rowGroupControlAfter" if dimension == "ROWS" else "columnGroupControlAfter"
    sheet.props["gridProperties"][flag] = True
    return {"addDimensionGroup": {"dimensionGroups": copy.deepcopy(groups)}}


def delete_dimension_group(book: Spreadsheet, req: dict[str, Any], where: str) -> dict[str, Any]:
    sheet, dimension, start, end = _dimension_range(book, req.get("range", {}), where)
    groups = _groups(sheet, dimension)
    match = [g for g in groups if g["range"]["startIndex"] == start and g["range"]["endIndex"] == end]
    if not match:
        raise RequestError(f"Invalid {where}: No dimension group found for the range.")
    groups.remove(match[0])
    return {"deleteDimensionGroup": {"dimensionGroups": copy.deepcopy(groups)} if groups else {}}


def auto_resize_dimensions(book: Spreadsheet, req: dict[str, Any], where: str) -> dict[str, Any]:
    sheet, dimension, start, end = _dimension_range(book, req.get("dimensions", {}), where)
    if dimension == "COLUMNS":
        for c in range(start, end):
            widest = max(
                (
                    len(str(cell.value))
                    for line in sheet.rows
                    if c < len(line) and (cell := line[c]) is not None
                ),
                default=0,
            )
            # About 7 pixels per character of 10pt Arial plus the cell padding, as Sheets sizes it.
            sheet.column_pixels[c] = max(100, widest * 7 + 9) if widest else 100
    return {}


def update_dimension_properties(book: Spreadsheet, req: dict[str, Any], where: str) -> dict[str, Any]:
    """Column widths and hiding (what the connector uses to hide its `syncd id` column); row sizes are
    accepted and not kept, since nothing reads them back."""
    sheet, dimension, start, end = _dimension_range(book, req.get("range", {}), where)
    fields = req.get("fields", "")
    if not fields:
        raise RequestError(f"Invalid {where}: At least one field must be updated, but 'fields' is empty.")
    props = req.get("properties", {})
    paths = {p[0] for p in _mask_paths(fields)}
    if dimension == "COLUMNS":
        for c in range(start, end):
            if "hiddenByUser" in paths or "*" in paths:
                if props.get("hiddenByUser"):
                    sheet.hidden_columns.add(c)
                else:
                    sheet.hidden_columns.discard(c)
            if ("pixelSize" in paths or "*" in paths) and "pixelSize" in props:
                sheet.column_pixels[c] = int(props["pixelSize"])
    return {}


def _copy_block(sheet: Sheet, r0: int, r1: int, c0: int, c1: int) -> list[list[Cell | None]]:
    return [[sheet.cell(r, c) for c in range(c0, c1)] for r in range(r0, r1)]


def copy_paste(book: Spreadsheet, req: dict[str, Any], where: str) -> dict[str, Any]:
    src = req.get("source", {})
    dst = req.get("destination", {})
    s_sheet = _sheet(book, src.get("sheetId"), where)
    d_sheet = _sheet(book, dst.get("sheetId"), where)
    r0, r1, c0, c1 = _bounds(s_sheet, src, where)
    block = _copy_block(s_sheet, r0, r1, c0, c1)
    dr0, _, dc0, _ = _bounds(d_sheet, dst, where)
    for i, line in enumerate(block):
        for j, cell in enumerate(line):
            d_sheet.put(dr0 + i, dc0 + j, cell)
    return {}


def cut_paste(book: Spreadsheet, req: dict[str, Any], where: str) -> dict[str, Any]:
    src = req.get("source", {})
    dst = req.get("destination", {})
    s_sheet = _sheet(book, src.get("sheetId"), where)
    d_sheet = _sheet(book, dst.get("sheetId"), where)
    r0, r1, c0, c1 = _bounds(s_sheet, src, where)
    block = _copy_block(s_sheet, r0, r1, c0, c1)
    for r in range(r0, r1):
        for c in range(c0, c1):
            s_sheet.put(r, c, None)
    dr0, dc0 = int(dst.get("rowIndex", 0)), int(dst.get("columnIndex", 0))
    d_sheet.grow(dr0 + len(block), dc0 + (c1 - c0))
    for i, line in enumerate(block):
        for j, cell in enumerate(line):
            d_sheet.put(dr0 + i, dc0 + j, cell)
    return {}


def set_data_validation(book: Spreadsheet, req: dict[str, Any], where: str) -> dict[str, Any]:
    rng = req.get("range", {})
    sheet = _sheet(book, rng.get("sheetId"), where)
    r0, r1, c0, c1 = _bounds(sheet, rng, where)
    rule = req.get("rule")
    for r in range(r0, r1):
        for c in range(c0, c1):
            old = sheet.cell(r, c) or Cell()
            sheet.put(
                r,
                c,
                Cell(
                    old.value,
                    old.formula,
                    old.error,
                    old.pattern,
                    old.note,
                    old.fmt,
                    json.dumps(rule, sort_keys=True) if rule else None,
                ),
            )
    return {}


HANDLERS: dict[str, Handler] = {
    "addSheet": add_sheet,
    "deleteSheet": delete_sheet,
    "updateSheetProperties": update_sheet_properties,
    "updateSpreadsheetProperties": update_spreadsheet_properties,
    "insertDimension": insert_dimension,
    "deleteDimension": delete_dimension,
    "appendDimension": append_dimension,
    "updateCells": update_cells,
    "repeatCell": repeat_cell,
    "mergeCells": merge_cells,
    "unmergeCells": unmerge_cells,
    "addNamedRange": add_named_range,
    "updateNamedRange": update_named_range,
    "deleteNamedRange": delete_named_range,
    "addDimensionGroup": add_dimension_group,
    "deleteDimensionGroup": delete_dimension_group,
    "autoResizeDimensions": auto_resize_dimensions,
    "updateDimensionProperties": update_dimension_properties,
    "copyPaste": copy_paste,
    "cutPaste": cut_paste,
    "setDataValidation": set_data_validation,
}


def apply_requests(book: Spreadsheet, requests: list[Any]) -> list[dict[str, Any]]:
    """Apply all requests or none: on the first refusal the spreadsheet is restored and the error raised."""
    snapshot = book.snapshot()
    replies: list[dict[str, Any]] = []
    try:
        for i, request in enumerate(requests):
            if not isinstance(request, dict) or len(request) != 1:
                raise RequestError(f"Invalid requests[{i}]: exactly one request kind must be set.")
            ((kind, body),) = request.items()
            handler = HANDLERS.get(kind)
            if handler is None:
                raise UnknownRequest(kind, i)
            replies.append(handler(book, body or {}, f"requests[{i}].{kind}"))
    except Exception:
        book.restore(snapshot)
        raise
    return replies


class UnknownRequest(RequestError):
    def __init__(self, kind: str, index: int) -> None:
        super().__init__(
            f"Invalid JSON payload received. Unknown name \"{kind}\" at 'requests[{index}]': Cannot find field."
        )
