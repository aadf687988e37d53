"""CR/LF and address-spoofing payloads into every outgoing mail header: refused, never sent.

Every field that becomes a header (from, to, cc, bcc, reply_to, subject, in_reply_to, references,
date, attachment names) gets each payload, through the SMTP connector to a real SMTP server on
loopback (aiosmtpd) and through `build_message`, which IMAP APPEND uses too. A payload with a line
break or NUL must be refused for that record (category "validation") with nothing sent; an address
payload must never add a recipient or a header, whether it is refused or sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from email import message_from_bytes, policy

import pytest

from connectors.mail_build import build_message
from connectors.mail_settings import SmtpSettings
from connectors.smtp import SmtpConnector
from syncd.errors import RecordError
from syncd.records import Op, WriteOp, WriteResult
from tests.mail.dovecot import free_port
from tests.mail.smtp_server import Inbox, start_smtp

BREAKS = [
    "x\r\nBcc: victim@evil.example",
    "x\nX-Injected: yes",
    "x\rX-Injected: yes",
    "x\r\n\r\n<html>body smuggled</html>",
    "x\x00y",
    "x\u2028X-Injected: yes",
    "x\x85X-Injected: yes",
]
SPOOFS = [
    "victim@good.example, evil@evil.example",
    "evil@evil.example <victim@good.example>",
    "victim@good.example@evil.example",
    "<evil@evil.example>victim@good.example",
    '"victim@good.example" <evil@evil.example>, extra@evil.example',
    "victim@good.example\tBcc: evil@evil.example",
    "=?utf-8?q?victim=0D=0ABcc=3A_evil=40evil.example?= <a@good.example>",
]
HEADER_FIELDS = ["from", "to", "cc", "bcc", "reply_to", "subject", "in_reply_to", "references", "date"]
ADDRESS_FIELDS = ["from", "to", "cc", "bcc", "reply_to"]
BASE = {
    "from": "Helpdesk <helpdesk@ourco.example>",
    "to": "client@client.example",
    "subject": "Your order",
    "text": "It has shipped.",
}
EXPECTED_HEADERS = {
    "from",
    "to",
    "cc",
    "reply-to",
    "subject",
    "date",
    "message-id",
    "in-reply-to",
    "references",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
}


@pytest.fixture
def smtp() -> Iterator[tuple[int, Inbox]]:
    port = free_port()
    controller, inbox = start_smtp(port)
    try:
        yield port, inbox
    finally:
        controller.stop()


def send(port: int, fields: dict[str, object]) -> list[WriteResult]:
    settings = SmtpSettings(host="127.0.0.1", port=port, security="none", timeout_seconds=10)
    connector = SmtpConnector("out", settings, None)
    try:
        return list(connector.write("outbox", [WriteOp(Op.CREATE, {**BASE, **fields}, idempotency_key="k")]))
    finally:
        connector.close()


@pytest.mark.parametrize("field", [*HEADER_FIELDS, "attachment:name"])
@pytest.mark.parametrize("payload", BREAKS)
def test_a_line_break_in_any_header_field_is_refused_and_nothing_is_sent(
    smtp: tuple[int, Inbox], field: str, payload: str
) -> None:
    port, inbox = smtp
    fields: dict[str, object] = {field: payload}
    if field == "attachment:name":
        fields = {f"attachment:{payload}.txt": "content"}
    [result] = send(port, fields)
    assert not result.ok and result.error is not None
    assert result.error.category == "validation"
    assert inbox.received == []


@pytest.mark.parametrize(
    "field", [*(f for f in HEADER_FIELDS if f != "bcc"), "message_id"]
)  # bcc: envelope only
@pytest.mark.parametrize("payload", BREAKS)
def test_build_message_used_by_imap_append_refuses_line_breaks_in_every_header(
    field: str, payload: str
) -> None:
    fields = {**BASE, field: payload}
    message_id = payload if field == "message_id" else "<m@ourco.example>"
    with pytest.raises(RecordError) as caught:
        build_message(fields, message_id=message_id)
    assert caught.value.category == "validation"


@pytest.mark.parametrize("field", ADDRESS_FIELDS)
@pytest.mark.parametrize("payload", SPOOFS)
def test_an_address_payload_never_adds_a_recipient_or_a_header(
    smtp: tuple[int, Inbox], field: str, payload: str
) -> None:
    port, inbox = smtp
    [result] = send(port, {field: payload})
    if not result.ok:  # refused: fine, as long as it is the record that fails and nothing goes out
        assert result.error is not None and result.error.category == "validation"
        assert inbox.received == []
        return
    [got] = inbox.received
    message = message_from_bytes(got.raw, policy=policy.default)
    assert {name.lower() for name in message} <= EXPECTED_HEADERS
    assert len(message.get_all("From") or []) == 1 and len(message["From"].addresses) == 1
    named = [str(a.addr_spec) for h in ("To", "Cc") for a in (message[h].addresses if message[h] else ())]
    assert "evil@evil.example" not in got.rcpt_tos or (
        field in ("to", "cc", "bcc") and "evil@evil.example" in payload
    )
    assert set(got.rcpt_tos) >= set(named)
    assert len(got.rcpt_tos) <= 1 + (field in ("to", "cc", "bcc")) * payload.count("@")
