"""CSV files as tables: a folder of `<stream>.csv` files, or one file.

Untouched rows are written back as the exact text they were read from (quoting, line endings,
trailing spaces and all), so a sync shows up in a diff as the rows it changed and nothing else.

Files of any size are read and written as streams (csv_stream.py, csv_index.py); the whole-file
`CsvDocument` here is only used for a file that has no header yet (so no rows either) and for an
encoding whose text cannot be cut at line ends and re-joined byte for byte (UTF-16, UTF-32).
"""

from __future__ import annotations

import codecs
import csv
import io
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from connectors.files.csv_stream import CsvRecord, CsvScanner, Digest, body_encoding, file_digest
from connectors.files.headers import column_names, key_column
from connectors.files.table import Row, Table, cell_text
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


def line_end_of(raw: str) -> str:
    for end in ("\r\n", "\n", "\r"):
        if raw.endswith(end):
            return end
    return DEFAULT_LINE_END


def _column_letter(index: int) -> str:
    return f"column {index + 1}"


def format_row(cells: Iterable[Any], delimiter: str, line_end: str) -> str:
    """One row as CSV text, quoted the way the csv module (and Excel) quotes."""
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator=line_end).writerow(cells)
    return out.getvalue()


def is_blank(cells: Sequence[str]) -> bool:
    return all(not c.strip() for c in cells)


def stream_safe(encoding: str) -> bool:
    """Whether text in `encoding` can be cut at line ends and re-joined byte for byte.

    True for UTF-8 and the single- and multi-byte codepages; false for UTF-16 and UTF-32, whose
    line ends are not the bytes of ASCII line ends and whose encoder writes a byte-order mark
    with every piece. Those files are read and rewritten whole.
    """
    sample = "Id,x\r\n"
    try:
        piece = sample.encode(body_encoding(encoding))
    except (UnicodeError, LookupError):
        return False
    return piece == sample.encode("ascii") and (sample * 2).encode(body_encoding(encoding)) == piece * 2


@dataclass(slots=True)
class CsvHeader:
    """The header row of a CSV file as found by a scan, and the column names it gives."""

    record: CsvRecord
    names: list[str]
    key: str | None

    @property
    def line_end(self) -> str:
        return line_end_of(self.record.raw)


class CsvColumns:
    """How the cells of a CSV row read as fields, given the header: what Table does, without rows."""

    def __init__(self, names: Sequence[str], key: str, formulas: Iterable[str], codec: CsvCodec) -> None:
        self.names = list(names)
        self.key = key
        self.codec = codec
        self.formulas = frozenset(formulas)
        self.positions = {name: i for i, name in enumerate(self.names)}
        self.key_index = self.positions[key]
        self._formula = [name in self.formulas for name in self.names]

    def text(self, cells: Sequence[str], index: int) -> str:
        """The trimmed text a key or match value is compared by, as Table.find compares it."""
        cell = cells[index] if index < len(cells) else None
        return cell_text(self.codec.from_cell(cell, self._formula[index]))

    def key_of(self, cells: Sequence[str]) -> str:
        return self.text(cells, self.key_index)

    def fields_of(self, cells: Sequence[str]) -> dict[str, JSONValue]:
        width, from_cell, formula = len(cells), self.codec.from_cell, self._formula
        return {
            name: from_cell(cells[i] if i < width else None, formula[i]) for i, name in enumerate(self.names)
        }


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
        self.line_end = line_end_of(header_raw) if header_raw else DEFAULT_LINE_END

    def place(self, row: Row) -> str:
        return f"{self.name}:{row.line}" if row.line is not None else self.name

    def raw(self, row: Row) -> str:
        return row.raw if row.raw is not None else self._format(row.cells)

    def _format(self, cells: Sequence[Any]) -> str:
        return format_row(cells, self.delimiter, self.line_end)

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

    # streaming (see csv_stream.py and csv_index.py)

    @property
    def streaming_writes(self) -> bool:
        """Whether writes and find may work on byte offsets instead of the whole file."""
        return stream_safe(self.encoding)

    def codec(self) -> CsvCodec:
        return CsvCodec("utf-8" if codecs.lookup(self.encoding).name == "utf-8-sig" else self.encoding)

    def scanner(self, stream: str, fh: BinaryIO, *, digest: Callable[[], Digest] = file_digest) -> CsvScanner:
        return CsvScanner(fh, self.encoding, self.delimiter, self.label(stream), digest=digest)

    def take_header(self, stream: str, records: Iterator[CsvRecord]) -> CsvHeader | None:
        """Consume the rows above the header and the header itself; None if the file ends first."""
        label = self.label(stream)
        for number, record in enumerate(records, start=1):
            if number == self.header_row:
                names = column_names(record.cells, label, record.line, _column_letter)
                key = key_column(names, self.keys.get(stream), label, record.line) if names else None
                return CsvHeader(record, names, key)
        return None

    def columns(self, stream: str, names: Sequence[str], key: str) -> CsvColumns:
        return CsvColumns(names, key, self.formulas.get(stream, []), self.codec())

    def blank_header(self, stream: str, header: CsvHeader) -> ConfigError:
        """A header row with no names above rows that hold something: nothing can be keyed."""
        return ConfigError(
            [ConfigProblem(self.label(stream), header.record.line, None, "", "the header row is blank")]
        )

    def open(
        self, stream: str, data: bytes | None, *, new_key: str | None = None, editable: bool = False
    ) -> CsvDocument | None:
        label = self.label(stream)
        codec = self.codec()
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
