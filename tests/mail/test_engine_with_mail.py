"""The engine reading a real mail folder: messages become rows, and one pass at a time owns the folder."""

from __future__ import annotations

import csv
from datetime import timedelta
from pathlib import Path

import pytest
from imapclient import IMAPClient  # type: ignore[import-untyped]

from syncd.engine import run_pass
from syncd.journal import Journal
from syncd.project import load_project

from .dovecot import Account

CONFIG = """\
version: 1
journal: syncd.db
mappings: ["mappings/*.yaml"]
connections:
  helpdesk: {kind: imap, host: %(host)s, port: %(port)d, security: none, allow_plaintext: true,
             username: %(user)s, password: "${MAIL_PASSWORD}", folders: [INBOX]}
  log: {kind: files, path: log, keys: {Mail: Message}}
"""

MAPPING = """\
version: 1
name: inbox_log
source: helpdesk.INBOX
target: log.Mail
match: {source: message_id, target: Message}
fields:
  Message: message_id
  Sender: from.0.address
  Subject: subject
  Thread: thread
"""


def message(n: int, sender: str = "ann@client.example") -> bytes:
    return (
        f"From: Ann <{sender}>\r\nTo: help@ourco.example\r\nSubject: Question {n}\r\n"
        f"Message-ID: <q{n}@client.example>\r\nDate: Mon, 23 Nov 2026 09:00:00 +0000\r\n\r\nHello {n}\r\n"
    ).encode()


@pytest.fixture
def project_dir(tmp_path: Path, account: Account, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MAIL_PASSWORD", account.password)
    (tmp_path / "syncd.yaml").write_text(
        CONFIG % {"host": account.host, "port": account.port, "user": account.username}
    )
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "inbox_log.yaml").write_text(MAPPING)
    return tmp_path


def append(account: Account, *raws: bytes) -> None:
    client = IMAPClient(account.host, account.port, ssl=False, timeout=10)
    client.login(account.username, account.password)
    try:
        for raw in raws:
            client.append("INBOX", raw)
    finally:
        client.logout()


def test_new_mail_becomes_one_log_row_each_and_is_not_repeated(account: Account, project_dir: Path) -> None:
    append(account, message(1), message(2))
    project = load_project(project_dir / "syncd.yaml")
    with Journal(project.journal_path) as journal:
        first = run_pass(project, journal, "inbox_log")
        append(account, message(3))
        second = run_pass(project, journal, "inbox_log")
    assert (first.counts["created"], second.counts["created"]) == (2, 1)
    with (project_dir / "log" / "Mail.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["Subject"] for r in rows] == ["Question 1", "Question 2", "Question 3"]
    assert rows[0]["Sender"] == "ann@client.example"


def test_a_folder_leased_to_another_pass_is_not_read_twice(account: Account, project_dir: Path) -> None:
    append(account, message(1))
    project = load_project(project_dir / "syncd.yaml")
    with Journal(project.journal_path) as journal:
        assert journal.acquire_lease("inbox_log:helpdesk.INBOX", "other-daemon:1", timedelta(minutes=5))
        blocked = run_pass(project, journal, "inbox_log")
        assert blocked.outcome == "failed" and "being read by other-daemon:1" in blocked.message
        journal.release_lease("inbox_log:helpdesk.INBOX", "other-daemon:1")
        assert run_pass(project, journal, "inbox_log").counts["created"] == 1
        assert journal.lease_owner("inbox_log:helpdesk.INBOX") is None


def test_handled_messages_are_moved_after_commit_and_dead_letters_stay(
    account: Account, project_dir: Path
) -> None:
    mapping = MAPPING.replace("  Subject: subject\n", "  Subject: {from: subject, transform: [integer]}\n")
    mapping += "post_action: {action: move, folder: Processed}\n"
    (project_dir / "mappings" / "inbox_log.yaml").write_text(mapping)
    good = message(1).replace(b"Subject: Question 1", b"Subject: 42")
    append(account, good, message(2))
    client = IMAPClient(account.host, account.port, ssl=False, timeout=10)
    client.login(account.username, account.password)
    client.create_folder("Processed")
    project = load_project(project_dir / "syncd.yaml")
    with Journal(project.journal_path) as journal:
        result = run_pass(project, journal, "inbox_log")
        [letter] = journal.dead_letters("inbox_log")
    assert (result.counts["created"], result.counts["failed"]) == (1, 1)
    assert letter.record_key == "<q2@client.example>"
    client.select_folder("INBOX", readonly=True)
    inbox = client.fetch(client.search("ALL"), ["ENVELOPE"])
    client.select_folder("Processed", readonly=True)
    processed = client.fetch(client.search("ALL"), ["ENVELOPE"])
    client.logout()
    assert [m[b"ENVELOPE"].subject for m in inbox.values()] == [b"Question 2"]
    assert [m[b"ENVELOPE"].subject for m in processed.values()] == [b"42"]
