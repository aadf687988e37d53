"""Files syncd creates are private, and names that come from mail are never used as paths.

The journal (with its -wal and -shm) and stored attachments hold customer data: mode 0600. An
attachment's file name is attacker-chosen: it is stored under its SHA-256, shown sanitised, and an
attachment reference that is not a SHA-256 is refused before any file is opened.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from connectors.mail_build import build_message
from connectors.mail_parse import parse_message
from syncd.errors import RecordError
from syncd.journal import Journal

TRAVERSALS = [
    "../../../../tmp/syncd-evil.txt",
    "..\\..\\..\\tmp\\syncd-evil.txt",
    "/tmp/syncd-evil.txt",
    "=?utf-8?b?Li4vLi4vLi4vdG1wL3N5bmNkLWV2aWwudHh0?=",  # ../../../tmp/syncd-evil.txt, encoded
    "....//....//tmp/syncd-evil.txt",
    "%2e%2e%2f%2e%2e%2ftmp%2fsyncd-evil.txt",
]


def mail_with(name: str) -> bytes:
    return (
        "From: a@client.example\r\nTo: b@ourco.example\r\nSubject: files\r\n"
        'Content-Type: multipart/mixed; boundary="q"\r\n\r\n--q\r\nContent-Type: text/plain\r\n\r\nsee\r\n'
        f'--q\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename="{name}"\r\n\r\n'
        "evil\r\n--q--\r\n"
    ).encode()


def test_the_journal_and_its_wal_files_are_created_0600(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        with Journal(tmp_path / "syncd.db") as journal:
            journal.start_run("m")
            files = sorted(tmp_path.glob("syncd.db*"))
            modes = {p.name: p.stat().st_mode & 0o777 for p in files if not p.name.endswith(".lock")}
    finally:
        os.umask(old)
    assert {"syncd.db", "syncd.db-wal", "syncd.db-shm"} <= set(modes)
    assert set(modes.values()) == {0o600}


@pytest.mark.parametrize("name", TRAVERSALS)
def test_an_attachment_name_with_path_traversal_is_never_used_as_a_path(tmp_path: Path, name: str) -> None:
    store = tmp_path / "deep" / "attachments"
    before = set(Path("/tmp").glob("syncd-evil*"))
    record = parse_message(mail_with(name), attachment_dir=store)
    assert isinstance(record, dict) and isinstance(record["attachments"], list)
    [attachment] = record["attachments"]
    assert isinstance(attachment, dict) and isinstance(attachment["name"], str)
    assert "/" not in attachment["name"] and "\\" not in attachment["name"]
    assert set(Path("/tmp").glob("syncd-evil*")) == before
    assert [p.name for p in store.iterdir()] == [attachment["sha256"]]
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in store.iterdir())
    assert [p for p in tmp_path.rglob("*") if p.is_file() and store not in p.parents] == []


@pytest.mark.parametrize("reference", ["../../etc/passwd", "/etc/passwd", "a" * 63 + "/", "..", "x" * 64])
def test_an_outgoing_attachment_reference_that_is_not_a_sha256_is_refused(
    tmp_path: Path, reference: str
) -> None:
    fields = {
        "from": "a@ourco.example",
        "to": "b@client.example",
        "subject": "s",
        "text": "t",
        "attachments": [{"sha256": reference, "name": "file.txt"}],
    }
    with pytest.raises(RecordError) as caught:
        build_message(fields, message_id="<m@ourco.example>", attachment_dir=tmp_path)
    assert caught.value.category == "validation"
