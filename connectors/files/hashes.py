"""64-bit hashes of cell text and a compact table of row numbers by hash.

A file of a million rows has no change log, so a read must remember every row it saw and a
write must find rows by key without re-reading the file. A dict of a million Python strings
costs ~150 MB; eight bytes of hash per row plus a half-full table of 4-byte row numbers cost ~16.
A hash only ever says "maybe": every caller confirms a hit against the real text, so a collision
costs one extra comparison and never merges two different rows.
"""

from __future__ import annotations

import base64
import hashlib
import sys
from array import array
from collections.abc import Iterator

NO_ROW = 0
"""An empty slot. Slots hold row number + 1, so row 0 is storable."""

MAX_ROWS = 2**32 - 2
"""Row numbers live in array('I'); a CSV file with four billion rows is not a spreadsheet."""

if array("Q").itemsize != 8 or array("I").itemsize != 4:  # pragma: no cover - exotic platforms
    raise ImportError("the files connector needs 8-byte array('Q') and 4-byte array('I')")


def text_hash(text: str) -> int:
    """The 64-bit hash a key or match value is indexed by; callers confirm a hit on the text."""
    return bytes_hash(text.encode("utf-8"))


def bytes_hash(data: bytes) -> int:
    """`text_hash` of text already encoded as UTF-8."""
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


def hex_hash(hex_digest: str) -> int:
    """The first 64 bits of a hex digest (a content_hash), as stored in the compact cursor."""
    return int(hex_digest[:16], 16)


def pack(values: array[int]) -> str:
    """An array as base64 of its little-endian bytes, so a cursor reads back on any machine."""
    if sys.byteorder == "big":  # pragma: no cover - no big-endian machine here
        values = array(values.typecode, values)
        values.byteswap()
    return base64.b64encode(memoryview(values)).decode("ascii")  # no intermediate copy of the array


def unpack(typecode: str, text: str) -> array[int]:
    """The inverse of `pack`; raises ValueError on text that is not one."""
    data = base64.b64decode(text.encode("ascii"), validate=True)
    values: array[int] = array(typecode)
    if len(data) % values.itemsize:
        raise ValueError("packed array has a partial item")
    values.frombytes(data)
    if sys.byteorder == "big":  # pragma: no cover
        values.byteswap()
    return values


class HashSlots:
    """Row numbers by 64-bit hash: open addressing with linear probing over array('I').

    `hashes` is the caller's array of each row's hash (shared, not copied), appended to in row
    order; `catch_up` indexes the rows added since. The table keeps itself at most half full.
    Rows with equal hashes all stay and come back in row order (nothing is ever removed, so a
    later row always sits further along the probe sequence), which callers rely on to find the
    first row that holds a value.
    """

    __slots__ = ("_count", "_mask", "_slots", "hashes")

    def __init__(self, hashes: array[int]) -> None:
        self.hashes = hashes
        self._slots: array[int] = array("I", [NO_ROW]) * 16
        self._mask = 15
        self._count = 0
        self.catch_up()

    def __len__(self) -> int:
        return self._count

    def catch_up(self) -> None:
        """Index every row of `hashes` not indexed yet."""
        total = len(self.hashes)
        if total > MAX_ROWS:
            raise OverflowError(f"more than {MAX_ROWS} rows")
        if 2 * total > len(self._slots):
            capacity = len(self._slots)
            while capacity < 2 * total:
                capacity *= 2
            self._slots = array("I")  # freed before its successor exists: no moment holding both
            self._slots = array("I", [NO_ROW]) * capacity  # nor a bytes object of the same size first
            self._mask = capacity - 1
            self._count = 0
        for row in range(self._count, total):
            self._insert(row)
        self._count = total

    def rows(self, hashed: int) -> Iterator[int]:
        """Rows whose hash is `hashed`, in row order."""
        slots, mask, hashes = self._slots, self._mask, self.hashes
        i = hashed & mask
        while True:
            stored = slots[i]
            if stored == NO_ROW:
                return
            if hashes[stored - 1] == hashed:
                yield stored - 1
            i = (i + 1) & mask

    def _insert(self, row: int) -> None:
        slots, mask = self._slots, self._mask
        i = self.hashes[row] & mask
        while slots[i] != NO_ROW:
            i = (i + 1) & mask
        slots[i] = row + 1
