"""The SQLite journal: the only place syncd keeps state.

Cursors, links (the identity map with the last agreed values, the *base*), the outbox, dead
letters, conflicts, runs and audit events. One file, WAL mode, `synchronous=FULL` (a committed
outcome must survive power loss: an SMTP send is only safe to skip on restart if its "sent" row is
durable), mode 0600, and a schema version with forward migrations so an upgrade never needs a
fresh journal.

Transactions are explicit (`with journal.tx():`) and the engine commits a batch's results and its
cursor in one of them; that is what "the cursor never moves past an unrecorded outcome" rests on.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlite_utils

from syncd.errors import SyncdError
from syncd.records import JSONValue, canonical_json

SCHEMA_VERSION = 4

MIGRATIONS: dict[int, list[str]] = {
    1: [
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE cursors (
            mapping TEXT NOT NULL, side TEXT NOT NULL, stream TEXT NOT NULL, cursor TEXT,
            fields_hash TEXT, updated_at TEXT NOT NULL, PRIMARY KEY (mapping, side))""",
        """CREATE TABLE links (
            mapping TEXT NOT NULL, source_key TEXT NOT NULL, target_key TEXT NOT NULL,
            base TEXT NOT NULL, base_hash TEXT NOT NULL, source_hash TEXT, target_hash TEXT,
            state TEXT NOT NULL DEFAULT 'active', updated_at TEXT NOT NULL,
            PRIMARY KEY (mapping, source_key))""",
        "CREATE UNIQUE INDEX links_by_target ON links (mapping, target_key)",
        """CREATE TABLE outbox (
            id INTEGER PRIMARY KEY, run_id INTEGER, mapping TEXT NOT NULL, side TEXT NOT NULL,
            stream TEXT NOT NULL, op TEXT NOT NULL, source_key TEXT, target_key TEXT, fields TEXT NOT NULL,
            idempotency_key TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'pending',
            created_at TEXT NOT NULL, done_at TEXT)""",
        "CREATE INDEX outbox_pending ON outbox (mapping, state)",
        """CREATE TABLE dead_letters (
            id INTEGER PRIMARY KEY, mapping TEXT NOT NULL, side TEXT NOT NULL, record_key TEXT,
            category TEXT NOT NULL, code TEXT, message TEXT NOT NULL, field TEXT, record TEXT, raw TEXT,
            state TEXT NOT NULL DEFAULT 'open', first_seen TEXT NOT NULL, last_seen TEXT NOT NULL,
            run_id INTEGER)""",
        """CREATE TABLE conflicts (
            id INTEGER PRIMARY KEY, mapping TEXT NOT NULL, source_key TEXT NOT NULL, target_key TEXT NOT NULL,
            fields TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'open', created_at TEXT NOT NULL,
            resolved_at TEXT, resolution TEXT)""",
        """CREATE TABLE runs (
            id INTEGER PRIMARY KEY, mapping TEXT NOT NULL, started_at TEXT NOT NULL, finished_at TEXT,
            outcome TEXT, dry_run INTEGER NOT NULL DEFAULT 0, read INTEGER DEFAULT 0,
            created INTEGER DEFAULT 0, updated INTEGER DEFAULT 0, deleted INTEGER DEFAULT 0,
            skipped INTEGER DEFAULT 0, failed INTEGER DEFAULT 0, conflicts INTEGER DEFAULT 0, message TEXT)""",
    ],
    # v2: audit events; retry counts on dead letters; the match value on links so lookups through
    # another mapping can resolve by it, not only by either side's key.
    2: [
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY, ts TEXT NOT NULL, run_id INTEGER, mapping TEXT NOT NULL,
            action TEXT NOT NULL, side TEXT NOT NULL, source_key TEXT, target_key TEXT, fields TEXT)""",
        "CREATE INDEX events_by_time ON events (ts)",
        "ALTER TABLE dead_letters ADD COLUMN attempts INTEGER NOT NULL DEFAULT 1",
        "CREATE INDEX dead_letters_open ON dead_letters (mapping, state, side, record_key)",
        "ALTER TABLE links ADD COLUMN match_value TEXT",
        "CREATE INDEX links_by_match ON links (mapping, match_value)",
    ],
    # v3: the newest source change each run saw, so `syncd status` can show lag without the daemon.
    3: ["ALTER TABLE runs ADD COLUMN newest_change TEXT"],
    # v4: notification cycles (a record counts as new again after leaving its filter, or in a new
    # `once_per` period), and leases so one process at a time owns a watched mail folder.
    4: [
        "ALTER TABLE links ADD COLUMN generation INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE links ADD COLUMN period TEXT NOT NULL DEFAULT ''",
        """CREATE TABLE leases (
            name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at TEXT NOT NULL, acquired_at TEXT NOT NULL)""",
    ],
}


def _holder_is_gone(owner: str) -> bool:
    """A lease owner ("host:pid:thread") on this host whose process no longer exists.

    A daemon killed with SIGKILL cannot release its lease; without this, its mail folder would stay
    unread until the lease expired (30 minutes), which the crash suite (tests/chaos) found.
    """
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by another user
        return False
    return False


class JournalError(SyncdError):
    """The journal cannot be used (corrupt, newer than this syncd, not writable)."""


def _where(**filters: Any) -> tuple[str, list[Any]]:
    """A WHERE clause from column filters: None = any, a str/int = equal, an iterable = one of."""
    clauses, params = ["1=1"], list[Any]()
    for column, value in filters.items():
        if value is None:
            continue
        if isinstance(value, str | int):
            clauses.append(f"{column} = ?")
            params.append(value)
        else:
            values = list(value)
            clauses.append(f"{column} IN ({','.join('?' * len(values))})" if values else "0=1")
            params.extend(values)
    return " AND ".join(clauses), params


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class Link:
    mapping: str
    source_key: str
    target_key: str
    base: dict[str, JSONValue]
    base_hash: str
    source_hash: str | None
    target_hash: str | None
    state: str
    match_value: str | None = None
    generation: int = 0
    period: str = ""


@dataclass
class DeadLetter:
    id: int
    mapping: str
    side: str
    record_key: str | None
    category: str
    code: str | None
    message: str
    field: str | None
    record: dict[str, Any] | None
    raw: str | None
    state: str
    attempts: int
    first_seen: str
    last_seen: str


@dataclass
class Conflict:
    id: int
    mapping: str
    source_key: str
    target_key: str
    fields: dict[str, dict[str, JSONValue]]  # field -> {"base", "source", "target"}
    state: str
    created_at: str
    resolution: str | None


class Journal:
    def __init__(self, path: Path | str, *, migrate_to: int = SCHEMA_VERSION) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._depth = 0
        # Link rows saved inside a transaction wait here and go to SQLite together (executemany) before
        # any other statement runs and before COMMIT: a first pass saves one link per record.
        self._pending_links: list[tuple[Any, ...]] = []
        self._open_letters: dict[str, bool] = {}  # mapping -> has open dead letters (this transaction)
        if str(path) != ":memory:" and not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)
        try:
            conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            self.db = sqlite_utils.Database(conn)
            self._migrate(migrate_to)
        except sqlite3.DatabaseError as exc:
            raise JournalError(
                f"{self.path}: the journal cannot be opened ({exc}). It is not replaced automatically; "
                "see README 'Recovering a damaged journal'."
            ) from exc

    # -- plumbing -----------------------------------------------------------------------------

    @property
    def conn(self) -> sqlite3.Connection:
        return self.db.conn

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def tx(self) -> Iterator[None]:
        """One transaction; nested calls join the outer one."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                self._depth = 1
                self._open_letters.clear()
                try:
                    yield
                    self._flush_links()
                    self.conn.execute("COMMIT")
                finally:
                    self._depth = 0
                    self._pending_links.clear()
                    if self.conn.in_transaction:  # SQLite may have rolled back already (disk full)
                        self.conn.execute("ROLLBACK")
            except sqlite3.OperationalError as exc:
                if self._disk_full(exc):
                    raise JournalError(
                        f"{self.path}: the disk holding the journal is full; the batch was not recorded "
                        "and is repeated once there is space"
                    ) from exc
                raise

    @staticmethod
    def _disk_full(exc: sqlite3.OperationalError) -> bool:
        """SQLITE_FULL: reported as a JournalError naming the file, so a pass fails with a reason (the
        daemon backs off and retries) instead of crashing; nothing of the transaction was kept."""
        return getattr(exc, "sqlite_errorname", "") == "SQLITE_FULL" or "disk is full" in str(exc)

    def _rows(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            self._flush_links()
            cur = self.conn.execute(sql, params)
            names = [d[0] for d in cur.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def _exec(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Cursor:
        with self._lock:
            self._flush_links()
            return self.conn.execute(sql, params)

    def _executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> sqlite3.Cursor:
        with self._lock:
            self._flush_links()
            return self.conn.executemany(sql, rows)

    @property
    def version(self) -> int:
        if "meta" not in self.db.table_names():
            return 0
        rows = self._rows("SELECT value FROM meta WHERE key = 'schema_version'")
        return int(rows[0]["value"]) if rows else 0

    def _migrate(self, target: int) -> None:
        current = self.version
        if current > SCHEMA_VERSION:
            raise JournalError(
                f"{self.path}: journal schema version {current} is newer than this syncd understands "
                f"({SCHEMA_VERSION}); upgrade syncd"
            )
        for version in range(current + 1, target + 1):
            with self.tx():
                for statement in MIGRATIONS[version]:
                    self._exec(statement)
                self._exec(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    (str(version),),
                )

    # -- cursors ------------------------------------------------------------------------------

    def get_cursor(self, mapping: str, side: str) -> tuple[Any, str | None]:
        rows = self._rows(
            "SELECT cursor, fields_hash FROM cursors WHERE mapping = ? AND side = ?", (mapping, side)
        )
        if not rows:
            return None, None
        raw = rows[0]["cursor"]
        return (json.loads(raw) if raw is not None else None), rows[0]["fields_hash"]

    def set_cursor(self, mapping: str, side: str, stream: str, cursor: Any, fields_hash: str | None) -> None:
        self._exec(
            """INSERT INTO cursors (mapping, side, stream, cursor, fields_hash, updated_at) VALUES (?,?,?,?,?,?)
               ON CONFLICT(mapping, side) DO UPDATE SET stream=excluded.stream, cursor=excluded.cursor,
               fields_hash=excluded.fields_hash, updated_at=excluded.updated_at""",
            (mapping, side, stream, None if cursor is None else canonical_json(cursor), fields_hash, now()),
        )

    def _link(self, row: dict[str, Any]) -> Link:
        return Link(
            row["mapping"],
            row["source_key"],
            row["target_key"],
            json.loads(row["base"]),
            row["base_hash"],
            row["source_hash"],
            row["target_hash"],
            row["state"],
            row.get("match_value"),
            row.get("generation") or 0,
            row.get("period") or "",
        )

    def links_by_source(self, mapping: str, keys: Iterable[str]) -> dict[str, Link]:
        return self._links_by("source_key", mapping, keys)

    def links_by_target(self, mapping: str, keys: Iterable[str]) -> dict[str, Link]:
        return self._links_by("target_key", mapping, keys)

    def _links_by(self, column: str, mapping: str, keys: Iterable[str]) -> dict[str, Link]:
        out: dict[str, Link] = {}
        wanted = list(dict.fromkeys(keys))
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self._rows(
                f"SELECT * FROM links WHERE mapping = ? AND {column} IN ({marks})", (mapping, *chunk)
            ):
                out[row[column]] = self._link(row)
        return out

    def links(self, mapping: str, key: str | None = None) -> list[Link]:
        if key is None:
            rows = self._rows("SELECT * FROM links WHERE mapping = ? ORDER BY source_key", (mapping,))
        else:
            rows = self._rows(
                "SELECT * FROM links WHERE mapping = ? AND (source_key = ? OR target_key = ? OR match_value = ?)",
                (mapping, key, key, key),
            )
        return [self._link(r) for r in rows]

    def resolve_through_links(self, mapping: str, values: Iterable[str], want: str) -> dict[str, str]:
        """value -> the `want` side's key ("source" or "target") of `mapping`'s links, where the value is
        the other side's key or the link's match value. One query per 500 values."""
        other = "target_key" if want == "source" else "source_key"
        column = f"{want}_key"
        out: dict[str, str] = {}
        wanted = list(dict.fromkeys(values))
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self._rows(
                f"""SELECT {other} AS other, match_value, {column} AS key FROM links
                    WHERE mapping = ? AND state = 'active' AND ({other} IN ({marks}) OR match_value IN ({marks}))""",
                (mapping, *chunk, *chunk),
            ):
                for v in (row["other"], row["match_value"]):
                    if v in chunk:
                        out[v] = row["key"]
        return out

    def save_link(
        self,
        mapping: str,
        source_key: str,
        target_key: str,
        base: dict[str, JSONValue],
        base_hash: str | None,
        source_hash: str | None,
        target_hash: str | None,
        match_value: str | None,
        state: str = "active",
        generation: int = 0,
        period: str = "",
    ) -> None:
        base_json = canonical_json(base)
        if base_hash is None:  # "the hash of what is stored", for every hash not given
            base_hash = hashlib.blake2b(base_json.encode("utf-8"), digest_size=16).hexdigest()
            source_hash, target_hash = source_hash or base_hash, target_hash or base_hash
        row = (
            mapping,
            source_key,
            target_key,
            base_json,
            base_hash,
            source_hash,
            target_hash,
            state,
            now(),
            match_value,
            generation,
            period,
        )
        with self._lock:
            self._pending_links.append(row)
            if not self._depth:
                self._flush_links()

    _UNLINK_TARGET = "DELETE FROM links WHERE mapping = ? AND target_key = ? AND source_key != ?"
    _UPSERT_LINK = """INSERT INTO links (mapping, source_key, target_key, base, base_hash, source_hash, target_hash,
                                  state, updated_at, match_value, generation, period)
               VALUES (?,?,?,?,?,?,?,?,?,?,?,?)
               ON CONFLICT(mapping, source_key) DO UPDATE SET target_key=excluded.target_key, base=excluded.base,
               base_hash=excluded.base_hash, source_hash=excluded.source_hash, target_hash=excluded.target_hash,
               state=excluded.state, updated_at=excluded.updated_at, match_value=excluded.match_value,
               generation=excluded.generation, period=excluded.period"""

    def _flush_links(self) -> None:
        """Write the waiting link rows: as one batch when their target keys differ, else one by one.

        A target key is linked to one source key; a re-created source record takes the link over
        (the DELETE). Done for all rows first, then all upserts, the result equals row by row as
        long as no two rows name the same target, which is when the order would matter.
        """
        rows, self._pending_links = self._pending_links, []
        if not rows:
            return
        if len({(r[0], r[2]) for r in rows}) == len(rows):
            self.conn.executemany(self._UNLINK_TARGET, [(r[0], r[2], r[1]) for r in rows])
            self.conn.executemany(self._UPSERT_LINK, rows)
            return
        for r in rows:
            self.conn.execute(self._UNLINK_TARGET, (r[0], r[2], r[1]))
            self.conn.execute(self._UPSERT_LINK, r)

    def set_link_state(self, mapping: str, source_key: str, state: str) -> None:
        self._exec(
            "UPDATE links SET state = ?, updated_at = ? WHERE mapping = ? AND source_key = ?",
            (state, now(), mapping, source_key),
        )

    def delete_link(self, mapping: str, source_key: str) -> None:
        self._exec("DELETE FROM links WHERE mapping = ? AND source_key = ?", (mapping, source_key))

    def count_links(self, mapping: str) -> int:
        return int(self._rows("SELECT COUNT(*) AS n FROM links WHERE mapping = ?", (mapping,))[0]["n"])

    # -- leases -------------------------------------------------------------------------------

    def acquire_lease(self, name: str, owner: str, ttl: timedelta) -> bool:
        """Take or renew the lease `name` for `owner` unless another owner holds an unexpired one.

        Leases make one process at a time the reader of a watched mail folder, so two daemons (or
        an old and a new config during a reload) never process one message twice.
        """
        stamp = datetime.now(UTC)
        with self.tx():
            rows = self._rows("SELECT owner, expires_at FROM leases WHERE name = ?", (name,))
            held = rows and rows[0]["owner"] != owner and rows[0]["expires_at"] > stamp.isoformat()
            if held and not _holder_is_gone(str(rows[0]["owner"])):
                return False
            self._exec(
                """INSERT INTO leases (name, owner, expires_at, acquired_at) VALUES (?,?,?,?)
                   ON CONFLICT(name) DO UPDATE SET owner=excluded.owner, expires_at=excluded.expires_at,
                   acquired_at=CASE WHEN leases.owner = excluded.owner THEN leases.acquired_at
                                    ELSE excluded.acquired_at END""",
                (name, owner, (stamp + ttl).isoformat(), stamp.isoformat()),
            )
        return True

    def release_lease(self, name: str, owner: str) -> None:
        with self.tx():
            self._exec("DELETE FROM leases WHERE name = ? AND owner = ?", (name, owner))

    def lease_owner(self, name: str) -> str | None:
        rows = self._rows("SELECT owner, expires_at FROM leases WHERE name = ?", (name,))
        if rows and rows[0]["expires_at"] > datetime.now(UTC).isoformat():
            return str(rows[0]["owner"])
        return None

    # -- outbox -------------------------------------------------------------------------------

    def add_outbox(
        self, run_id: int, mapping: str, side: str, stream: str, entries: Sequence[dict[str, Any]]
    ) -> list[int]:
        """Insert the entries in one statement; their ids, in order.

        Inside one transaction nothing else inserts into the outbox, and SQLite gives an INTEGER
        PRIMARY KEY the next value after the largest, so the ids are the last one's predecessors.
        """
        if not entries:
            return []
        stamp = now()
        with self._lock:
            self._executemany(
                """INSERT INTO outbox (run_id, mapping, side, stream, op, source_key, target_key, fields,
                                       idempotency_key, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)""",
                [
                    (
                        run_id,
                        mapping,
                        side,
                        stream,
                        e["op"],
                        e.get("source_key"),
                        e.get("target_key"),
                        canonical_json(e["fields"]),
                        e["idempotency_key"],
                        stamp,
                    )
                    for e in entries
                ],
            )
            last = int(self.conn.execute("SELECT last_insert_rowid()").fetchone()[0])
        return list(range(last - len(entries) + 1, last + 1))

    def finish_outbox(self, ids: Sequence[int], state: str = "done") -> None:
        stamp = now()
        self._executemany(
            "UPDATE outbox SET state = ?, done_at = ? WHERE id = ?", [(state, stamp, i) for i in ids]
        )

    def pending_outbox(self, mapping: str | None = None) -> list[dict[str, Any]]:
        if mapping is None:
            return self._rows("SELECT * FROM outbox WHERE state = 'pending' ORDER BY id")
        return self._rows(
            "SELECT * FROM outbox WHERE state = 'pending' AND mapping = ? ORDER BY id", (mapping,)
        )

    def add_dead_letter(
        self,
        mapping: str,
        side: str,
        record_key: str | None,
        category: str,
        message: str,
        *,
        code: str | None = None,
        field: str | None = None,
        record: dict[str, Any] | None = None,
        raw: str | None = None,
        run_id: int | None = None,
    ) -> None:
        """Record (or refresh) the open dead letter of one record: one open letter per record and side."""
        stamp = now()
        self._open_letters[mapping] = True
        existing = []
        if record_key is not None:
            existing = self._rows(
                "SELECT id FROM dead_letters WHERE mapping = ? AND side = ? AND record_key = ? AND state = 'open'",
                (mapping, side, record_key),
            )
        record_json = canonical_json(record) if record is not None else None
        if existing:
            self._exec(
                """UPDATE dead_letters SET category=?, code=?, message=?, field=?, record=?, raw=?, last_seen=?,
                   run_id=?, attempts=attempts+1 WHERE id=?""",
                (category, code, message, field, record_json, raw, stamp, run_id, existing[0]["id"]),
            )
        else:
            self._exec(
                """INSERT INTO dead_letters (mapping, side, record_key, category, code, message, field, record, raw,
                   first_seen, last_seen, run_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)""",
                (
                    mapping,
                    side,
                    record_key,
                    category,
                    code,
                    message,
                    field,
                    record_json,
                    raw,
                    stamp,
                    stamp,
                    run_id,
                ),
            )

    def resolve_dead_letters(self, mapping: str, side: str, keys: Iterable[str]) -> None:
        """Mark the open letters of these records resolved (their write succeeded).

        Called for every record written, so it first asks once per transaction whether the mapping
        has any open letter at all: usually it has none, and then there is nothing to update.
        """
        if self._depth and not self._has_open_letters(mapping):
            return
        self._executemany(
            "UPDATE dead_letters SET state = 'resolved', last_seen = ? WHERE mapping = ? AND side = ? "
            "AND record_key = ? AND state = 'open'",
            [(now(), mapping, side, k) for k in keys],
        )

    def _has_open_letters(self, mapping: str) -> bool:
        if mapping not in self._open_letters:
            rows = self._rows(
                "SELECT 1 AS x FROM dead_letters WHERE mapping = ? AND state = 'open' LIMIT 1", (mapping,)
            )
            self._open_letters[mapping] = bool(rows)
        return self._open_letters[mapping]

    def dead_letters(
        self,
        mapping: str | None = None,
        *,
        state: str | None = "open",
        categories: Iterable[str] | None = None,
        ids: Iterable[int] | None = None,
    ) -> list[DeadLetter]:
        where, params = _where(mapping=mapping, state=state, category=categories, id=ids)
        return [
            DeadLetter(
                r["id"],
                r["mapping"],
                r["side"],
                r["record_key"],
                r["category"],
                r["code"],
                r["message"],
                r["field"],
                json.loads(r["record"]) if r["record"] else None,
                r["raw"],
                r["state"],
                r["attempts"],
                r["first_seen"],
                r["last_seen"],
            )
            for r in self._rows(f"SELECT * FROM dead_letters WHERE {where} ORDER BY id", params)
        ]

    def dead_letter_counts(
        self, mapping: str | None = None, since: str | None = None
    ) -> dict[tuple[str, str], int]:
        """(mapping, category) -> open dead letters, optionally only those seen at or after `since`.

        One grouped query, so a metrics scrape or a pass summary costs the same with 10 letters or 100,000.
        """
        sql, params = (
            "SELECT mapping, category, COUNT(*) AS n FROM dead_letters WHERE state = 'open'",
            list[Any](),
        )
        if mapping is not None:
            sql, params = sql + " AND mapping = ?", [*params, mapping]
        if since is not None:
            sql, params = sql + " AND last_seen >= ?", [*params, since]
        rows = self._rows(sql + " GROUP BY mapping, category", params)
        return {(r["mapping"], r["category"]): int(r["n"]) for r in rows}

    def add_conflict(self, mapping: str, source_key: str, target_key: str, fields: dict[str, Any]) -> None:
        """One open conflict per linked pair: a newer disagreement replaces the older one."""
        self._exec(
            "DELETE FROM conflicts WHERE mapping = ? AND source_key = ? AND state = 'open'",
            (mapping, source_key),
        )
        self._exec(
            "INSERT INTO conflicts (mapping, source_key, target_key, fields, created_at) VALUES (?,?,?,?,?)",
            (mapping, source_key, target_key, canonical_json(fields), now()),
        )

    def conflicts(
        self, mapping: str | None = None, state: str | None = "open", ids: Iterable[int] | None = None
    ) -> list[Conflict]:
        where, params = _where(mapping=mapping, state=state, id=ids)
        return [
            Conflict(
                r["id"],
                r["mapping"],
                r["source_key"],
                r["target_key"],
                json.loads(r["fields"]),
                r["state"],
                r["created_at"],
                r["resolution"],
            )
            for r in self._rows(f"SELECT * FROM conflicts WHERE {where} ORDER BY id", params)
        ]

    def resolve_conflict(self, conflict_id: int, resolution: str) -> None:
        self._exec(
            "UPDATE conflicts SET state = 'resolved', resolved_at = ?, resolution = ? WHERE id = ?",
            (now(), resolution, conflict_id),
        )

    # -- runs and events ----------------------------------------------------------------------

    def start_run(self, mapping: str, dry_run: bool = False) -> int:
        with self.tx():
            cur = self._exec(
                "INSERT INTO runs (mapping, started_at, dry_run, outcome) VALUES (?,?,?,'running')",
                (mapping, now(), int(dry_run)),
            )
        return int(cur.lastrowid or 0)

    def add_run_counts(self, run_id: int, counts: dict[str, int]) -> None:
        if counts:
            sets = ", ".join(f"{k} = {k} + ?" for k in counts)
            self._exec(f"UPDATE runs SET {sets} WHERE id = ?", (*counts.values(), run_id))

    def finish_run(
        self, run_id: int, outcome: str, message: str | None = None, newest_change: datetime | None = None
    ) -> None:
        newest = newest_change.isoformat() if newest_change is not None else None
        with self.tx():
            self._exec(
                "UPDATE runs SET finished_at = ?, outcome = ?, message = ?, newest_change = ? WHERE id = ?",
                (now(), outcome, message, newest, run_id),
            )

    def run(self, run_id: int) -> dict[str, Any]:
        return self._rows("SELECT * FROM runs WHERE id = ?", (run_id,))[0]

    def last_runs(self) -> dict[str, dict[str, Any]]:
        rows = self._rows(
            "SELECT * FROM runs WHERE id IN (SELECT MAX(id) FROM runs WHERE dry_run = 0 GROUP BY mapping)"
        )
        return {r["mapping"]: r for r in rows}

    def add_events(
        self, run_id: int, mapping: str, events: Sequence[tuple[str, str, str | None, str | None, Any]]
    ) -> None:
        stamp = now()
        self._executemany(
            "INSERT INTO events (ts, run_id, mapping, action, side, source_key, target_key, fields) "
            "VALUES (?,?,?,?,?,?,?,?)",
            [
                (stamp, run_id, mapping, a, s, sk, tk, canonical_json(f) if f is not None else None)
                for a, s, sk, tk, f in events
            ],
        )

    def prune_events(self, older_than: timedelta) -> int:
        cutoff = (datetime.now(UTC) - older_than).isoformat(timespec="milliseconds")
        with self.tx():
            cur = self._exec("DELETE FROM events WHERE ts < ?", (cutoff,))
        return cur.rowcount

    def counts(self, mapping: str) -> dict[str, int]:
        """Open dead letters, open conflicts, pending outbox and links of one mapping (for status)."""
        row = self._rows(
            """SELECT
                 (SELECT COUNT(*) FROM dead_letters WHERE mapping = :m AND state = 'open') AS dead_letters,
                 (SELECT COUNT(*) FROM conflicts WHERE mapping = :m AND state = 'open') AS conflicts,
                 (SELECT COUNT(*) FROM outbox WHERE mapping = :m AND state = 'pending') AS pending,
                 (SELECT COUNT(*) FROM links WHERE mapping = :m) AS links""",
            {"m": mapping},
        )[0]
        return {k: int(v) for k, v in row.items()}
