"""The Sheets sandbox's state: spreadsheets (Drive files) made of sheets made of cells, and its JSON file.

Rows are kept as Python lists of immutable cells, only as long as their last used cell: the grid size
(`rowCount`/`columnCount`) is a separate property, as in Sheets, where a 1000x26 sheet holds no data
until written. A snapshot for an all-or-nothing batchUpdate is then a copy of the row lists.
"""

from __future__ import annotations

import copy
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from syncd.sandbox.sheets_values import Cell

SPREADSHEET_MIME = "application/vnd.google-apps.spreadsheet"

DEFAULT_FORMAT: dict[str, Any] = {
    "backgroundColor": {"red": 1, "green": 1, "blue": 1},
    "padding": {"top": 2, "right": 3, "bottom": 2, "left": 3},
    "verticalAlignment": "BOTTOM",
    "wrapStrategy": "OVERFLOW_CELL",
    "textFormat": {
        "foregroundColor": {},
        "fontFamily": "arial,sans,sans-serif",
        "fontSize": 10,
        "bold": False,
        "italic": False,
        "strikethrough": False,
        "underline": False,
        "foregroundColorStyle": {"rgbColor": {}},
    },
    "backgroundColorStyle": {"rgbColor": {"red": 1, "green": 1, "blue": 1}},
}

THEME: dict[str, Any] = {
    "primaryFontFamily": "Arial",
    "themeColors": [
        {"colorType": "TEXT", "color": {"rgbColor": {}}},
        {"colorType": "BACKGROUND", "color": {"rgbColor": {"red": 1, "green": 1, "blue": 1}}},
        {
            "colorType": "ACCENT1",
            "color": {"rgbColor": {"red": 0.25882354, "green": 0.52156866, "blue": 0.95686275}},
        },
        {
            "colorType": "ACCENT2",
            "color": {"rgbColor": {"red": 0.91764706, "green": 0.2627451, "blue": 0.20784314}},
        },
        {
            "colorType": "ACCENT3",
            "color": {"rgbColor": {"red": 0.9843137, "green": 0.7372549, "blue": 0.015686275}},
        },
        {
            "colorType": "ACCENT4",
            "color": {"rgbColor": {"red": 0.20392157, "green": 0.65882355, "blue": 0.3254902}},
        },
        {"colorType": "ACCENT5", "color": {"rgbColor": {"red": 1, "green": 0.42745098, "blue": 0.003921569}}},
        {
            "colorType": "ACCENT6",
            "color": {"rgbColor": {"red": 0.27450982, "green": 0.7411765, "blue": 0.7764706}},
        },
        {"colorType": "LINK", "color": {"rgbColor": {"red": 0.06666667, "green": 0.33333334, "blue": 0.8}}},
    ],
}


def new_file_id() -> str:
    """A Drive-style id: 44 URL-safe characters starting with 1."""
    return "1" + secrets.token_urlsafe(32)[:43]


def new_sheet_id() -> int:
    return secrets.randbelow(2_000_000_000) + 1


def rfc3339(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch * 1000) % 1000:03d}Z"


@dataclass
class Sheet:
    props: dict[str, Any]
    rows: list[list[Cell | None]] = field(default_factory=list)
    merges: list[dict[str, int]] = field(default_factory=list)
    row_groups: list[dict[str, Any]] = field(default_factory=list)
    column_groups: list[dict[str, Any]] = field(default_factory=list)
    column_pixels: dict[int, int] = field(default_factory=dict)
    hidden_columns: set[int] = field(default_factory=set)
    #: Last "human" edit per 0-based row (back-door edits only), seconds since the epoch.
    edited: dict[int, float] = field(default_factory=dict)

    @property
    def sheet_id(self) -> int:
        return int(self.props["sheetId"])

    @property
    def title(self) -> str:
        return str(self.props["title"])

    @property
    def row_count(self) -> int:
        return int(self.props["gridProperties"]["rowCount"])

    @property
    def col_count(self) -> int:
        return int(self.props["gridProperties"]["columnCount"])

    def grow(self, rows: int, cols: int) -> None:
        grid = self.props["gridProperties"]
        grid["rowCount"] = max(self.row_count, rows)
        grid["columnCount"] = max(self.col_count, cols)

    def cell(self, row: int, col: int) -> Cell | None:
        if row < len(self.rows):
            line = self.rows[row]
            if col < len(line):
                return line[col]
        return None

    def put(self, row: int, col: int, cell: Cell | None) -> None:
        if cell is None and self.cell(row, col) is None:
            return
        while len(self.rows) <= row:
            self.rows.append([])
        line = self.rows[row]
        while len(line) <= col:
            line.append(None)
        line[col] = cell

    def used_extent(self) -> tuple[int, int]:
        """(rows, cols) up to the last cell holding a value."""
        last_row, last_col = 0, 0
        for r, line in enumerate(self.rows):
            for c in range(len(line) - 1, -1, -1):
                cell = line[c]
                if cell is not None and cell.has_value:
                    last_row = r + 1
                    last_col = max(last_col, c + 1)
                    break
        return last_row, last_col

    def insert(self, dimension: str, start: int, count: int) -> None:
        if dimension == "ROWS":
            if start < len(self.rows):
                self.rows[start:start] = [[] for _ in range(count)]
            self.edited = {(r + count if r >= start else r): t for r, t in self.edited.items()}
            self.props["gridProperties"]["rowCount"] = self.row_count + count
        else:
            for line in self.rows:
                if start < len(line):
                    line[start:start] = [None] * count
            self.hidden_columns = {c + count if c >= start else c for c in self.hidden_columns}
            self.props["gridProperties"]["columnCount"] = self.col_count + count

    def delete(self, dimension: str, start: int, end: int) -> None:
        if dimension == "ROWS":
            del self.rows[start:end]
            count = end - start
            self.edited = {
                (r - count if r >= end else r): t for r, t in self.edited.items() if not start <= r < end
            }
            self.props["gridProperties"]["rowCount"] = self.row_count - count
        else:
            for line in self.rows:
                del line[start:end]
            self.hidden_columns = {
                c - (end - start) if c >= end else c for c in self.hidden_columns if not start <= c < end
            }
            self.props["gridProperties"]["columnCount"] = self.col_count - (end - start)

    def truncate(self) -> None:
        """Drop data outside the grid after a resize."""
        del self.rows[self.row_count :]
        for line in self.rows:
            del line[self.col_count :]

    def snapshot(self) -> Sheet:
        return Sheet(
            props=copy.deepcopy(self.props),
            rows=[line[:] for line in self.rows],
            merges=copy.deepcopy(self.merges),
            row_groups=copy.deepcopy(self.row_groups),
            column_groups=copy.deepcopy(self.column_groups),
            column_pixels=dict(self.column_pixels),
            hidden_columns=set(self.hidden_columns),
            edited=dict(self.edited),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "props": self.props,
            "rows": [[None if c is None else c.to_json() for c in line] for line in self.rows],
            "merges": self.merges,
            "row_groups": self.row_groups,
            "column_groups": self.column_groups,
            "column_pixels": {str(k): v for k, v in self.column_pixels.items()},
            "hidden_columns": sorted(self.hidden_columns),
        }

    @staticmethod
    def from_json(data: dict[str, Any]) -> Sheet:
        return Sheet(
            props=data["props"],
            rows=[[None if c is None else Cell.from_json(c) for c in line] for line in data["rows"]],
            merges=data.get("merges", []),
            row_groups=data.get("row_groups", []),
            column_groups=data.get("column_groups", []),
            column_pixels={int(k): v for k, v in data.get("column_pixels", {}).items()},
            hidden_columns=set(data.get("hidden_columns", [])),
        )


def new_sheet(title: str, index: int, sheet_id: int, rows: int = 1000, cols: int = 26) -> Sheet:
    return Sheet(
        props={
            "sheetId": sheet_id,
            "title": title,
            "index": index,
            "sheetType": "GRID",
            "gridProperties": {"rowCount": rows, "columnCount": cols},
        }
    )


@dataclass
class Spreadsheet:
    id: str
    properties: dict[str, Any]
    sheets: list[Sheet]
    named_ranges: list[dict[str, Any]] = field(default_factory=list)
    created: float = field(default_factory=time.time)
    modified: float = field(default_factory=time.time)
    #: Owned by another account: every call answers 403 PERMISSION_DENIED.
    private: bool = False

    @property
    def title(self) -> str:
        return str(self.properties["title"])

    def sheet_by_id(self, sheet_id: int) -> Sheet | None:
        return next((s for s in self.sheets if s.sheet_id == sheet_id), None)

    def sheet_by_title(self, title: str) -> Sheet | None:
        return next((s for s in self.sheets if s.title == title), None) or next(
            (s for s in self.sheets if s.title.lower() == title.lower()), None
        )

    def reindex(self) -> None:
        for i, sheet in enumerate(self.sheets):
            sheet.props["index"] = i

    def snapshot(self) -> Spreadsheet:
        return Spreadsheet(
            id=self.id,
            properties=copy.deepcopy(self.properties),
            sheets=[s.snapshot() for s in self.sheets],
            named_ranges=copy.deepcopy(self.named_ranges),
            created=self.created,
            modified=self.modified,
            private=self.private,
        )

    def restore(self, other: Spreadsheet) -> None:
        self.properties, self.sheets, self.named_ranges = other.properties, other.sheets, other.named_ranges

    def drive_file(self) -> dict[str, Any]:
        return {
            "kind": "drive#file",
            "id": self.id,
            "name": self.title,
            "mimeType": SPREADSHEET_MIME,
            "createdTime": rfc3339(self.created),
            "modifiedTime": rfc3339(self.modified),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "properties": self.properties,
            "sheets": [s.to_json() for s in self.sheets],
            "named_ranges": self.named_ranges,
            "created": self.created,
            "modified": self.modified,
            "private": self.private,
        }

    @staticmethod
    def from_json(data: dict[str, Any]) -> Spreadsheet:
        return Spreadsheet(
            id=data["id"],
            properties=data["properties"],
            sheets=[Sheet.from_json(s) for s in data["sheets"]],
            named_ranges=data.get("named_ranges", []),
            created=data.get("created", time.time()),
            modified=data.get("modified", time.time()),
            private=data.get("private", False),
        )


def new_spreadsheet(title: str, file_id: str | None = None) -> Spreadsheet:
    return Spreadsheet(
        id=file_id or new_file_id(),
        properties={
            "title": title,
            "locale": "en_US",
            "autoRecalc": "ON_CHANGE",
            "timeZone": "Etc/GMT",
            "defaultFormat": copy.deepcopy(DEFAULT_FORMAT),
            "spreadsheetTheme": copy.deepcopy(THEME),
        },
        sheets=[new_sheet("Sheet1", 0, 0)],
    )


class Store:
    """All spreadsheets, guarded by one lock; saved as JSON under `data_dir` when one is given.

    One lock for everything keeps each API call atomic, as it is on the real service; the sandbox is
    a test and demo vehicle, so its throughput is bounded by the client's quota anyway.
    """

    def __init__(self, path: Path | None) -> None:
        self.lock = threading.RLock()
        self.path = path
        self.files: dict[str, Spreadsheet] = {}
        if path is not None and path.exists():
            data = json.loads(path.read_text(encoding="utf-8"))
            for item in data.get("spreadsheets", []):
                sheet = Spreadsheet.from_json(item)
                self.files[sheet.id] = sheet

    def save(self) -> None:
        if self.path is None:
            return
        tmp = self.path.with_suffix(".tmp")
        payload = {"spreadsheets": [s.to_json() for s in self.files.values()]}
        tmp.write_text(json.dumps(payload), encoding="utf-8")
        os.replace(tmp, self.path)
