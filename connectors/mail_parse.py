"""One RFC 5322 message (bytes) -> one plain-JSON record, without ever raising.

Mail comes from strangers, so nothing in it is trusted: a header that does not parse, a charset
Python has never heard of or a MIME tree with no end each become either a clean value plus a named
entry in the record's `defects`, or a `Rejected` result (category "bad-input") that the connector
turns into a dead letter with the raw bytes kept. A sync pass must never stop because one message
is odd, and no message may vanish without a trace.

The record is built from `email.policy.default`; where that policy hands back surrogate-escaped
bytes or raises on a broken construct, the helpers below fall back to a lossless-as-possible value
and say so in `defects`.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import tempfile
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser, BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, TypeVar

JSON = Any
T = TypeVar("T")

# left@right, both non-empty: a junk id such as "<@>" would give unrelated messages one key.
_MSGID = re.compile(r"<[^<>\s@]+@[^<>\s@]+>")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]")
_BODY_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SINGLE_HEADERS = ("subject", "date", "message-id", "in-reply-to", "from", "reply-to")


@dataclass(frozen=True, slots=True)
class Limits:
    """Caps that turn a hostile or absurd message into one clear dead letter, not a stalled pass."""

    max_message_bytes: int = 50 * 1024 * 1024
    max_parts: int = 500
    max_attachment_bytes: int = 25 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Rejected:
    """A message that cannot become a record; `code` is stable for reporting, `reason` is for humans."""

    code: str
    reason: str
    category: str = "bad-input"


def content_hash(raw: bytes) -> str:
    """The key of a message with no usable Message-ID, and half of its identity across UIDVALIDITY."""
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def raw_for_problem(raw: bytes) -> str:
    """Raw bytes as text a dead letter can store, so a rejected message can be recovered exactly."""
    return "base64:" + base64.b64encode(raw).decode("ascii")


def message_key(record: dict[str, JSON]) -> str:
    """Record key: the Message-ID when there is one, else the content hash."""
    mid = record.get("message_id")
    return str(mid) if mid else str(record["content_hash"])


def parse_message(
    raw: bytes,
    *,
    internal_date: datetime | None = None,
    limits: Limits | None = None,
    include_headers: bool = False,
    attachment_dir: Path | None = None,
) -> dict[str, JSON] | Rejected:
    """The full record of one message, or why it cannot be one.

    `internal_date` (the IMAP INTERNALDATE) stands in when the Date header is missing or broken.
    With `attachment_dir`, each attachment's bytes are stored there under their SHA-256 (never
    under the sender's file name).
    """
    limits = limits or Limits()
    if len(raw) > limits.max_message_bytes:
        return Rejected(
            "too-large", f"message is {len(raw)} bytes, over the cap of {limits.max_message_bytes}"
        )
    if not raw.strip():
        return Rejected("empty", "message has no content")
    try:
        msg = BytesParser(policy=policy.default).parsebytes(raw)
        assert isinstance(msg, EmailMessage)
        defects: list[str] = []
        record = _header_fields(msg, raw, internal_date, defects)
        body = _Body(limits, attachment_dir, defects)
        rejected = body.collect(msg)
        if rejected is not None:
            return rejected
        text = body.text
        if text is None and body.html is not None:
            text = html_to_text(body.html)
        record.update(text=text, html=body.html, attachments=body.attachments, size=len(raw))
        if include_headers:
            record["headers"] = _raw_headers(msg)
        record["defects"] = sorted(set(defects))
        return record
    except Exception as exc:  # a parser bug on hostile input must not stop the pass
        return Rejected("unparseable", f"{type(exc).__name__}: {_clean(str(exc))[:200]}")


def parse_headers(raw_headers: bytes, *, internal_date: datetime | None = None) -> dict[str, JSON] | Rejected:
    """Header fields only (about 9x faster than a full parse): enough to filter before fetching bodies.

    `content_hash` here is the hash of the header bytes given, not of the whole message.
    """
    try:
        msg = BytesHeaderParser(policy=policy.default).parsebytes(raw_headers)
        assert isinstance(msg, EmailMessage)
        defects: list[str] = []
        record = _header_fields(msg, raw_headers, internal_date, defects)
        record["defects"] = sorted(set(defects))
        return record
    except Exception as exc:
        return Rejected("unparseable", f"{type(exc).__name__}: {_clean(str(exc))[:200]}")


def store_attachment(directory: Path, data: bytes) -> str:
    """Store content under its SHA-256 (mode 0600) and return the hash; storing it twice is a no-op.

    The sender's file name never becomes a path: names in mail are attacker-chosen.
    """
    digest = hashlib.sha256(data).hexdigest()
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / digest
    if target.exists():
        return digest
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return digest


def sanitise_filename(name: str | None) -> str | None:
    """A display-only name: no directories, no control characters, no leading dots, bounded length."""
    if not name:
        return None
    name = _clean(name)
    name = re.split(r"[/\\]", name)[-1]
    # Format characters (U+202E RIGHT-TO-LEFT OVERRIDE ...) make "invoice\u202efdp.exe" look like a PDF.
    name = "".join(ch for ch in unicodedata.normalize("NFC", name) if unicodedata.category(ch) != "Cf")
    name = name.strip().lstrip(".").strip()
    return name[:255] or None


# -- headers ----------------------------------------------------------------------------------


def _header_fields(
    msg: EmailMessage, raw: bytes, internal_date: datetime | None, defects: list[str]
) -> dict[str, JSON]:
    names = [n.lower() for n, _ in msg.raw_items()]  # raw: get_all() parses, and can raise on junk
    defects.extend(f"duplicate-header:{name}" for name in _SINGLE_HEADERS if names.count(name) > 1)
    message_id = _first_msgid(_header_text(msg, "message-id", defects))
    if message_id is None:
        defects.append("missing-message-id")
    in_reply_to = _first_msgid(_header_text(msg, "in-reply-to", defects))
    references = _MSGID.findall(" ".join(_all_header_texts(msg, "references", defects)))
    own_hash = content_hash(raw)
    thread = (references[0] if references else None) or in_reply_to or message_id or own_hash
    return {
        "message_id": message_id,
        "from": _addresses(msg, "from", defects),
        "to": _addresses(msg, "to", defects),
        "cc": _addresses(msg, "cc", defects),
        "reply_to": _addresses(msg, "reply-to", defects),
        "subject": _clean_line(_header_text(msg, "subject", defects)) or "",
        "date": _date(msg, internal_date, defects),
        "in_reply_to": in_reply_to,
        "references": references,
        "thread": thread,
        "content_hash": own_hash,
    }


def _header_text(msg: Message, name: str, defects: list[str]) -> str | None:
    values = _all_header_texts(msg, name, defects)
    return values[0] if values else None


def _all_header_texts(msg: Message, name: str, defects: list[str]) -> list[str]:
    """Decoded header values; falls back to the raw folded text if the policy's parser chokes."""
    out: list[str] = []
    for raw_name, raw_value in msg.raw_items():
        if raw_name.lower() != name:
            continue
        raw_value = _unescape_8bit(raw_value, name, defects)
        try:
            value: Any = msg.policy.header_fetch_parse(raw_name, raw_value)
            text = str(value)
            defects.extend(_defect_names(getattr(value, "defects", ()), name))
        except Exception:
            defects.append(f"header-unparseable:{name}")
            text = str(raw_value)
        if "\ufffd" in text:
            defects.append(f"undecodable-header:{name}")
        out.append(_clean(text))
    return out


def _unescape_8bit(raw_value: str, name: str, defects: list[str]) -> str:
    """Raw 8-bit header bytes (surrogate-escaped by the parser) as real text before parsing, so a
    Latin-1 subject reads "café" rather than "caf\ufffd"; RFC 6532 allows UTF-8 here, the rest is legacy."""
    if not any("\udc80" <= ch <= "\udcff" for ch in raw_value):
        return raw_value
    defects.append(f"8bit-header:{name}")
    return _clean(raw_value)


def _addresses(msg: Message, name: str, defects: list[str]) -> list[dict[str, str]]:
    pairs: list[tuple[str, str]] = []
    for raw_name, raw_value in msg.raw_items():
        if raw_name.lower() != name:
            continue
        raw_value = _unescape_8bit(raw_value, name, defects)
        try:
            value: Any = msg.policy.header_fetch_parse(raw_name, raw_value)
            pairs.extend((a.display_name, a.addr_spec) for a in value.addresses)
            defects.extend(_defect_names(value.defects, name))
        except Exception:
            defects.append(f"header-unparseable:{name}")
            pairs.extend(getaddresses([str(raw_value)]))
    out: list[dict[str, str]] = []
    for display, spec in pairs:
        address = _clean_line(spec).strip("<>").strip()
        local, at, domain = address.rpartition("@")
        if not (at and local and domain) or " " in address:
            defects.append(f"invalid-address:{name}")
            continue
        out.append({"name": _clean_line(display), "address": address})
    return out


def _date(msg: Message, internal_date: datetime | None, defects: list[str]) -> str | None:
    when: datetime | None = None
    text = _header_text(msg, "date", defects)
    if text:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            when = None
    if when is None:
        defects.append("date-missing-or-invalid" if text else "date-missing")
        when = internal_date
    if when is None:
        return None
    if when.tzinfo is None:  # "-0000": the sender does not know its zone; UTC is the honest reading
        when = when.replace(tzinfo=UTC)
    return when.isoformat()


def _first_msgid(text: str | None) -> str | None:
    if not text:
        return None
    found = _MSGID.search(text)
    if found:
        return found.group(0)
    bare = _MSGID.fullmatch(f"<{text.strip()}>")
    return bare.group(0) if bare else None


def _raw_headers(msg: Message) -> list[list[str]]:
    return [[_clean_line(name), _clean(str(value))] for name, value in msg.raw_items()]


def _defect_names(found: Iterable[object], where: str) -> list[str]:
    return [f"{type(d).__name__}:{where}" for d in found]


# -- bodies -----------------------------------------------------------------------------------


class _Body:
    """Walks the MIME tree once: first plain and HTML parts become the text, the rest attachments."""

    def __init__(self, limits: Limits, attachment_dir: Path | None, defects: list[str]) -> None:
        self.limits = limits
        self.attachment_dir = attachment_dir
        self.defects = defects
        self.text: str | None = None
        self.html: str | None = None
        self.attachments: list[dict[str, JSON]] = []
        self.parts = 0

    def collect(self, msg: Message) -> Rejected | None:
        stack: list[Message] = [msg]
        while stack:
            part = stack.pop()
            self.parts += 1
            if self.parts > self.limits.max_parts:
                return Rejected("too-many-parts", f"more than {self.limits.max_parts} MIME parts")
            self.defects.extend(_defect_names(part.defects, "mime"))
            if part.is_multipart() and part.get_content_type() != "message/rfc822":
                children = part.get_payload()
                if isinstance(children, list):
                    stack.extend(c for c in reversed(children) if isinstance(c, Message))
                continue
            rejected = self._leaf(part)
            if rejected is not None:
                return rejected
        return None

    def _leaf(self, part: Message) -> Rejected | None:
        ctype = part.get_content_type()
        disposition = _safe(part.get_content_disposition, None)
        filename = _safe(part.get_filename, None)
        is_attachment = disposition == "attachment" or filename is not None
        if not is_attachment and ctype == "text/plain" and self.text is None:
            self.text = self._decoded_text(part)
            return None
        if not is_attachment and ctype == "text/html" and self.html is None:
            self.html = self._decoded_text(part)
            return None
        if not is_attachment and ctype.startswith("multipart/"):
            # A multipart with no parsable boundary arrives as a leaf; its text is all we can offer.
            self.defects.append("multipart-without-parts")
            if self.text is None:
                self.text = self._decoded_text(part)
            return None
        data = _payload_bytes(part)
        if len(data) > self.limits.max_attachment_bytes:
            return Rejected(
                "attachment-too-large",
                f"attachment of {len(data)} bytes is over the cap of {self.limits.max_attachment_bytes}",
            )
        digest = hashlib.sha256(data).hexdigest()
        if self.attachment_dir is not None:
            store_attachment(self.attachment_dir, data)
        self.attachments.append(
            {
                "name": sanitise_filename(filename),
                "content_type": ctype,
                "size": len(data),
                "sha256": digest,
            }
        )
        return None

    def _decoded_text(self, part: Message) -> str:
        data = _payload_bytes(part)
        charset = part.get_content_charset() or "us-ascii"
        try:
            text = data.decode(charset)
        except LookupError:
            self.defects.append("unknown-charset")
            text = data.decode("utf-8", errors="replace")
        except UnicodeDecodeError:
            self.defects.append("undecodable-body")
            text = data.decode(charset, errors="replace")
        return _BODY_CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def _payload_bytes(part: Message) -> bytes:
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload()
        if isinstance(inner, list) and inner and isinstance(inner[0], Message):
            return _safe(inner[0].as_bytes, b"")
    data = part.get_payload(decode=True)
    if isinstance(data, bytes):
        return data
    payload = part.get_payload()
    return payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else b""


def _safe(call: Callable[[], T], default: T) -> T:
    try:
        return call()
    except Exception:
        return default


# -- text cleaning ----------------------------------------------------------------------------


def _clean(text: str) -> str:
    """Valid Unicode without control characters: 8-bit bytes smuggled in as surrogates are read as
    UTF-8 when they are UTF-8, else as Windows-1252 (what senders of raw 8-bit headers mostly mean)."""
    if any("\udc80" <= ch <= "\udcff" for ch in text):
        data = text.encode("utf-8", "surrogateescape")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("cp1252", errors="replace")
    text = text.encode("utf-8", "replace").decode("utf-8")
    return _CONTROL.sub("", text.replace("\t", " ").replace("\r", ""))


def _clean_line(text: str | None) -> str:
    return " ".join(_clean(text or "").split())


class _TextFromHtml(HTMLParser):
    _SKIP = frozenset({"script", "style", "head", "title"})
    _BREAK = frozenset(
        {"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "blockquote"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self.skipping += 1
        elif tag in self._BREAK:
            self.chunks.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self._BREAK:
            self.chunks.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.chunks.append(data)


def html_to_text(html: str) -> str:
    """Readable plain text from an HTML body (stdlib only: the text is for matching and display)."""
    parser = _TextFromHtml()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.chunks).splitlines())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
