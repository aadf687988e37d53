"""The sandbox org's state in SQLite: records, delete tombstones, counters, sessions, API usage.

The same tables back both modes, ":memory:" for tests and a file under `data_dir` for a demo that must
survive restarts, so the two never behave differently. Every record is one JSON document keyed by its
Id: the sandbox filters in Python (SOQL is evaluated by `salesforce_query`), which is plenty for a
stand-in holding thousands of rows and keeps the storage trivially correct.

One lock serialises all access: the HTTP server is threaded, and Salesforce's own guarantees that a
client may rely on (SystemModstamp strictly increasing per write, Ids unique) must hold here too.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from syncd.sandbox.salesforce_ids import make_id

SF_DATETIME = "%Y-%m-%dT%H:%M:%S.%f%z"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    id TEXT PRIMARY KEY, sobject TEXT NOT NULL, data TEXT NOT NULL,
    is_deleted INTEGER NOT NULL DEFAULT 0, modstamp TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS records_by_object ON records (sobject, is_deleted);
CREATE INDEX IF NOT EXISTS records_by_stamp ON records (sobject, modstamp);
CREATE TABLE IF NOT EXISTS lookups (sobject TEXT NOT NULL, field TEXT NOT NULL, value TEXT NOT NULL, id TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS lookups_by_value ON lookups (sobject, field, value);
CREATE INDEX IF NOT EXISTS lookups_by_id ON lookups (id);
CREATE TABLE IF NOT EXISTS tombstones (id TEXT PRIMARY KEY, sobject TEXT NOT NULL, deleted_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (token TEXT PRIMARY KEY, username TEXT NOT NULL);
"""


def format_sf_datetime(moment: datetime) -> str:
    """Salesforce's JSON datetime form: milliseconds and a +0000 offset."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}+0000"


def parse_sf_datetime(text: str) -> datetime:
    return datetime.strptime(text, SF_DATETIME)


class OrgStore:
    def __init__(self, path: Path | None) -> None:
        self.lock = threading.RLock()
        self.db = sqlite3.connect(
            str(path) if path else ":memory:", check_same_thread=False, isolation_level=None
        )
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        with self.lock:
            self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All-or-nothing writes (allOrNone, and every single-record call)."""
        with self.lock:
            self.db.execute("BEGIN")
            try:
                yield
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    # --- counters -------------------------------------------------------------------------------

    def meta(self, key: str, default: str | None = None) -> str | None:
        with self.lock:
            row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else default

    def set_meta(self, key: str, value: str) -> None:
        with self.lock:
            self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def bump(self, key: str, by: int = 1) -> int:
        with self.lock:
            value = int(self.meta(key, "0") or 0) + by
            self.set_meta(key, str(value))
            return value

    def new_id(self, key_prefix: str) -> str:
        return make_id(key_prefix, self.bump(f"id:{key_prefix}"))

    def tick(self, after: str | None = None) -> str:
        """A write timestamp: now, never earlier than the previous one (the clock may be stepped back).

        Like Salesforce, many writes within one millisecond share a SystemModstamp (clients order by
        Id within it). Forcing each write 1 ms past the last, as this did, ran the stamps ahead of the
        server's clock under bulk loads (100k records: 100 s ahead of its Date header).
        """
        with self.lock:
            now = datetime.now(UTC)
            now = now.replace(microsecond=now.microsecond // 1000 * 1000)
            last = self.meta("clock")
            if last is not None:
                now = max(now, parse_sf_datetime(last))
            if after is not None:  # a record's next version is always stamped later than its last
                now = max(now, parse_sf_datetime(after) + timedelta(milliseconds=1))
            stamp = format_sf_datetime(now)
            self.set_meta("clock", stamp)
            return stamp

    # --- records --------------------------------------------------------------------------------

    def get(self, record_id: str) -> dict[str, Any] | None:
        with self.lock:
            row = self.db.execute("SELECT data FROM records WHERE id = ?", (record_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def all(
        self, sobject: str, include_deleted: bool = False, modstamp_from: datetime | None = None
    ) -> list[dict[str, Any]]:
        """The object's records; `modstamp_from` skips older ones through the index, as Salesforce's
        own SystemModstamp index does (an incremental read of a big org must not scan all of it)."""
        sql = "SELECT data FROM records WHERE sobject = ?" + (
            "" if include_deleted else " AND is_deleted = 0"
        )
        params: list[Any] = [sobject]
        if modstamp_from is not None:
            sql += " AND modstamp >= ?"
            params.append(format_sf_datetime(modstamp_from))
        with self.lock:
            rows = self.db.execute(sql + " ORDER BY rowid", params).fetchall()
        return [json.loads(r[0]) for r in rows]

    def count(self, sobject: str) -> int:
        with self.lock:
            row = self.db.execute(
                "SELECT COUNT(*) FROM records WHERE sobject = ? AND is_deleted = 0", (sobject,)
            ).fetchone()
        return int(row[0])

    def put(self, sobject: str, record: dict[str, Any], lookups: dict[str, str] | None = None) -> None:
        """Store a record; `lookups` (field -> normalised value) index it for upsert and uniqueness checks."""
        with self.lock:
            self.db.execute("DELETE FROM lookups WHERE id = ?", (record["Id"],))
            self.db.executemany(
                "INSERT INTO lookups (sobject, field, value, id) VALUES (?, ?, ?, ?)",
                [(sobject, name, value, record["Id"]) for name, value in (lookups or {}).items()],
            )
            self.db.execute(
                "INSERT INTO records (id, sobject, data, is_deleted, modstamp) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET data = excluded.data, is_deleted = excluded.is_deleted, "
                "modstamp = excluded.modstamp",
                (
                    record["Id"],
                    sobject,
                    json.dumps(record),
                    1 if record.get("IsDeleted") else 0,
                    record["SystemModstamp"],
                ),
            )

    def tombstone(self, sobject: str, record_id: str, deleted_at: str) -> None:
        with self.lock:
            self.db.execute(
                "INSERT OR REPLACE INTO tombstones (id, sobject, deleted_at) VALUES (?, ?, ?)",
                (record_id, sobject, deleted_at),
            )

    def purge(self, record_id: str) -> None:
        with self.lock:
            self.db.execute("DELETE FROM records WHERE id = ?", (record_id,))
            self.db.execute("DELETE FROM lookups WHERE id = ?", (record_id,))

    def look_up(self, sobject: str, field: str, value: str) -> list[dict[str, Any]]:
        """Records whose indexed `field` has the normalised `value`, oldest first."""
        with self.lock:
            rows = self.db.execute(
                "SELECT r.data FROM lookups l JOIN records r ON r.id = l.id "
                "WHERE l.sobject = ? AND l.field = ? AND l.value = ? ORDER BY r.rowid",
                (sobject, field, value),
            ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def tombstones(self, sobject: str) -> list[tuple[str, str]]:
        with self.lock:
            rows = self.db.execute(
                "SELECT id, deleted_at FROM tombstones WHERE sobject = ? ORDER BY deleted_at", (sobject,)
            ).fetchall()
        return [(str(r[0]), str(r[1])) for r in rows]

    # --- sessions -------------------------------------------------------------------------------

    def add_session(self, token: str, username: str) -> None:
        with self.lock:
            self.db.execute("INSERT INTO sessions (token, username) VALUES (?, ?)", (token, username))

    def session_valid(self, token: str) -> bool:
        with self.lock:
            return self.db.execute("SELECT 1 FROM sessions WHERE token = ?", (token,)).fetchone() is not None

    def expire_sessions(self) -> None:
        with self.lock:
            self.db.execute("DELETE FROM sessions")
