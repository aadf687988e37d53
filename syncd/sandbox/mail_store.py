"""The mail sandbox's state on disk: users and every folder's messages, in one SQLite file.

pymap's in-memory backend holds the live mailboxes; this file is where they rest between runs of a
`--data DIR` sandbox. It is written whole, in one transaction, a moment after mail changes and when
the sandbox stops, so a crash (kill -9) loses at most the last moment's changes, never the file. UIDs are not kept: a
restarted sandbox gives every folder a new UIDVALIDITY, as a real server does after a restore, and
IMAP clients re-match by Message-ID (the syncd connector does).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import datetime
from pathlib import Path

from syncd.sandbox.mail_imap import StoredMessage

Mailboxes = dict[str, dict[str, list[StoredMessage]]]
"""user -> folder -> messages in UID order."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (name TEXT PRIMARY KEY, password TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS folders (user TEXT NOT NULL, name TEXT NOT NULL, PRIMARY KEY (user, name));
CREATE TABLE IF NOT EXISTS messages (
    user TEXT NOT NULL, folder TEXT NOT NULL, position INTEGER NOT NULL,
    internal_date TEXT, flags TEXT NOT NULL, raw BLOB NOT NULL,
    PRIMARY KEY (user, folder, position)
);
"""


class MailStore:
    """Reads and replaces the saved state; the file is created 0600 (it holds passwords)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._saving = threading.Lock()  # the autosave and the save at stop may overlap
        if not path.exists():
            path.touch(mode=0o600)
        with self._connect() as db:
            db.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path)) as db, db:
            yield db

    def users(self) -> dict[str, str]:
        with self._connect() as db:
            return dict(db.execute("SELECT name, password FROM users ORDER BY name").fetchall())

    def save_users(self, users: dict[str, str]) -> None:
        with self._connect() as db:
            db.executemany("INSERT OR REPLACE INTO users VALUES (?, ?)", users.items())

    def mailboxes(self) -> Mailboxes:
        found: Mailboxes = {}
        with self._connect() as db:
            for user, name in db.execute("SELECT user, name FROM folders ORDER BY user, name"):
                found.setdefault(user, {})[name] = []
            rows = db.execute(
                "SELECT user, folder, internal_date, flags, raw FROM messages ORDER BY user, folder, position"
            )
            for user, folder, when, flags, raw in rows:
                found.setdefault(user, {}).setdefault(folder, []).append(
                    StoredMessage(
                        bytes(raw),
                        tuple(f for f in str(flags).split(" ") if f),
                        datetime.fromisoformat(when) if when else None,
                    )
                )
        return found

    def save_mailboxes(self, mailboxes: Mailboxes) -> None:
        """Replace everything saved with `mailboxes`, all or nothing."""
        with self._saving, self._connect() as db:
            db.execute("DELETE FROM folders")
            db.execute("DELETE FROM messages")
            for user, folders in mailboxes.items():
                for name, messages in folders.items():
                    db.execute("INSERT INTO folders VALUES (?, ?)", (user, name))
                    db.executemany(
                        "INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?)",
                        (
                            (
                                user,
                                name,
                                position,
                                m.internal_date.isoformat() if m.internal_date else None,
                                " ".join(m.flags),
                                m.raw,
                            )
                            for position, m in enumerate(messages)
                        ),
                    )
