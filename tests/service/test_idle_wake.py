"""A mail mapping is woken at once by IMAP IDLE, long before its schedule would run it (real Dovecot)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from imapclient import IMAPClient

from tests.mail.dovecot import Account, Dovecot, dovecot_binary, free_port
from tests.service.conftest import Company, DaemonProcess, sample, wait_for


@pytest.fixture(scope="module")
def mail_account() -> Iterator[Account]:
    binary = dovecot_binary()
    if binary is None:
        pytest.skip("dovecot is not installed (Debian package dovecot-imapd; .ci/run installs it)")
    scratch = Path(tempfile.mkdtemp(prefix="syncd-service-dovecot-", dir="/tmp"))
    scratch.chmod(0o755)
    server = Dovecot(dir=scratch, port=free_port(), imaps_port=free_port(), binary=binary, pool_size=2)
    server.start()
    try:
        yield server.account(1)
    finally:
        server.stop()
        shutil.rmtree(scratch, ignore_errors=True)


def mail(n: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Client <client@example.com>"
    msg["To"] = "helpdesk@example.com"
    msg["Subject"] = f"Order {n}"
    msg["Message-ID"] = f"<order-{n}@example.com>"
    msg.set_content(f"Order number {n}\n")
    return msg.as_bytes()


def test_new_mail_wakes_its_mapping_at_once(
    company: Company, mail_account: Account, start_daemon: Callable[..., DaemonProcess]
) -> None:
    a = mail_account
    company.write_config(
        extra=(
            f"  mail:\n    kind: imap\n    host: {a.host}\n    port: {a.port}\n    security: none\n"
            f"    username: {a.username}\n    password: ${{SYNCD_TEST_MAIL_PASSWORD}}\n    idle_poll_seconds: 0.2\n"
        )
    )
    (company.root / "mappings" / "inbox.yaml").write_text(
        "version: 1\nname: inbox\nsource: mail.INBOX\ntarget: dst.Inbox\n"
        "match: {source: message_id, target: Id}\nfields: {Id: message_id, Subject: subject}\nschedule: 1h\n"
    )
    (company.root / "mappings" / "people.yaml").unlink()
    daemon = start_daemon(env={"SYNCD_TEST_MAIL_PASSWORD": a.password})
    wait_for("the first inbox pass", lambda: company.finished_runs("inbox"))
    client = IMAPClient(a.host, port=a.port, ssl=False, timeout=10)
    client.login(a.username, a.password)
    try:
        client.append("INBOX", mail(1))
    finally:
        client.logout()
    rows = wait_for(
        "the new mail to be synced (the schedule says in an hour)", lambda: company.target_rows("Inbox")
    )
    assert rows == [{"Id": "<order-1@example.com>", "Subject": "Order 1"}]
    assert (sample(daemon.metrics(), "syncd_watch_events_total", connection="mail", stream="INBOX") or 0) >= 1
    assert a.password not in "".join(daemon.raw)
    assert daemon.stop() == 0
