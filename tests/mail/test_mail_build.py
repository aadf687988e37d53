"""Outgoing messages from mapped fields: what is refused, and what the built message says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from connectors.imap import ImapConnector
from connectors.mail_build import build_message, make_message_id
from connectors.mail_settings import ImapSettings, SmtpSettings
from connectors.smtp import SmtpConnector
from syncd.errors import RecordError
from syncd.records import Connector, Finder, Watcher

BASE: dict[str, Any] = {"from": "a@example.com", "to": "b@example.com", "subject": "Hi", "text": "Body"}
MID = "<fixed@syncd.invalid>"


def test_message_id_is_stable_for_the_same_seed_and_differs_between_seeds() -> None:
    assert make_message_id("outbox-1") == make_message_id("outbox-1")
    assert make_message_id("outbox-1") != make_message_id("outbox-2")


def test_non_ascii_names_and_subjects_are_encoded_not_mangled() -> None:
    fields = {**BASE, "to": [{"name": "Jürgen Groß", "address": "jg@example.com"}], "subject": "Grüße ✓"}
    msg = build_message(fields, message_id=MID)
    raw = msg.as_bytes()
    assert raw.isascii()
    assert msg["Subject"] == "Grüße ✓"
    assert msg["To"].addresses[0].display_name == "Jürgen Groß"


def test_html_goes_beside_the_text_as_an_alternative() -> None:
    msg = build_message({**BASE, "html": "<p>Body</p>"}, message_id=MID)
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"date": "last tuesday"}, "INVALID_DATE"),
        ({"references": ["not-an-id"]}, "INVALID_MESSAGE_ID"),
        ({"to": 42}, "INVALID_ADDRESS"),
        ({"cc": "two@@example.com"}, "INVALID_ADDRESS"),
        ({"attachments": [{"name": "x.pdf"}]}, "INVALID_ATTACHMENT"),
        ({"subject": "a\x00b"}, "HEADER_INJECTION"),
    ],
    ids=["date", "references", "to-type", "cc-syntax", "attachment-without-hash", "nul"],
)
def test_bad_fields_are_a_validation_error_for_that_record(fields: dict[str, Any], code: str) -> None:
    with pytest.raises(RecordError) as caught:
        build_message({**BASE, **fields}, message_id=MID)
    assert caught.value.code == code
    assert caught.value.category == "validation"


def test_attachment_missing_from_the_store_is_not_found(tmp_path: Path) -> None:
    attachment = {"sha256": "0" * 64, "name": "gone.pdf"}
    with pytest.raises(RecordError) as caught:
        build_message({**BASE, "attachments": [attachment]}, message_id=MID, attachment_dir=tmp_path)
    assert caught.value.category == "not-found"


def test_connectors_satisfy_the_protocols_the_engine_checks() -> None:
    imap = ImapConnector("m", ImapSettings(host="127.0.0.1", security="none", username="u", password="p"))
    smtp = SmtpConnector("s", SmtpSettings(host="127.0.0.1", security="none"))
    assert isinstance(imap, Connector) and isinstance(imap, Finder) and isinstance(imap, Watcher)
    assert isinstance(smtp, Connector)
    imap.close()
    imap.close()  # twice is safe
    smtp.close()
