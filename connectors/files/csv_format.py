"""CSV files as tables: a folder of `<stream>.csv` files, or one file.

Untouched rows are written back as the exact text they were read from (quoting, line endings,
trailing spaces and all), so a sync shows up in a diff as the rows it changed and nothing else.
"""

from __future__ import annotations

import codecs
import csv
import io
import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from connectors.files.headers import column_names, key_column
from connectors.files.table import Row, Table
from syncd.cells import quote, unquote
from syncd.errors import ConfigError, ConfigProblem
from syncd.records import JSONValue

SUFFIX = ".csv"
DEFAULT_LINE_END = "\r\n"  # RFC 4180, and what Excel writes


class CsvCodec:
    """CSV cells are text: numbers and booleans are written in their plain spelling."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding

    def to_cell(self, value: JSONValue, formula: bool) -> Any:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int):
            return str(value)
        if isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError(f"{value!r} is not a number a file can hold")
            return str(int(value)) if value.is_integer() else repr(value)
        if not isinstance(value, str):
            raise ValueError(f"a {type(value).__name__} cannot be stored in a cell")
        if "\x00" in value:
            raise ValueError("text with a NUL character cannot be stored in a CSV file")
        try:
            value.encode(self.encoding)
        except UnicodeEncodeError as error:
            raise ValueError(
                f"{value[error.start : error.end]!r} cannot be written in {self.encoding}"
            ) from None
        return value if formula else quote(value)

    def from_cell(self, stored: Any, formula: bool) -> JSONValue:
        if stored is None or stored == "":
            return None
        text = str(stored)
        return text if formula else unquote(text)


def _records(text: str, delimiter: str) -> Iterator[tuple[list[str], str, int]]:
    """(cells, exact source text, first line number) of every CSV record, blank lines included."""
    consumed: list[str] = []

    def lines() -> Iterator[str]:
        for line in io.StringIO(text, newline=""):
            consumed.append(line)
            yield line

    reader = csv.reader(lines(), delimiter=delimiter)
    start = 1
    for cells in reader:
        yield cells, "".join(consumed), start
        consumed.clear()
        start = reader.line_num + 1


def _line_end(raw: str) -> str:
    for end in ("\r\n", "\n", "\r"):
        if raw.endswith(end):
            return end
    return DEFAULT_LINE_END


def _column_letter(index: int) -> str:
    return f"column {index + 1}"


class CsvDocument:
    def __init__(
        self,
        table: Table,
        label: str,
        delimiter: str,
        encoding: str,
        bom: bool,
        preamble: Sequence[str],
        header_cells: Sequence[str],
        header_raw: str | None,
    ) -> None:
        self.table = table
        self.label = label
        self.name = Path(label).name
        self.delimiter = delimiter
        self.encoding = encoding
        self.bom = bom
        self.preamble = list(preamble)
        self.header_cells = list(header_cells)
        self.header_raw = header_raw
        self.line_end = _line_end(header_raw) if header_raw else DEFAULT_LINE_END

    def place(self, row: Row) -> str:
        return f"{self.name}:{row.line}" if row.line is not None else self.name

    def raw(self, row: Row) -> str:
        return row.raw if row.raw is not None else self._format(row.cells)

    def _format(self, cells: Sequence[Any]) -> str:
        out = io.StringIO()
        csv.writer(out, delimiter=self.delimiter, lineterminator=self.line_end).writerow(cells)
        return out.getvalue()

    def render(self) -> bytes:
        pieces = list(self.preamble)
        if self.table.added_columns or self.header_raw is None:
            kept = self.header_cells[: len(self.table.columns) - len(self.table.added_columns)]
            pieces.append(self._format([*kept, *self.table.added_columns]))
        else:
            pieces.append(self.header_raw)
        for row in self.table.rows:
            if row.deleted:
                continue
            pieces.append(row.raw if row.raw is not None and not row.changed else self._format(row.cells))
        text = io.StringIO()
        previous = ""
        for piece in pieces:
            if previous and not previous.endswith(("\n", "\r")):
                text.write(self.line_end)  # the file's last line had no line end; rows now follow it
            text.write(piece)
            previous = piece or previous
        return self._encode(text.getvalue())

    def _encode(self, text: str) -> bytes:
        if codecs.lookup(self.encoding).name in ("utf-8", "utf-8-sig"):
            return (codecs.BOM_UTF8 if self.bom else b"") + text.encode("utf-8")
        return text.encode(self.encoding)


class CsvFormat:
    """A folder of CSV files (one stream per file), or a single CSV file (one stream)."""

    def __init__(
        self,
        root: Path,
        configured: Path,
        keys: Mapping[str, str],
        formulas: Mapping[str, Sequence[str]],
        encoding: str,
        delimiter: str,
        header_row: int,
    ) -> None:
        self.root = root
        self.configured = configured
        self.single = root.suffix.lower() == SUFFIX
        self.keys = keys
        self.formulas = formulas
        self.encoding = encoding
        self.delimiter = delimiter
        self.header_row = header_row

    def stream_names(self) -> list[str]:
        if self.single:
            return [self.root.stem] if self.root.is_file() else []
        if not self.root.is_dir():
            return []
        return sorted(p.stem for p in self.root.iterdir() if p.suffix.lower() == SUFFIX and p.is_file())

    def file_of(self, stream: str) -> Path:
        if self.single:
            if stream != self.root.stem:
                raise ConfigError(
                    f"{self.configured} holds only the stream {self.root.stem!r}, not {stream!r}"
                )
            return self.root
        if not stream or "/" in stream or "\\" in stream or stream.startswith("."):
            raise ConfigError(f"{stream!r} cannot name a CSV file in {self.configured}")
        return self.root / f"{stream}{SUFFIX}"

    def label(self, stream: str) -> str:
        return str(self.configured if self.single else self.configured / f"{stream}{SUFFIX}")

    def open(
        self, stream: str, data: bytes | None, *, new_key: str | None = None, editable: bool = False
    ) -> CsvDocument | None:
        label = self.label(stream)
        codec = CsvCodec("utf-8" if codecs.lookup(self.encoding).name == "utf-8-sig" else self.encoding)
        formulas = self.formulas.get(stream, [])
        text = self._decode(data or b"", label)
        preamble: list[str] = []
        header: tuple[list[str], str, int] | None = None
        rows: list[Row] = []
        for cells, raw, line in _records(text, self.delimiter):
            if header is None:
                if len(preamble) + 1 < self.header_row:
                    preamble.append(raw)
                else:
                    header = (cells, raw, line)
                continue
            rows.append(Row(cells=list(cells), origin=len(rows), line=line, raw=raw))
        names = column_names(header[0], label, header[2], _column_letter) if header else []
        if header and not names and any(not row.is_blank() for row in rows):
            raise ConfigError([ConfigProblem(label, header[2], None, "", "the header row is blank")])
        if names:
            key = key_column(names, self.keys.get(stream), label, header[2] if header else 1)
        elif new_key is not None:
            key = new_key
        else:
            return None
        table = Table(names, key, formulas, codec, rows)
        bom = data is not None and data.startswith(codecs.BOM_UTF8)
        return CsvDocument(
            table,
            label,
            self.delimiter,
            self.encoding,
            bom,
            preamble,
            header[0] if header else [],
            header[1] if header and names else None,
        )

    def _decode(self, data: bytes, label: str) -> str:
        try:
            return data.decode(self.encoding)
        except UnicodeDecodeError as error:
            raise ConfigError(
                [
                    ConfigProblem(
                        label,
                        None,
                        None,
                        "",
                        f"byte {error.start} is not valid {self.encoding} text; set `encoding:` for this "
                        "connection to the file's encoding",
                    )
                ]
            ) from None
