"""The mail sandbox (pymap + aiosmtpd) as syncd's IMAP and SMTP connectors meet it, over real loopback sockets."""

from __future__ import annotations

import queue
import smtplib
import socket
import ssl
import threading
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from imapclient import IMAPClient  # type: ignore[import-untyped]

from connectors.imap import ImapConnector
from connectors.mail_settings import ImapSettings, SentCopySettings, SmtpSettings
from connectors.smtp import SmtpConnector
from syncd.errors import ConfigError
from syncd.records import Batch, Op, WriteOp
from syncd.sandbox.mail import MailSandbox
from syncd.sandbox.mail_store import MailStore


@pytest.fixture
def mail() -> Iterator[MailSandbox]:
    sandbox = MailSandbox().start()
    yield sandbox
    sandbox.stop()


def _imap_settings(sandbox: MailSandbox, **extra: Any) -> ImapSettings:
    info = sandbox.info()["imap"]
    base: dict[str, Any] = {
        "host": info["host"],
        "port": info["port"],
        "security": info["security"],
        "ca_file": info["ca_file"],
        "username": info["user"],
        "password": info["password"],
        "read_timeout_seconds": 10,
    }
    return ImapSettings(**{**base, **extra})


def _smtp_settings(sandbox: MailSandbox, **extra: Any) -> SmtpSettings:
    info = sandbox.info()["smtp"]
    base: dict[str, Any] = {
        "host": info["host"],
        "port": info["port"],
        "security": info["security"],
        "ca_file": info["ca_file"],
        "username": info["user"],
        "password": info["password"],
        "timeout_seconds": 10,
    }
    return SmtpSettings(**{**base, **extra})


def _mail(n: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Client <client@example.com>"
    msg["To"] = "helpdesk@example.com"
    msg["Subject"] = f"Order {n}"
    msg["Date"] = "Tue, 03 Nov 2026 09:30:00 +0000"
    msg["Message-ID"] = f"<order-{n}@example.com>"
    msg.set_content(f"Order number {n}\n")
    return msg.as_bytes()


def _read(conn: ImapConnector, cursor: Any = None, stream: str = "INBOX") -> tuple[list[Batch], Any]:
    batches = list(conn.read(stream, cursor))
    return batches, (batches[-1].cursor if batches else cursor)


def _keys(batches: list[Batch]) -> list[str]:
    return [r.key for b in batches for r in b.records]


def _outgoing(n: int, **fields: Any) -> WriteOp:
    base = {
        "from": "Helpdesk <coordinator@sandbox.example>",
        "to": "client@example.com",
        "subject": f"Your order {n}",
        "text": f"Order {n} has shipped.",
    }
    return WriteOp(Op.CREATE, {**base, **fields}, idempotency_key=f"outbox-{n}")


# -- IMAP -------------------------------------------------------------------------------------------


def test_imap_connector_reads_a_delivered_message(mail: MailSandbox) -> None:
    mail.deliver("INBOX", _mail(1))
    conn = ImapConnector("mail", _imap_settings(mail))
    try:
        batches, _ = _read(conn)
    finally:
        conn.close()
    [record] = [r for b in batches for r in b.records]
    assert record.key == "<order-1@example.com>"
    assert record.fields["subject"] == "Order 1"
    assert record.fields["text"].strip() == "Order number 1"


def test_reading_leaves_messages_unseen(mail: MailSandbox) -> None:
    mail.deliver("INBOX", _mail(1))
    conn = ImapConnector("mail", _imap_settings(mail))
    try:
        _read(conn)
        batches, _ = _read(conn)
    finally:
        conn.close()
    [record] = [r for b in batches for r in b.records]
    assert "\\Seen" not in record.fields["flags"]


def test_a_read_resumes_after_its_cursor(mail: MailSandbox) -> None:
    conn = ImapConnector("mail", _imap_settings(mail))
    try:
        mail.deliver("INBOX", _mail(1))
        _, cursor = _read(conn)
        mail.deliver("INBOX", _mail(2))
        batches, _ = _read(conn, cursor)
    finally:
        conn.close()
    assert _keys(batches) == ["<order-2@example.com>"]


def test_imap_over_tls_trusting_the_sandbox_ca(tmp_path: Path) -> None:
    with MailSandbox(data_dir=tmp_path, tls=True) as sandbox:
        assert sandbox.info()["imap"]["security"] == "ssl"
        sandbox.deliver("INBOX", _mail(1))
        conn = ImapConnector("mail", _imap_settings(sandbox))
        try:
            batches, _ = _read(conn)
        finally:
            conn.close()
    assert _keys(batches) == ["<order-1@example.com>"]


def test_imap_refuses_a_wrong_password(mail: MailSandbox) -> None:
    conn = ImapConnector("mail", _imap_settings(mail, password="not-the-password"))
    with pytest.raises(ConfigError, match="login refused"):
        list(conn.read("INBOX", None))


def test_append_repeated_stores_one_message(mail: MailSandbox) -> None:
    op = WriteOp(Op.CREATE, {"from": "a@example.com", "to": "b@example.com", "subject": "Draft"}, "draft-1")
    conn = ImapConnector("mail", _imap_settings(mail, folders=["Drafts"]))
    try:
        [first] = conn.write("Drafts", [op])
        [again] = conn.write("Drafts", [op])
    finally:
        conn.close()
    assert first.ok and first.created
    assert again.ok and not again.created and again.key == first.key
    subjects = [message_from_bytes(raw, policy=policy.default)["Subject"] for raw in mail.messages("Drafts")]
    assert subjects == ["Draft"]


def test_move_post_action_files_the_message_in_the_target_folder(mail: MailSandbox) -> None:
    mail.deliver("INBOX", _mail(1))
    mail.deliver("Done", _mail(0))
    conn = ImapConnector("mail", _imap_settings(mail))
    try:
        missing = conn.post_action("INBOX", ["<order-1@example.com>"], "move", "Done")
    finally:
        conn.close()
    assert missing == []
    assert mail.messages("INBOX") == []
    assert len(mail.messages("Done")) == 2


def test_seen_post_action_marks_the_message_read(mail: MailSandbox) -> None:
    mail.deliver("INBOX", _mail(1))
    conn = ImapConnector("mail", _imap_settings(mail))
    try:
        conn.post_action("INBOX", ["<order-1@example.com>"], "seen")
        batches, _ = _read(conn)
    finally:
        conn.close()
    [record] = [r for b in batches for r in b.records]
    assert record.fields["flags"] == ["\\Seen"]


def test_delete_expunges_the_message(mail: MailSandbox) -> None:
    mail.deliver("INBOX", _mail(1))
    mail.deliver("INBOX", _mail(2))
    conn = ImapConnector("mail", _imap_settings(mail))
    try:
        [result] = conn.write("INBOX", [WriteOp(Op.DELETE, {}, key="<order-1@example.com>")])
    finally:
        conn.close()
    assert result.ok
    assert mail.messages("INBOX") == [_mail(2)]


class _Watcher:
    """Runs the connector's watch() on a thread and hands each wake-up to the test."""

    def __init__(self, conn: ImapConnector) -> None:
        self.conn = conn
        self.stop = threading.Event()
        self.wakeups: queue.Queue[None] = queue.Queue()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        for _ in self.conn.watch("INBOX", self.stop):
            self.wakeups.put(None)

    def wait_for_wakeup(self) -> None:
        self.wakeups.get(timeout=15)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=15)
        assert not self.thread.is_alive()


def _wait_until(condition: Any) -> None:
    pause = threading.Event()
    for _ in range(300):
        if condition():
            return
        pause.wait(0.05)
    raise AssertionError("condition never held")


def test_idle_wakes_the_watcher_when_a_message_is_delivered(mail: MailSandbox) -> None:
    conn = ImapConnector("mail", _imap_settings(mail, idle_poll_seconds=0.2))
    watcher = _Watcher(conn)
    try:
        watcher.wait_for_wakeup()  # every connection wakes once, to read what came before it
        _wait_until(lambda: conn.watch_stats["INBOX"].idling)
        mail.deliver("INBOX", _mail(1))
        watcher.wait_for_wakeup()
        stats = conn.watch_stats["INBOX"]
        assert (stats.wakeups, stats.reconnects) == (2, 0)
    finally:
        watcher.close()


def test_idle_is_reissued_and_still_wakes_afterwards(mail: MailSandbox) -> None:
    conn = ImapConnector("mail", _imap_settings(mail, idle_reissue_seconds=0.3, idle_poll_seconds=0.1))
    watcher = _Watcher(conn)
    try:
        watcher.wait_for_wakeup()
        _wait_until(lambda: conn.watch_stats["INBOX"].idle_reissues >= 2 and conn.watch_stats["INBOX"].idling)
        mail.deliver("INBOX", _mail(1))
        watcher.wait_for_wakeup()
    finally:
        watcher.close()


def test_a_watcher_reconnects_to_a_restarted_sandbox_and_wakes(tmp_path: Path) -> None:
    first = MailSandbox(data_dir=tmp_path).start()
    port = first.imap_port
    conn = ImapConnector("mail", _imap_settings(first, idle_poll_seconds=0.1, reconnect_max_seconds=0.5))
    watcher = _Watcher(conn)
    try:
        watcher.wait_for_wakeup()
        _wait_until(lambda: conn.watch_stats["INBOX"].idling)
        first.stop()
        with MailSandbox(data_dir=tmp_path, imap_port=port) as second:
            watcher.wait_for_wakeup()  # the reconnect wakes the mapping: mail may have come meanwhile
            _wait_until(lambda: conn.watch_stats["INBOX"].idling)
            second.deliver("INBOX", _mail(1))
            watcher.wait_for_wakeup()
            assert conn.watch_stats["INBOX"].reconnects >= 1
    finally:
        first.stop()
        watcher.close()


def test_idle_announces_every_delivery_without_reconnecting(mail: MailSandbox) -> None:
    """Each response must reach the client in whole lines, or imapclient's idle_check aborts (#519)."""
    conn = ImapConnector("mail", _imap_settings(mail, idle_poll_seconds=0.1))
    watcher = _Watcher(conn)
    try:
        watcher.wait_for_wakeup()
        for n in range(20):
            _wait_until(lambda: conn.watch_stats["INBOX"].idling)
            mail.deliver("INBOX", _mail(n))
            watcher.wait_for_wakeup()
        assert conn.watch_stats["INBOX"].reconnects == 0
    finally:
        watcher.close()


def test_a_message_arriving_just_before_idle_is_announced_when_idle_starts(mail: MailSandbox) -> None:
    info = mail.info()["imap"]
    with IMAPClient(info["host"], port=info["port"], ssl=False, timeout=10) as client:
        client.login(info["user"], info["password"])
        client.select_folder("INBOX", readonly=True)
        mail.deliver("INBOX", _mail(1))
        client.idle()
        responses = client.idle_check(timeout=10)
        client.idle_done()
    assert (1, b"EXISTS") in responses


# -- SMTP -------------------------------------------------------------------------------------------


def test_smtp_connector_sends_and_the_sandbox_records_it(mail: MailSandbox) -> None:
    conn = SmtpConnector("out", _smtp_settings(mail))
    try:
        [result] = conn.write("outbox", [_outgoing(1)])
    finally:
        conn.close()
    assert result.ok and result.created
    [raw] = mail.sent()
    sent = message_from_bytes(raw, policy=policy.default)
    assert (sent["Message-ID"], sent["Subject"]) == (result.key, "Your order 1")


def test_sent_mail_is_filed_once_in_the_senders_sent_folder(mail: MailSandbox) -> None:
    sent_copy = SentCopySettings(imap=_imap_settings(mail), folder="Sent")
    conn = SmtpConnector("out", _smtp_settings(mail, sent_copy=sent_copy))
    try:
        [first] = conn.write("outbox", [_outgoing(1)])
        [again] = conn.write("outbox", [_outgoing(1)])  # a resend after a crash
    finally:
        conn.close()
    assert first.created and not again.created
    assert len(mail.sent()) == 1
    [filed] = mail.messages("Sent")
    assert message_from_bytes(filed, policy=policy.default)["Message-ID"] == first.key


def test_mail_to_a_sandbox_user_arrives_in_their_inbox(mail: MailSandbox) -> None:
    conn = SmtpConnector("out", _smtp_settings(mail))
    try:
        conn.write("outbox", [_outgoing(1, to=mail.user)])
    finally:
        conn.close()
    [arrived] = mail.messages("INBOX")
    assert message_from_bytes(arrived, policy=policy.default)["Subject"] == "Your order 1"


def test_smtp_refuses_a_wrong_password(mail: MailSandbox) -> None:
    conn = SmtpConnector("out", _smtp_settings(mail, password="not-the-password"))
    with pytest.raises(ConfigError, match="login refused"):
        conn.write("outbox", [_outgoing(1)])
    assert mail.sent() == []


def test_smtp_without_login_is_refused(mail: MailSandbox) -> None:
    info = mail.info()["smtp"]
    with (
        smtplib.SMTP(info["host"], info["port"], timeout=10) as client,
        pytest.raises(smtplib.SMTPSenderRefused) as refused,
    ):
        client.sendmail("a@example.com", ["b@example.com"], _mail(1))
    assert refused.value.smtp_code == 530
    assert mail.sent() == []


def test_smtp_over_tls_trusting_the_sandbox_ca(tmp_path: Path) -> None:
    with MailSandbox(data_dir=tmp_path, tls=True) as sandbox:
        info = sandbox.info()["smtp"]
        context = ssl.create_default_context(cafile=info["ca_file"])
        with smtplib.SMTP_SSL(info["host"], info["port"], timeout=10, context=context) as client:
            client.login(info["user"], info["password"])
            client.sendmail("a@example.com", ["b@example.com"], _mail(1))
        [raw] = sandbox.sent()
    assert message_from_bytes(raw, policy=policy.default)["Message-ID"] == "<order-1@example.com>"


# -- state ------------------------------------------------------------------------------------------


def test_data_dir_keeps_mailboxes_and_credentials_across_a_restart(tmp_path: Path) -> None:
    with MailSandbox(data_dir=tmp_path) as first:
        first.deliver("INBOX", _mail(1), flags=["\\Flagged"])
        first.deliver("Archive", _mail(2))
        before = first.info()["imap"]
    with MailSandbox(data_dir=tmp_path) as second:
        after = second.info()["imap"]
        assert (after["user"], after["password"]) == (before["user"], before["password"])
        assert sorted(second.folders()) == ["Archive", "Drafts", "INBOX", "Sent"]
        assert second.messages("INBOX") == [_mail(1)]
        with IMAPClient(after["host"], port=after["port"], ssl=False, timeout=10) as client:
            client.login(after["user"], after["password"])
            client.select_folder("INBOX", readonly=True)
            [(_, data)] = client.fetch(client.search("ALL"), ["FLAGS"]).items()
    assert b"\\Flagged" in data[b"FLAGS"]


def test_a_persistent_sandbox_saves_new_mail_while_it_runs(tmp_path: Path) -> None:
    """So a sandbox killed without a chance to stop (kill -9) keeps its mail."""
    with MailSandbox(data_dir=tmp_path) as running:
        running.deliver("INBOX", _mail(1))
        store = MailStore(tmp_path / "mail.sqlite3")
        _wait_until(
            lambda: [m.raw for m in store.mailboxes().get(running.user, {}).get("INBOX", [])] == [_mail(1)]
        )


def test_a_taken_port_fails_start_and_leaves_the_saved_mail_alone(tmp_path: Path) -> None:
    with MailSandbox(data_dir=tmp_path) as first:
        first.deliver("INBOX", _mail(1))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError):
            MailSandbox(data_dir=tmp_path, smtp_port=taken.getsockname()[1]).start()
    with MailSandbox(data_dir=tmp_path) as again:
        assert again.messages("INBOX") == [_mail(1)]


def test_without_data_dir_nothing_survives_a_restart() -> None:
    with MailSandbox() as first:
        first.deliver("INBOX", _mail(1))
    with MailSandbox() as second:
        assert second.messages("INBOX") == []


def test_after_a_restart_the_connector_redelivers_nothing(tmp_path: Path) -> None:
    """A restarted sandbox gives folders a new UIDVALIDITY; the connector finds its place by Message-ID."""
    with MailSandbox(data_dir=tmp_path) as first:
        first.deliver("INBOX", _mail(1))
        first.deliver("INBOX", _mail(2))
        conn = ImapConnector("mail", _imap_settings(first))
        try:
            _, cursor = _read(conn)
        finally:
            conn.close()
    with MailSandbox(data_dir=tmp_path) as second:
        second.deliver("INBOX", _mail(3))
        conn = ImapConnector("mail", _imap_settings(second))
        try:
            batches, after = _read(conn, cursor)
        finally:
            conn.close()
    assert after["uidvalidity"] != cursor["uidvalidity"]
    assert _keys(batches) == ["<order-3@example.com>"]
