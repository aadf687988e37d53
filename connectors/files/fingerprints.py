"""What a read saw of each row, small enough to keep a million rows in a JSON cursor.

A file has no change log, so the cursor remembers every row: its key and a hash of its content.
In memory that is, per row, an 8-byte key hash, an 8-byte content hash, the key's UTF-8 text
(needed to report a row that disappeared) and where that text starts, in file order: ~35 bytes
plus a half-full table of 4-byte row numbers, where a dict of strings took ~200. The cursor keeps
only the content hashes and the keys (deflated), in base64: ~15-30 bytes a row depending on how
alike the keys are, against ~60 for the first format ({"rows": {key: hex hash}}), which is still
read because journals hold it. Key hashes are worked out again when a cursor is loaded.

Row hashes are the first 64 bits of the same content hash the first format stored, so a cursor
of either format compares equal for an unchanged row. Two different contents of one row hashing
alike (a missed change) has odds of 2**-64; keys are always compared as text, never by hash alone.
"""

from __future__ import annotations

import base64
import zlib
from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from connectors.files.hashes import HashSlots, bytes_hash, hex_hash, pack, text_hash, unpack

FORMAT = 2
KEY_END = b"\xff"
"""Ends each key in the keys blob: a byte UTF-8 never contains, so no key can hold it."""


@dataclass(slots=True)
class Fingerprints:
    """Rows in file order: key hash, row hash and key text of each, findable by key."""

    key_hashes: array[int] = field(default_factory=lambda: array("Q"))
    row_hashes: array[int] = field(default_factory=lambda: array("Q"))
    keys: bytearray = field(default_factory=bytearray)
    starts: array[int] = field(default_factory=lambda: array("I"))  # keys past 4 GB: OverflowError
    _slots: HashSlots | None = None

    def __len__(self) -> int:
        return len(self.key_hashes)

    def add(self, key: bytes, key_hash: int, row_hash: int) -> int:
        """Append a row (its key given as UTF-8) and return its row number."""
        self.key_hashes.append(key_hash)
        self.row_hashes.append(row_hash)
        self.starts.append(len(self.keys))
        self.keys += key
        self.keys += KEY_END
        if self._slots is not None:
            self._slots.catch_up()
        return len(self.key_hashes) - 1

    def key_bytes(self, row: int) -> bytes:
        start = self.starts[row]
        end = self.starts[row + 1] - 1 if row + 1 < len(self.starts) else len(self.keys) - 1
        return bytes(self.keys[start:end])

    def key(self, row: int) -> str:
        return self.key_bytes(row).decode("utf-8")

    def find(self, key: bytes, key_hash: int) -> int | None:
        """The row whose key is `key` (UTF-8), or None; the hash only narrows the search."""
        if self._slots is None:
            self._slots = HashSlots(self.key_hashes)
        for row in self._slots.rows(key_hash):
            if self.key_bytes(row) == key:
                return row
        return None

    def forget_lookups(self) -> None:
        """Drop the table `find` builds (4-8 bytes a row); a later `find` builds it again."""
        self._slots = None

    # the cursor

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "row_hashes": pack(self.row_hashes),
            "keys": base64.b64encode(zlib.compress(self.keys, 1)).decode("ascii"),
        }

    @classmethod
    def from_json(cls, cursor: Mapping[str, Any]) -> Fingerprints | None:
        """The rows of either cursor format, or None for one that is damaged or not ours."""
        if cursor.get("format") == FORMAT:
            return cls._from_compact(cursor)
        rows = cursor.get("rows")
        if not isinstance(rows, dict):
            return None
        prints = cls()
        for key, hashed in rows.items():
            if not isinstance(key, str) or not isinstance(hashed, str):
                return None
            try:
                prints.add(key.encode("utf-8"), text_hash(key), hex_hash(hashed))
            except ValueError:
                return None
        return prints

    @classmethod
    def _from_compact(cls, cursor: Mapping[str, Any]) -> Fingerprints | None:
        packed_rows, packed_keys = cursor.get("row_hashes"), cursor.get("keys")
        if not isinstance(packed_rows, str) or not isinstance(packed_keys, str):
            return None
        try:
            row_hashes = unpack("Q", packed_rows)
            keys = bytearray(zlib.decompress(base64.b64decode(packed_keys.encode("ascii"), validate=True)))
        except (ValueError, zlib.error):
            return None
        if keys and keys[-1:] != KEY_END:
            return None
        key_hashes: array[int] = array("Q")
        starts: array[int] = array("I")
        position, end = 0, len(keys)
        while position < end:
            stop = keys.index(KEY_END, position)
            starts.append(position)
            key_hashes.append(bytes_hash(bytes(keys[position:stop])))
            position = stop + 1
        if len(row_hashes) != len(starts):
            return None
        return cls(key_hashes, row_hashes, keys, starts)
