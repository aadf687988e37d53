"""mail_parse beyond the corpus: caps, the header fast path, attachment storage, keys, raw keeping."""

from __future__ import annotations

import base64
import hashlib
import stat
from email.message import EmailMessage
from pathlib import Path

from connectors.mail_parse import (
    Limits,
    Rejected,
    html_to_text,
    message_key,
    parse_headers,
    parse_message,
    raw_for_problem,
    store_attachment,
)


def _message(attachment: bytes = b"", filename: str = "report.pdf") -> bytes:
    msg = EmailMessage()
    msg["From"] = "Alice <alice@example.com>"
    msg["To"] = "bob@example.com, Carol <carol@example.com>"
    msg["Cc"] = "dave@example.com"
    msg["Subject"] = "Quarterly report"
    msg["Date"] = "Tue, 03 Nov 2026 09:30:00 +0000"
    msg["Message-ID"] = "<report-1@example.com>"
    msg.set_content("See attached.\n")
    msg.add_alternative("<p>See <b>attached</b>.</p>", subtype="html")
    if attachment:
        msg.add_attachment(attachment, maintype="application", subtype="pdf", filename=filename)
    return msg.as_bytes()


def test_well_formed_message_becomes_a_full_record() -> None:
    record = parse_message(_message(b"%PDF-1.4 data"))
    assert not isinstance(record, Rejected)
    assert record["message_id"] == "<report-1@example.com>"
    assert record["from"] == [{"name": "Alice", "address": "alice@example.com"}]
    assert [a["address"] for a in record["to"]] == ["bob@example.com", "carol@example.com"]
    assert record["cc"] == [{"name": "", "address": "dave@example.com"}]
    assert record["date"] == "2026-11-03T09:30:00+00:00"
    assert record["text"] == "See attached.\n"
    assert record["html"] is not None and "<b>attached</b>" in record["html"]
    assert record["attachments"] == [
        {
            "name": "report.pdf",
            "content_type": "application/pdf",
            "size": 13,
            "sha256": hashlib.sha256(b"%PDF-1.4 data").hexdigest(),
        }
    ]
    assert record["defects"] == []
    assert "headers" not in record


def test_raw_headers_are_included_only_on_request() -> None:
    record = parse_message(_message(), include_headers=True)
    assert not isinstance(record, Rejected)
    assert ["Subject", "Quarterly report"] in record["headers"]


def test_message_over_the_size_cap_is_rejected_with_its_size() -> None:
    raw = _message()
    result = parse_message(raw, limits=Limits(max_message_bytes=100))
    assert isinstance(result, Rejected)
    assert result.code == "too-large"
    assert str(len(raw)) in result.reason


def test_attachment_over_its_cap_is_rejected() -> None:
    result = parse_message(_message(b"x" * 5000), limits=Limits(max_attachment_bytes=4096))
    assert isinstance(result, Rejected)
    assert (result.code, result.category) == ("attachment-too-large", "bad-input")


def test_attachments_are_stored_under_their_hash_never_their_name(tmp_path: Path) -> None:
    record = parse_message(_message(b"secret", filename="../../evil.sh"), attachment_dir=tmp_path)
    assert not isinstance(record, Rejected)
    digest = hashlib.sha256(b"secret").hexdigest()
    assert [p.name for p in tmp_path.iterdir()] == [digest]
    assert (tmp_path / digest).read_bytes() == b"secret"
    assert record["attachments"][0]["name"] == "evil.sh"


def test_stored_attachment_is_private_to_its_owner(tmp_path: Path) -> None:
    digest = store_attachment(tmp_path, b"data")
    assert stat.S_IMODE((tmp_path / digest).stat().st_mode) == 0o600


def test_storing_the_same_content_twice_keeps_one_file(tmp_path: Path) -> None:
    assert store_attachment(tmp_path, b"same") == store_attachment(tmp_path, b"same")
    assert len(list(tmp_path.iterdir())) == 1


def test_header_fast_path_reads_the_same_header_fields_as_the_full_parse() -> None:
    raw = _message(b"pdf")
    head = raw.split(b"\n\n", 1)[0] + b"\n\n"
    fast = parse_headers(head)
    full = parse_message(raw)
    assert not isinstance(fast, Rejected) and not isinstance(full, Rejected)
    for field in ("message_id", "from", "to", "cc", "subject", "date", "thread"):
        assert fast[field] == full[field]
    assert "text" not in fast


def test_key_is_the_message_id_or_else_the_content_hash() -> None:
    with_id = parse_message(_message())
    raw = b"From: a@example.com\r\nSubject: anonymous\r\n\r\nbody\r\n"
    without_id = parse_message(raw)
    assert not isinstance(with_id, Rejected) and not isinstance(without_id, Rejected)
    assert message_key(with_id) == "<report-1@example.com>"
    assert message_key(without_id) == "sha256:" + hashlib.sha256(raw).hexdigest()


def test_raw_kept_for_a_dead_letter_restores_the_exact_bytes() -> None:
    raw = b"\x00\xff\r\nnot mail\xe9"
    kept = raw_for_problem(raw)
    assert base64.b64decode(kept.removeprefix("base64:")) == raw


def test_text_from_html_keeps_paragraphs_and_drops_scripts() -> None:
    html = "<style>x{}</style><h1>Hi&nbsp;there</h1><script>evil()</script><p>a<br>b</p>"
    assert html_to_text(html) == "Hi there\n\na\nb"
