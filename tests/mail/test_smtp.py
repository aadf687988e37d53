"""The SMTP connector against a real SMTP server (aiosmtpd) on loopback, and Dovecot for the Sent copy."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from imapclient import IMAPClient  # type: ignore[import-untyped]

from connectors.mail_parse import store_attachment
from connectors.mail_settings import ImapSettings, SentCopySettings, SmtpSettings
from connectors.smtp import SmtpConnector
from syncd.errors import ConfigError
from syncd.records import Op, WriteOp

from .dovecot import Account, free_port
from .smtp_server import Credentials, Inbox, start_smtp


@pytest.fixture
def smtp() -> Iterator[tuple[int, Inbox]]:
    port = free_port()
    controller, inbox = start_smtp(port)
    yield port, inbox
    controller.stop()


def _settings(port: int, **extra: Any) -> SmtpSettings:
    base: dict[str, Any] = {"host": "127.0.0.1", "port": port, "security": "none", "timeout_seconds": 10}
    return SmtpSettings(**{**base, **extra})


def _op(n: int, **fields: Any) -> WriteOp:
    base = {
        "from": "Helpdesk <helpdesk@example.com>",
        "to": "client@example.com",
        "subject": f"Your order {n}",
        "text": f"Order {n} has shipped.",
    }
    return WriteOp(Op.CREATE, {**base, **fields}, idempotency_key=f"outbox-{n}")


def _send(settings: SmtpSettings, ops: list[WriteOp], base_dir: Path | None = None) -> list[Any]:
    conn = SmtpConnector("out", settings, base_dir)
    try:
        return conn.write("outbox", ops)
    finally:
        conn.close()


def test_message_is_sent_with_its_fields_and_bcc_only_in_the_envelope(smtp: tuple[int, Inbox]) -> None:
    port, inbox = smtp
    [result] = _send(_settings(port), [_op(1, cc=["Ops <ops@example.com>"], bcc="audit@example.com")])
    assert result.ok and result.created
    [got] = inbox.received
    assert got.mail_from == "helpdesk@example.com"
    assert sorted(got.rcpt_tos) == ["audit@example.com", "client@example.com", "ops@example.com"]
    msg = got.message
    assert msg["Subject"] == "Your order 1"
    assert msg["Message-ID"] == result.key
    assert msg["Bcc"] is None
    assert msg.get_content().strip() == "Order 1 has shipped."


def test_reply_carries_threading_headers(smtp: tuple[int, Inbox]) -> None:
    port, inbox = smtp
    _send(_settings(port), [_op(1, in_reply_to="<q-7@client.example>", references=["<q-1@client.example>"])])
    msg = inbox.received[0].message
    assert msg["In-Reply-To"] == "<q-7@client.example>"
    assert msg["References"] == "<q-1@client.example>"


def test_reply_without_references_threads_on_in_reply_to(smtp: tuple[int, Inbox]) -> None:
    port, inbox = smtp
    _send(_settings(port), [_op(1, in_reply_to="<q-7@client.example>")])
    assert inbox.received[0].message["References"] == "<q-7@client.example>"


@pytest.mark.parametrize(
    "bad",
    [
        {"subject": "Hello\r\nBcc: victim@example.com"},
        {"to": "client@example.com\r\nBcc: victim@example.com"},
        {"to": [{"name": "Eve\nBcc: victim@example.com", "address": "eve@example.com"}]},
        {"in_reply_to": "<a@b>\r\nX-Evil: 1"},
    ],
    ids=["subject", "to", "display-name", "in-reply-to"],
)
def test_header_injection_fails_only_its_record(smtp: tuple[int, Inbox], bad: dict[str, Any]) -> None:
    port, inbox = smtp
    results = _send(_settings(port), [_op(1, **bad), _op(2)])
    assert not results[0].ok and results[0].error.category == "validation"
    assert results[1].ok
    assert len(inbox.received) == 1
    assert b"victim" not in inbox.received[0].raw and b"X-Evil" not in inbox.received[0].raw


def test_invalid_address_fails_only_its_record(smtp: tuple[int, Inbox]) -> None:
    port, inbox = smtp
    results = _send(_settings(port), [_op(1, to="not an address"), _op(2)])
    assert (results[0].ok, results[0].error.code) == (False, "INVALID_ADDRESS")
    assert results[1].ok and len(inbox.received) == 1


def test_recipient_refused_by_the_server_is_a_per_record_failure(smtp: tuple[int, Inbox]) -> None:
    port, inbox = smtp
    results = _send(_settings(port), [_op(1, to="nobody@example.com"), _op(2)])
    assert not results[0].ok and results[0].error.code == "550"
    assert results[1].ok and len(inbox.received) == 1


def test_attachments_are_sent_from_the_content_store(smtp: tuple[int, Inbox], tmp_path: Path) -> None:
    port, inbox = smtp
    digest = store_attachment(tmp_path / "store", b"%PDF-1.4 invoice")
    attachment = {"sha256": digest, "name": "invoice.pdf", "content_type": "application/pdf"}
    [result] = _send(_settings(port, attachment_dir="store"), [_op(1, attachments=[attachment])], tmp_path)
    assert result.ok
    [part] = list(inbox.received[0].message.iter_attachments())
    assert part.get_filename() == "invoice.pdf"
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes) and hashlib.sha256(payload).hexdigest() == digest


def _sent_copy(account: Account) -> SentCopySettings:
    imap = ImapSettings(
        host=account.host,
        port=account.port,
        security="none",
        username=account.username,
        password=account.password,
        read_timeout_seconds=10,
    )
    return SentCopySettings(imap=imap, folder="Sent")


def test_resend_after_a_crash_sends_once_when_a_sent_folder_is_configured(
    smtp: tuple[int, Inbox], account: Account
) -> None:
    port, inbox = smtp
    settings = _settings(port, sent_copy=_sent_copy(account))
    [first] = _send(settings, [_op(1)])
    # A new process after a crash: the journal did not record the outcome, so the op comes again.
    [again] = _send(settings, [_op(1)])
    assert first.ok and first.created
    assert again.ok and not again.created and again.key == first.key
    assert len(inbox.received) == 1
    with IMAPClient(account.host, port=account.port, ssl=False, timeout=10) as client:
        client.login(account.username, account.password)
        client.select_folder("Sent", readonly=True)
        [uid] = client.search(["HEADER", "Message-ID", first.key])
        assert b"\\Seen" in client.get_flags([uid])[uid]


def test_same_outbox_entry_always_gets_the_same_message_id(smtp: tuple[int, Inbox]) -> None:
    port, inbox = smtp
    _send(_settings(port), [_op(1)])
    _send(_settings(port), [_op(1)])
    ids = {r.message["Message-ID"] for r in inbox.received}
    assert len(ids) == 1  # without a Sent folder the repeat is sent, but recognisably the same message


@pytest.fixture
def tls_smtp(account: Account) -> Iterator[tuple[int, Inbox, Path]]:
    tls = account.server.tls
    assert tls is not None
    port = free_port()
    controller, inbox = start_smtp(
        port,
        tls_context=tls.server_context(),
        require_starttls=True,
        auth_required=True,
        authenticator=Credentials("sender", "s3cret"),
    )
    yield port, inbox, tls.ca_file
    controller.stop()


def test_starttls_with_authentication_sends(tls_smtp: tuple[int, Inbox, Path]) -> None:
    port, inbox, ca = tls_smtp
    settings = _settings(port, security="starttls", ca_file=ca, username="sender", password="s3cret")
    [result] = _send(settings, [_op(1)])
    assert result.ok and len(inbox.received) == 1


def test_wrong_smtp_password_is_a_config_error_without_the_password(
    tls_smtp: tuple[int, Inbox, Path],
) -> None:
    port, _, ca = tls_smtp
    settings = _settings(port, security="starttls", ca_file=ca, username="sender", password="wrong-pw-42")
    with pytest.raises(ConfigError) as caught:
        _send(settings, [_op(1)])
    assert "wrong-pw-42" not in str(caught.value)


def test_smtp_cannot_be_read_from(smtp: tuple[int, Inbox]) -> None:
    conn = SmtpConnector("out", _settings(smtp[0]))
    with pytest.raises(ConfigError):
        list(conn.read("outbox", None))
