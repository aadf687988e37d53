"""Reading a CSV file record by record, in chunks, without ever holding the whole file.

Each record comes with its exact source text (a problem row is reported as the user wrote it;
an untouched row is written back byte for byte) and its byte span in the file, so a write can
copy everything around the rows it changes without parsing it, and find a row again by seeking.
The bytes are hashed as they go by, so the file hash a read checkpoints is of exactly the bytes
it parsed, even if the file changes while it reads.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from syncd.errors import ConfigError, ConfigProblem

CHUNK = 1 << 18
"""Bytes read at a time when scanning a whole file. A chunk is held as text and split into lines
while its rows are handed out, and a pass can have three scans open (the source read, the target's
row scan, the copy of a write), so 1 MiB chunks cost ~14 MB at the peak of a 1,000,000-row pass
and 256 KiB ones a quarter of that, at the same speed."""

SEEK_CHUNK = 1 << 13
"""Bytes read at a time when reading one row at a known offset."""


def body_encoding(encoding: str) -> str:
    """The codec of the text after any byte-order mark: utf-8-sig only differs at byte 0."""
    name = codecs.lookup(encoding).name
    return "utf-8" if name in ("utf-8-sig", "utf_8_sig") else name


@dataclass(slots=True)
class CsvRecord:
    """One CSV record: its cells, its text as written, its first line and its bytes [start, end)."""

    cells: list[str]
    raw: str
    line: int
    start: int
    end: int


class Digest(Protocol):
    def update(self, data: bytes, /) -> None: ...

    def hexdigest(self) -> str: ...


def file_digest() -> Digest:
    """The hash a read's cursor keeps of the whole file (the same as before files were streamed)."""
    return hashlib.blake2b(digest_size=16)


class Crc32:
    """A checksum five times faster than blake2b here, for telling that a file is still the bytes
    we wrote or scanned: it only has to catch accidents (a save the file's size and time missed),
    and a write copies the whole file each time, so its cost is paid on every byte of every copy."""

    __slots__ = ("_value",)

    def __init__(self) -> None:
        self._value = 0

    def update(self, data: bytes, /) -> None:
        self._value = zlib.crc32(data, self._value)

    def hexdigest(self) -> str:
        return f"{self._value:08x}"


class CsvScanner:
    """The records of a CSV file from byte `offset` on (0: the whole file, byte-order mark handled).

    Byte spans are measured by re-encoding each line, which is exact for every codec that decodes
    and encodes a text the same way; `offsets_exact` says, once the scan has reached the end of
    the file, whether the measured length matched the bytes read. Callers that rely on spans
    (writes, find) fall back to reading the whole file when it did not.
    """

    def __init__(
        self,
        stream: BinaryIO,
        encoding: str,
        delimiter: str,
        label: str,
        *,
        offset: int = 0,
        line: int = 1,
        chunk: int = CHUNK,
        digest: Callable[[], Digest] = file_digest,
    ) -> None:
        self._stream = stream
        self._encoding = encoding
        self._delimiter = delimiter
        self._label = label
        self._chunk = chunk
        self._first_line = line
        self._digest = digest()
        self._consumed = offset
        body = body_encoding(encoding)
        if offset == 0 and body != codecs.lookup(encoding).name:  # utf-8-sig: step over a BOM
            head = stream.read(len(codecs.BOM_UTF8))
            if head == codecs.BOM_UTF8:
                self._digest.update(head)
                self._consumed = len(head)
            else:
                stream.seek(0)
        self._decoder = codecs.getincrementaldecoder(body)()
        self._utf8 = body == "utf-8"
        self._encoder = codecs.getincrementalencoder(body)()
        self._position = self._consumed
        self.finished = False

    @property
    def position(self) -> int:
        """The byte offset just after the last record handed out (measured, see offsets_exact)."""
        return self._position

    def hexdigest(self) -> str:
        """The digest of the bytes read so far: of the whole file once the scan has finished."""
        return self._digest.hexdigest()

    @property
    def offsets_exact(self) -> bool:
        return self.finished and self._position == self._consumed

    def __iter__(self) -> Iterator[CsvRecord]:
        consumed: list[str] = []
        lengths = [0]
        measure = self._measure

        def lines() -> Iterator[str]:
            for text in self._lines():
                consumed.append(text)
                lengths[0] += measure(text)
                yield text

        reader = csv.reader(lines(), delimiter=self._delimiter)
        first = self._first_line
        try:
            for cells in reader:
                start = self._position
                self._position += lengths[0]
                lengths[0] = 0
                yield CsvRecord(cells, "".join(consumed), first, start, self._position)
                consumed.clear()
                first = self._first_line + reader.line_num
        except csv.Error as error:
            raise ConfigError(
                [ConfigProblem(self._label, first, None, "", f"not readable as CSV: {error}")]
            ) from None
        self.finished = True

    def _measure(self, text: str) -> int:
        if self._utf8 and text.isascii():
            return len(text)
        return len(self._encoder.encode(text))

    def _lines(self) -> Iterator[str]:
        """Lines with their ends kept, split as open(newline="") splits them (\\r\\n, \\n or \\r)."""
        decoder = self._decoder
        carry: list[str] = []
        while True:
            data = self._stream.read(self._chunk)
            final = not data
            self._digest.update(data)
            pending = _pending_bytes(decoder)
            try:
                text = decoder.decode(data, final)
            except UnicodeDecodeError as error:
                raise self._not_text(self._consumed - pending + error.start) from None
            self._consumed += len(data)
            if carry:
                carry.append(text)
                text = "".join(carry)
                carry.clear()
            if text:
                lines = io.StringIO(text, newline="").readlines()
                if not final and not lines[-1].endswith("\n"):  # unfinished, or \r that a \n may follow
                    carry.append(lines.pop())
                yield from lines
            if final:
                return

    def _not_text(self, position: int) -> ConfigError:
        return ConfigError(
            [
                ConfigProblem(
                    self._label,
                    None,
                    None,
                    "",
                    f"byte {position} is not valid {self._encoding} text; set `encoding:` for this "
                    "connection to the file's encoding",
                )
            ]
        )


def _pending_bytes(decoder: codecs.IncrementalDecoder) -> int:
    """Bytes the decoder holds back from earlier input (half a character), for error positions."""
    try:
        state = decoder.getstate()
    except (AttributeError, NotImplementedError):  # pragma: no cover - every stdlib codec has it
        return 0
    return len(state[0]) if isinstance(state, tuple) and isinstance(state[0], bytes) else 0


def record_at(stream: BinaryIO, offset: int, encoding: str, delimiter: str, label: str) -> CsvRecord | None:
    """The record starting at byte `offset` (a start a scan handed out), or None past the end."""
    stream.seek(offset)
    scanner = CsvScanner(stream, encoding, delimiter, label, offset=offset, chunk=SEEK_CHUNK, digest=Crc32)
    return next(iter(scanner), None)
