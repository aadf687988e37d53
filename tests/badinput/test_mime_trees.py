"""Random MIME trees and headers through the mail parser: a record or a reasoned refusal, never a crash.

`parse_message` catches every exception and answers Rejected("unparseable", ...) — so "never raises"
alone would prove nothing. The properties here are stronger: a structurally valid tree of any shape
(nested multiparts, attached messages, unknown charsets and transfer encodings, hostile file names
and encoded words) always parses to a record, its texts are clean strings, and attachments are
stored only under their SHA-256 inside the attachment folder, whatever name the sender gave.
"""

from __future__ import annotations

import base64
import itertools
import quopri
import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.mail_parse import Rejected, parse_message

_boundaries = itertools.count()
CHARSETS = ["utf-8", "iso-8859-1", "windows-1252", "x-unknown-charset", "utf-7", "", "us-ascii"]
ENCODINGS = ["7bit", "8bit", "base64", "quoted-printable", "x-uuencode", "binary", "bogus"]
NAMES = [
    "../../etc/passwd",
    "..\\..\\windows\\system32\\evil.dll",
    "/absolute/path.txt",
    "invoice\u202efdp.exe",
    "=?utf-8?b?Li4vLi4vZXRjL3Bhc3N3ZA==?=",
    ".hidden",
    "nul\x00byte.txt",
    "a" * 400,
    "report.pdf",
]
header_text = st.one_of(
    st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\r\n"), max_size=60),
    st.sampled_from(
        ["=?utf-8?q?caf=C3=A9?=", "=?bogus?x?zz?=", "=?utf-8?b?!!!?=", "<>", "@", ",,,", '"unclosed']
    ),
)


def encode(body: bytes, encoding: str) -> bytes:
    if encoding == "base64":
        return base64.encodebytes(body)
    if encoding == "quoted-printable":
        return quopri.encodestring(body)
    return body


@st.composite
def leaves(draw: st.DrawFn) -> bytes:
    kind = draw(
        st.sampled_from(["text/plain", "text/html", "application/octet-stream", "image/png", "text/x-odd"])
    )
    charset = draw(st.sampled_from(CHARSETS))
    encoding = draw(st.sampled_from(ENCODINGS))
    body = draw(st.binary(max_size=200) | st.text(max_size=200).map(lambda t: t.encode("utf-8")))
    headers = [f"Content-Type: {kind}" + (f"; charset={charset}" if charset else "")]
    headers.append(f"Content-Transfer-Encoding: {encoding}")
    if draw(st.booleans()):
        name = draw(st.sampled_from(NAMES) | header_text)
        headers.append(f'Content-Disposition: attachment; filename="{name}"')
    return "\r\n".join(headers).encode("utf-8", "surrogateescape") + b"\r\n\r\n" + encode(body, encoding)


def multipart(parts: list[bytes], subtype: str) -> bytes:
    boundary = f"b{next(_boundaries)}x"
    out = [f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\npreamble\r\n'.encode()]
    for part in parts:
        out.append(f"--{boundary}\r\n".encode() + part + b"\r\n")
    out.append(f"--{boundary}--\r\nepilogue\r\n".encode())
    return b"".join(out)


def attached_message(inner: bytes) -> bytes:
    return b"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\nFrom: a@b.example\r\n" + inner


trees = st.recursive(
    leaves(),
    lambda inner: st.one_of(
        st.tuples(
            st.lists(inner, min_size=1, max_size=4),
            st.sampled_from(["mixed", "alternative", "related", "signed", "weird"]),
        ).map(lambda t: multipart(*t)),
        inner.map(attached_message),
    ),
    max_leaves=8,
)


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    headers = [
        f"From: {draw(header_text)} <{draw(st.sampled_from(['a@b.example', 'bad', '', '<@>', 'x@[1.2.3.4]']))}>",
        f"To: {draw(header_text)}",
        f"Subject: {draw(header_text)}",
        f"Date: {draw(st.sampled_from(['Mon, 23 Nov 2026 09:00:00 +0000', 'yesterday', '', 'Mon, 99 Foo 1800 99:99:99 +9999']))}",
        f"Message-ID: {draw(st.sampled_from(['<m@x.example>', '', '<<>>', 'no-brackets', '<a@b> <c@d>']))}",
        "MIME-Version: 1.0",
    ]
    headers += [f"X-Random-{i}: {v}" for i, v in enumerate(draw(st.lists(header_text, max_size=3)))]
    head = "\r\n".join(headers).encode("utf-8", "surrogateescape") + b"\r\n"
    return head + draw(trees)


@given(raw=messages())
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
def test_any_mime_tree_parses_to_a_clean_record(raw: bytes, tmp_path: Path) -> None:
    store = tmp_path / "attachments"
    result = parse_message(raw, attachment_dir=store)
    assert not isinstance(result, Rejected) or result.category != "unparseable", result
    if isinstance(result, Rejected):
        return
    for name in ("subject", "text", "html"):
        value = result[name]
        assert value is None or isinstance(value, str)
    assert isinstance(result["subject"], str | None) and "\n" not in (result["subject"] or "")
    attachments = result["attachments"]
    assert isinstance(attachments, list)
    for attachment in attachments:
        assert isinstance(attachment, dict)
        shown = attachment["name"]
        assert shown is None or (
            "/" not in str(shown) and "\\" not in str(shown) and not str(shown).startswith(".")
        )
    if store.exists():
        for stored in store.iterdir():
            assert re.fullmatch(r"[0-9a-f]{64}", stored.name), stored.name
            assert stored.stat().st_mode & 0o777 == 0o600
