"""Mapped fields -> one outgoing RFC 5322 message, for IMAP APPEND and SMTP alike.

Header values are checked here, by syncd, rather than trusted to `email.generator`: the CPython on
these machines lacks the fixes for the header-injection CVEs (CVE-2024-6923, CVE-2026-1299), so a
CR or LF smuggled into a subject or a name must be refused before the library ever sees it. Every
refusal is a per-record `RecordError` ("validation"), so one bad row never stops its batch.

The Message-ID is derived from the write's idempotency key when the mapping gives none: the same
change always produces the same Message-ID, which is what lets IMAP find a previous APPEND and
SMTP recognise a resend.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.headerregistry import Address, HeaderRegistry
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses
from pathlib import Path
from typing import Any

from email_validator import EmailNotValidError, validate_email

from syncd.errors import RecordError

_MSGID = re.compile(r"<[^<>\s@]+@[^<>\s@]+>")
# CR, LF and NUL, and every other character str.splitlines() breaks on (the email package folds and
# refuses by splitlines, so U+2028 or U+0085 in a subject raised ValueError out of the connector).
_FORBIDDEN = re.compile(r"[\r\n\x00\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_HEADERS = HeaderRegistry()


def make_message_id(seed: str, domain: str = "syncd.invalid") -> str:
    """A Message-ID that is the same every time for the same seed (the write's idempotency key)."""
    return f"<{hashlib.sha256(seed.encode('utf-8')).hexdigest()[:40]}@{domain}>"


def header_text(name: str, value: Any) -> str:
    """A header value that cannot inject other headers: CR, LF and NUL are refused, not stripped."""
    text = "" if value is None else str(value)
    if _FORBIDDEN.search(text):
        raise RecordError(
            "validation", f"{name} contains a line break or NUL", code="HEADER_INJECTION", field=name
        )
    return text


def addresses(name: str, value: Any) -> list[Address]:
    """Addresses from a string ("a@x, B <b@y>"), a list of strings or a list of {name, address}."""
    items: list[tuple[str, str]] = []
    if value is None or value == "" or value == []:
        return []
    if isinstance(value, str):
        items = _address_list(name, value)
    elif isinstance(value, Sequence):
        for item in value:
            if isinstance(item, Mapping):
                items.append(
                    (header_text(name, item.get("name") or ""), header_text(name, item.get("address")))
                )
            else:
                items.extend(_address_list(name, item))
    else:
        raise RecordError("validation", f"{name} must be text or a list", code="INVALID_ADDRESS", field=name)
    out: list[Address] = []
    for display, spec in items:
        header_text(name, display)
        if "@" in display:  # "victim@bank.example" <evil@evil.example> shows the victim's address
            raise RecordError(
                "validation",
                f"{name}: a display name may not hold an address",
                code="INVALID_ADDRESS",
                field=name,
            )
        try:
            checked = validate_email(spec, check_deliverability=False, allow_smtputf8=True)
        except EmailNotValidError as exc:
            raise RecordError("validation", f"{name}: {exc}", code="INVALID_ADDRESS", field=name) from exc
        local, _, domain = checked.normalized.rpartition("@")
        out.append(Address(display_name=display, username=local, domain=domain))
    return out


def _address_list(name: str, value: Any) -> list[tuple[str, str]]:
    """(display name, address) pairs of an address-list text, refused unless it parses cleanly.

    This CPython's `getaddresses` lacks the CVE-2023-27043 fix and reads "evil@x <victim@y>" as two
    addresses, and "a@y\tBcc: b@z" as the addresses a@ybcc and b@z: a recipient smuggled in. The
    RFC 5322 parser of `email.headerregistry` is used instead, and any defect it reports, or any
    disagreement between the two parsers, refuses the record.
    """
    text = header_text(name, value)
    try:  # an encoded word can decode to a line break, which Address() refuses with ValueError
        parsed = _HEADERS("To", text)
        found = [(a.display_name, a.addr_spec) for a in parsed.addresses]  # type: ignore[attr-defined]
    except ValueError as exc:
        raise RecordError("validation", f"{name}: {exc}", code="INVALID_ADDRESS", field=name) from exc
    if parsed.defects or [spec for _, spec in found] != [spec for _, spec in getaddresses([text])]:
        raise RecordError(
            "validation", f"{name}: not a clean list of addresses", code="INVALID_ADDRESS", field=name
        )
    return found


def message_ids(name: str, value: Any) -> list[str]:
    if value is None or value == "":
        return []
    raw = value if isinstance(value, list) else header_text(name, value).split()
    ids = [header_text(name, v).strip() for v in raw]
    for mid in ids:
        if not _MSGID.fullmatch(mid):
            raise RecordError(
                "validation", f"{name}: not a Message-ID", code="INVALID_MESSAGE_ID", field=name
            )
    return ids


def build_message(
    fields: Mapping[str, Any],
    *,
    message_id: str,
    attachment_dir: Path | None = None,
) -> EmailMessage:
    """One message from mapped fields: from, to, cc, reply_to, subject, text, html, in_reply_to,
    references, date, attachments ([{sha256, name, content_type}], read from `attachment_dir`)."""
    msg = EmailMessage()
    sender = addresses("from", fields.get("from"))
    if len(sender) > 1:
        raise RecordError("validation", "from must be one address", code="INVALID_ADDRESS", field="from")
    if sender:
        msg["From"] = sender
    for field, header in (("to", "To"), ("cc", "Cc"), ("reply_to", "Reply-To")):
        found = addresses(field, fields.get(field))
        if found:
            msg[header] = found
    msg["Subject"] = header_text("subject", fields.get("subject"))
    msg["Date"] = _date(fields.get("date"))
    msg["Message-ID"] = message_ids("message_id", message_id)[0]
    in_reply_to = message_ids("in_reply_to", fields.get("in_reply_to"))
    references = message_ids("references", fields.get("references"))
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to[0]
        if not references:
            references = in_reply_to
    if references:
        msg["References"] = " ".join(references)
    text = fields.get("text")
    html = fields.get("html")
    msg.set_content("" if text is None else str(text))
    if html is not None:
        msg.add_alternative(str(html), subtype="html")
    for attachment in fields.get("attachments") or []:
        _attach(msg, attachment, attachment_dir)
    for field, value in fields.items():
        if field.startswith("attachment:") and value not in (None, ""):
            _attach_inline(msg, field.removeprefix("attachment:"), value)
    return msg


def _attach_inline(msg: EmailMessage, name: str, content: Any) -> None:
    """A mapped field named `attachment:report.csv` becomes that file, its value the content.

    This is how a mapping attaches what it computed (a CSV of a client's stock) without a store.
    """
    filename = header_text("attachment", name).replace("/", "_").replace("\\", "_") or "attachment"
    ctype = mimetypes.guess_type(filename)[0] or "text/plain"
    maintype, _, subtype = ctype.partition("/")
    data = content.encode("utf-8") if isinstance(content, str) else str(content).encode("utf-8")
    msg.add_attachment(data, maintype=maintype, subtype=subtype or "plain", filename=filename)


def _date(value: Any) -> str:
    if value is None or value == "":
        return format_datetime(datetime.now(UTC))
    try:
        when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise RecordError("validation", "date is not ISO 8601", code="INVALID_DATE", field="date") from exc
    return format_datetime(when if when.tzinfo else when.replace(tzinfo=UTC))


def _attach(msg: EmailMessage, attachment: Any, attachment_dir: Path | None) -> None:
    if not isinstance(attachment, Mapping) or not _SHA256.fullmatch(str(attachment.get("sha256", ""))):
        raise RecordError(
            "validation", "attachment needs a sha256", code="INVALID_ATTACHMENT", field="attachments"
        )
    if attachment_dir is None:
        raise RecordError(
            "validation", "no attachment store configured", code="NO_STORE", field="attachments"
        )
    path = attachment_dir / str(attachment["sha256"])
    if not path.is_file():
        raise RecordError(
            "not-found", "attachment content not in the store", code="NO_CONTENT", field="attachments"
        )
    name = (
        header_text("attachments", attachment.get("name") or "attachment")
        .replace("/", "_")
        .replace("\\", "_")
    )
    ctype = str(attachment.get("content_type") or mimetypes.guess_type(name)[0] or "application/octet-stream")
    maintype, _, subtype = ctype.partition("/")
    msg.add_attachment(path.read_bytes(), maintype=maintype, subtype=subtype or "octet-stream", filename=name)
