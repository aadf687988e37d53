"""Per-row fingerprints of a CSV file on disk, so a read's memory does not grow with the file.

A file has no change log, so a read compares every row with the previous read. Held in memory
(or in a JSON cursor) that costs ~85 bytes a row for the previous and the new version together;
a million-row file then needs a few hundred megabytes. Here each version of a file is a snapshot
in SQLite: its key and row hash per row, under the file's content hash. The cursor only names
the version it read, so two mappings reading one file share the snapshot of each version.

The store is a cache: losing it costs one full read (every row handed on; the engine skips the
unchanged ones against its links) and deletions made meanwhile go unseen until `syncd reconcile`.
So WAL with synchronous=NORMAL is enough, and a version counts only once its `versions` row is
written, after its last row: a half-written version from a crashed read is deleted and redone.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

KEEP_VERSIONS = 8
"""Versions kept per file whatever their age: cursors of mappings that run rarely name old ones."""

KEEP_SECONDS = 30 * 24 * 3600
"""Versions used this recently are kept however many there are."""

LOOKUP_CHUNK = 2_000
"""Keys per `IN (...)` query: far under SQLite's 32,766 variables, large enough to amortise a query."""

CACHE_KIB = -256
"""Page cache per database (the store, and the read's temporary key table), in KiB: small, because
lookups are by key in random order and the OS caches the file anyway (a 1M-row read took the same
time with 256 KiB as with 1 MiB, and 2 MB less peak RSS)."""

_SIGN = 1 << 63
_WRAP = 1 << 64

_SCHEMA = """
CREATE TABLE IF NOT EXISTS snapshots (
    file_hash TEXT, key TEXT, row_hash INTEGER, PRIMARY KEY (file_hash, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS versions (file_hash TEXT PRIMARY KEY, created REAL, used REAL);
"""


def store_path(state_dir: Path, file: Path) -> Path:
    """One store per file, named by its resolved path, so a renamed state dir entry is never shared."""
    digest = hashlib.blake2b(str(file.resolve()).encode("utf-8")).hexdigest()[:16]
    return state_dir / f"files-{digest}.sqlite"


def _signed(value: int) -> int:
    """SQLite integers are signed 64-bit; row hashes are unsigned."""
    return value - _WRAP if value >= _SIGN else value


def _unsigned(value: int) -> int:
    return value + _WRAP if value < 0 else value


class SnapshotStore:
    """The snapshots of one file's versions; one per read, closed when the read ends."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA temp_store=FILE")  # the read's key table must not sit in memory
        self._db.execute(f"PRAGMA main.cache_size={CACHE_KIB}")
        self._db.execute(f"PRAGMA temp.cache_size={CACHE_KIB}")
        self._db.executescript(_SCHEMA)
        self._db.execute(
            "CREATE TEMP TABLE IF NOT EXISTS seen (key TEXT PRIMARY KEY, line INTEGER) WITHOUT ROWID"
        )

    def close(self) -> None:
        self._db.close()

    # versions

    def complete(self, file_hash: str) -> bool:
        found = self._db.execute("SELECT 1 FROM versions WHERE file_hash = ?", (file_hash,)).fetchone()
        return found is not None

    def discard(self, file_hash: str) -> None:
        """Forget a version's rows and its mark, complete or not."""
        with self._transaction():
            self._db.execute("DELETE FROM snapshots WHERE file_hash = ?", (file_hash,))
            self._db.execute("DELETE FROM versions WHERE file_hash = ?", (file_hash,))

    def rename(self, old: str, new: str) -> None:
        """Rows written under `old` belong to version `new` (the file changed while it was read)."""
        with self._transaction():
            if self.complete(new):
                self._db.execute("DELETE FROM snapshots WHERE file_hash = ?", (old,))
                return
            self._db.execute("DELETE FROM snapshots WHERE file_hash = ?", (new,))
            self._db.execute("UPDATE snapshots SET file_hash = ? WHERE file_hash = ?", (new, old))

    def mark_complete(self, file_hash: str, now: float | None = None) -> None:
        """Written last, after every row of the version: only then does a cursor trust it."""
        now = time.time() if now is None else now
        self._db.execute(
            "INSERT INTO versions (file_hash, created, used) VALUES (?, ?, ?) "
            "ON CONFLICT (file_hash) DO UPDATE SET used = excluded.used",
            (file_hash, now, now),
        )

    def touch(self, file_hash: str, now: float | None = None) -> None:
        now = time.time() if now is None else now
        self._db.execute("UPDATE versions SET used = ? WHERE file_hash = ?", (now, file_hash))

    def versions(self) -> list[str]:
        return [row[0] for row in self._db.execute("SELECT file_hash FROM versions ORDER BY used DESC")]

    def collect_garbage(self, now: float | None = None) -> None:
        """Keep the KEEP_VERSIONS most recently used versions and any used within KEEP_SECONDS.

        Rows of versions never completed (a crashed read) go too: nothing would ever trust them.
        """
        now = time.time() if now is None else now
        rows = self._db.execute("SELECT file_hash, used FROM versions ORDER BY used DESC").fetchall()
        doomed = [h for i, (h, used) in enumerate(rows) if i >= KEEP_VERSIONS and used < now - KEEP_SECONDS]
        complete = {h for h, _ in rows}
        doomed += [h for h in self._snapshot_hashes() if h not in complete]
        for file_hash in doomed:
            self.discard(file_hash)

    def _snapshot_hashes(self) -> Iterator[str]:
        """Each distinct file hash of the rows, one index seek apiece (not a scan of every row)."""
        found = self._db.execute("SELECT MIN(file_hash) FROM snapshots").fetchone()[0]
        while found is not None:
            yield found
            found = self._db.execute(
                "SELECT MIN(file_hash) FROM snapshots WHERE file_hash > ?", (found,)
            ).fetchone()[0]

    # rows

    def row_hashes(self, file_hash: str, keys: Sequence[str]) -> dict[str, int]:
        """{key: row hash} of those of `keys` that version `file_hash` holds."""
        found: dict[str, int] = {}
        for start in range(0, len(keys), LOOKUP_CHUNK):
            part = keys[start : start + LOOKUP_CHUNK]
            marks = ",".join("?" * len(part))
            query = f"SELECT key, row_hash FROM snapshots WHERE file_hash = ? AND key IN ({marks})"
            for key, hashed in self._db.execute(query, (file_hash, *part)):
                found[key] = _unsigned(hashed)
        return found

    def add_rows(self, file_hash: str, rows: Iterable[tuple[str, int]]) -> None:
        with self._transaction():
            self._db.executemany(
                "INSERT OR IGNORE INTO snapshots (file_hash, key, row_hash) VALUES (?, ?, ?)",
                ((file_hash, key, _signed(hashed)) for key, hashed in rows),
            )

    def missing_from(self, file_hash: str) -> Iterator[str]:
        """Keys of version `file_hash` not seen by this read (see `see`), streamed in key order."""
        query = (
            "SELECT key FROM snapshots AS p WHERE p.file_hash = ? "
            "AND NOT EXISTS (SELECT 1 FROM temp.seen AS s WHERE s.key = p.key)"
        )
        cursor = self._db.execute(query, (file_hash,))
        while chunk := cursor.fetchmany(LOOKUP_CHUNK):
            for (key,) in chunk:
                yield key

    # what this read saw, for duplicates and deletions (a temporary table on disk)

    def first_lines(self, keys: Sequence[str]) -> dict[str, int]:
        """{key: line} of those of `keys` this read already saw."""
        found: dict[str, int] = {}
        for start in range(0, len(keys), LOOKUP_CHUNK):
            part = keys[start : start + LOOKUP_CHUNK]
            marks = ",".join("?" * len(part))
            for key, line in self._db.execute(
                f"SELECT key, line FROM temp.seen WHERE key IN ({marks})", part
            ):
                found[key] = line
        return found

    def see(self, rows: Iterable[tuple[str, int]]) -> None:
        with self._transaction():
            self._db.executemany("INSERT OR IGNORE INTO temp.seen (key, line) VALUES (?, ?)", rows)

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    """BEGIN ... COMMIT, or ROLLBACK on an exception; nested uses join the outer one."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._outer = False

    def __enter__(self) -> None:
        if not self._db.in_transaction:
            self._db.execute("BEGIN")
            self._outer = True

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        if not self._outer:
            return
        self._db.execute("ROLLBACK" if kind is not None else "COMMIT")
