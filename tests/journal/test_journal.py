"""The journal file: permissions, WAL, migrations from older versions, refusal of what it cannot read."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from syncd.journal import SCHEMA_VERSION, Journal, JournalError


def test_new_journal_is_private_to_its_owner(tmp_path: Path) -> None:
    j = Journal(tmp_path / "syncd.db")
    with j.tx():
        j.set_cursor("m", "source", "s", {"a": 1}, "h")
    for name in ("syncd.db", "syncd.db-wal"):
        mode = stat.S_IMODE((tmp_path / name).stat().st_mode)
        assert mode == 0o600, f"{name} has mode {oct(mode)}"
    j.close()


def test_journal_uses_write_ahead_logging(tmp_path: Path) -> None:
    j = Journal(tmp_path / "syncd.db")
    assert j.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    j.close()


def test_previous_version_journal_is_migrated_and_keeps_its_data(tmp_path: Path) -> None:
    old = Journal(tmp_path / "syncd.db", migrate_to=1)
    assert old.version == 1
    with old.tx():
        old.conn.execute(
            "INSERT INTO links (mapping, source_key, target_key, base, base_hash, state, updated_at) "
            "VALUES ('clients', 'S1', 'T1', '{\"Client\": \"Northwind\"}', 'h', 'active', '2026-01-01')"
        )
        old.set_cursor("clients", "source", "Account", {"ts": "2026-01-01"}, "fh")
        old.conn.execute(
            "INSERT INTO dead_letters (mapping, side, record_key, category, message, first_seen, last_seen) "
            "VALUES ('orders', 'source', 'PO-1', 'validation', 'bad', '2026-01-01', '2026-01-01')"
        )
    old.close()
    new = Journal(tmp_path / "syncd.db")
    assert new.version == SCHEMA_VERSION
    [link] = new.links("clients")
    assert (link.source_key, link.target_key, link.base, link.match_value) == (
        "S1",
        "T1",
        {"Client": "Northwind"},
        None,
    )
    assert new.get_cursor("clients", "source") == ({"ts": "2026-01-01"}, "fh")
    [letter] = new.dead_letters("orders")
    assert letter.attempts == 1
    new.close()


def test_journal_newer_than_this_syncd_is_refused(tmp_path: Path) -> None:
    Journal(tmp_path / "syncd.db").close()
    conn = sqlite3.connect(tmp_path / "syncd.db")
    conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(JournalError, match="newer than this syncd"):
        Journal(tmp_path / "syncd.db")


def test_corrupt_journal_is_an_error_and_is_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / "syncd.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(JournalError, match="not replaced automatically"):
        Journal(path)
    assert path.read_bytes().startswith(b"this is not a database")


def test_a_failed_transaction_leaves_nothing_behind(tmp_path: Path) -> None:
    j = Journal(tmp_path / "syncd.db")
    with pytest.raises(RuntimeError), j.tx():
        j.set_cursor("m", "source", "s", {"a": 1}, None)
        raise RuntimeError("crash in the middle")
    assert j.get_cursor("m", "source") == (None, None)
    j.close()


def test_one_open_dead_letter_per_record_counts_its_attempts(tmp_path: Path) -> None:
    j = Journal(tmp_path / "syncd.db")
    with j.tx():
        j.add_dead_letter("orders", "source", "PO-1", "unresolved-reference", "no account")
        j.add_dead_letter("orders", "source", "PO-1", "unresolved-reference", "no account")
    [letter] = j.dead_letters("orders")
    assert letter.attempts == 2
    j.close()


def test_audit_events_older_than_the_retention_are_pruned(tmp_path: Path) -> None:
    from datetime import timedelta

    j = Journal(tmp_path / "syncd.db")
    with j.tx():
        j.add_events(1, "clients", [("update", "target", "S1", "T1", {"Client": "x"})])
        j.conn.execute("UPDATE events SET ts = '2020-01-01T00:00:00.000+00:00'")
        j.add_events(2, "clients", [("update", "target", "S2", "T2", None)])
    assert j.prune_events(timedelta(days=90)) == 1
    assert [r[0] for r in j.conn.execute("SELECT source_key FROM events")] == ["S2"]
    j.close()


def test_a_lease_held_by_one_owner_is_refused_to_another_until_it_expires(tmp_path: Path) -> None:
    from datetime import timedelta

    j = Journal(tmp_path / "syncd.db")
    assert j.acquire_lease("imap:helpdesk/INBOX", "daemon-a", timedelta(seconds=60))
    assert not j.acquire_lease("imap:helpdesk/INBOX", "daemon-b", timedelta(seconds=60))
    assert j.acquire_lease("imap:helpdesk/INBOX", "daemon-a", timedelta(seconds=60))  # renewal
    assert j.lease_owner("imap:helpdesk/INBOX") == "daemon-a"
    j.release_lease("imap:helpdesk/INBOX", "daemon-a")
    assert j.acquire_lease("imap:helpdesk/INBOX", "daemon-b", timedelta(seconds=60))
    j.close()


def test_an_expired_lease_can_be_taken_over(tmp_path: Path) -> None:
    from datetime import timedelta

    j = Journal(tmp_path / "syncd.db")
    assert j.acquire_lease("imap:x", "crashed-daemon", timedelta(seconds=-1))
    assert j.acquire_lease("imap:x", "new-daemon", timedelta(seconds=60))
    assert j.lease_owner("imap:x") == "new-daemon"
    j.close()
