"""Every hostile or broken message in tests/data/mail/ is accounted for: a clean record or a reasoned
rejection, never an exception. Each file is named for its hazard (see tests/data/mail/README.md)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.mail_parse import Rejected, parse_message

CORPUS = Path(__file__).resolve().parents[1] / "data" / "mail"
INTERNAL_DATE = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
FILES = sorted(CORPUS.glob("*.eml"))

Check = Callable[[dict[str, Any]], object]


def _name(record: dict[str, Any]) -> str | None:
    name: str | None = record["attachments"][0]["name"]
    return name


EXPECTED: dict[str, Check] = {
    "encoded-word-subject-utf8": lambda r: _eq(r["subject"], "Réunion à 10h ✓"),
    "encoded-word-unknown-charset": lambda r: _has(r["defects"], "undecodable-header:subject"),
    "encoded-word-malformed": lambda r: _eq("\n" in r["subject"], False),
    "body-unknown-charset": lambda r: (
        _has(r["defects"], "unknown-charset"),
        _eq(r["text"], "caf\ufffd au lait\n"),
    ),
    "body-wrong-charset-label": lambda r: _has(r["defects"], "undecodable-body"),
    "header-8bit-utf8": lambda r: (_eq(r["subject"], "Grüße aus Köln"), _eq(r["from"][0]["name"], "Jürgen")),
    "header-8bit-latin1": lambda r: (_eq(r["subject"], "café crème"), _eq(r["from"][0]["name"], "François")),
    "date-invalid": lambda r: _eq(r["date"], INTERNAL_DATE.isoformat()),
    "date-missing": lambda r: (_eq(r["date"], INTERNAL_DATE.isoformat()), _has(r["defects"], "date-missing")),
    "date-unknown-timezone": lambda r: _eq(r["date"], "2026-11-02T10:00:00+00:00"),
    "date-out-of-range": lambda r: _eq(r["date"], INTERNAL_DATE.isoformat()),
    "duplicate-subject": lambda r: (
        _eq(r["subject"], "First subject"),
        _has(r["defects"], "duplicate-header:subject"),
    ),
    "duplicate-message-id": lambda r: _eq(r["message_id"], "<first@corpus.example>"),
    "duplicate-to-headers": lambda r: _eq(
        [a["address"] for a in r["to"]], ["bob@example.com", "carol@example.com"]
    ),
    "missing-message-id": lambda r: (_eq(r["message_id"], None), _eq(r["thread"], r["content_hash"])),
    "message-id-without-brackets": lambda r: _eq(r["message_id"], "<bare-id@corpus.example>"),
    "message-id-garbage": lambda r: _eq(r["message_id"], None),
    "message-id-crashes-stdlib-parser": lambda r: (
        _eq(r["message_id"], None),
        _eq(r["references"], ["<real-parent@corpus.example>"]),
        _has(r["defects"], "header-unparseable:message-id"),
    ),
    "multipart-missing-boundary": lambda r: (
        _has(r["defects"], "multipart-without-parts"),
        _in("lost", r["text"]),
    ),
    "multipart-unterminated": lambda r: (_eq(r["text"], "first part"), _eq(_name(r), "cut.txt")),
    "base64-invalid-padding": lambda r: _eq(_name(r), "data.bin"),
    "attachment-path-traversal": lambda r: _eq(_name(r), "passwd"),
    "attachment-windows-path": lambda r: _eq(_name(r), "evil.dll"),
    "attachment-rfc2231-name": lambda r: _eq(_name(r), "résumé final.pdf"),
    "attachment-control-chars-name": lambda r: _eq(_name(r), "invoice.pdf"),
    "attachment-rtl-override-name": lambda r: _eq(_name(r), "invoicefdp.exe"),
    "attachment-dotfile-name": lambda r: _eq(_name(r), "bashrc"),
    "attachment-no-name": lambda r: (
        _eq(_name(r), None),
        _eq(r["attachments"][0]["content_type"], "image/png"),
    ),
    "html-only": lambda r: (_eq(r["text"], "Order #42 & more\n\nThanks"), _in("<p>", r["html"])),
    "nested-message-rfc822": lambda r: _eq(r["attachments"][0]["content_type"], "message/rfc822"),
    "subject-encoded-crlf-injection": lambda r: _eq(r["subject"], "hello Bcc: victim@example.com"),
    "addresses-invalid": lambda r: (
        _eq([a["address"] for a in r["to"]], ["good@example.com"]),
        _has(r["defects"], "invalid-address:to"),
    ),
    "from-missing": lambda r: _eq(r["from"], []),
    "display-name-encoded-comma": lambda r: _eq(
        r["reply_to"], [{"name": "Doe, John", "address": "john@example.com"}]
    ),
    "header-very-long-line": lambda r: _eq(r["subject"].startswith("long word word"), True),
    "body-nul-bytes": lambda r: _eq(r["text"], "beforeafter\n"),
    "headers-only-no-body": lambda r: (_eq(r["subject"], "no body"), _eq(r["text"], "")),
    "lf-line-endings": lambda r: _eq(r["text"], "line one\nline two\n"),
    "binary-garbage": lambda r: _eq(r["message_id"], None),
    "deeply-nested-multipart": lambda r: _eq(r["text"], "deep"),
    "references-chain-with-junk": lambda r: (
        _eq(r["references"], ["<root@corpus.example>", "<mid@corpus.example>", "<parent@corpus.example>"]),
        _eq(r["thread"], "<root@corpus.example>"),
        _eq(r["in_reply_to"], "<parent@corpus.example>"),
    ),
    "in-reply-to-only": lambda r: _eq(r["thread"], "<only-parent@corpus.example>"),
    "quoted-printable-broken": lambda r: _in("café", r["text"]),
    "content-type-garbage": lambda r: _eq(r["text"], "plain after all\n"),
    "transfer-encoding-unknown": lambda r: _eq(r["text"], "raw text\n"),
    "header-line-without-colon": lambda r: _has(r["defects"], "MissingHeaderBodySeparatorDefect:mime"),
    "leading-blank-line": lambda r: _in("From: Alice", r["text"]),
    "utf16-body-no-bom": lambda r: _in("hé", r["text"]),
}

REJECTED: dict[str, str] = {"empty-file": "empty", "too-many-parts": "too-many-parts"}


def _eq(actual: object, expected: object) -> bool:
    assert actual == expected
    return True


def _in(needle: str, haystack: str | None) -> bool:
    assert haystack is not None and needle in haystack
    return True


def _has(defects: list[str], name: str) -> bool:
    assert name in defects, defects
    return True


def test_corpus_has_at_least_thirty_distinct_hazards() -> None:
    assert len(FILES) >= 30


def test_every_corpus_file_has_an_expected_outcome() -> None:
    assert {f.stem for f in FILES} == set(EXPECTED) | set(REJECTED)


def test_readme_lists_every_corpus_file() -> None:
    readme = (CORPUS / "README.md").read_text()
    missing = [f.name for f in FILES if f"`{f.name}`" not in readme]
    assert not missing


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_corpus_message_is_accounted_for(path: Path) -> None:
    result = parse_message(path.read_bytes(), internal_date=INTERNAL_DATE)
    if path.stem in REJECTED:
        assert isinstance(result, Rejected)
        assert result.code == REJECTED[path.stem]
        assert result.category == "bad-input"
        return
    assert not isinstance(result, Rejected), result
    EXPECTED[path.stem](result)


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_corpus_record_holds_only_clean_text(path: Path) -> None:
    result = parse_message(path.read_bytes(), internal_date=INTERNAL_DATE)
    if isinstance(result, Rejected):
        return
    single_lines = [
        result["subject"],
        *(a["name"] + a["address"] for k in ("from", "to", "cc") for a in result[k]),
    ]
    for value in single_lines:
        assert "\n" not in value and "\r" not in value
        assert not any("\udc80" <= ch <= "\udcff" for ch in value)
    for attachment in result["attachments"]:
        name = attachment["name"] or ""
        assert "/" not in name and "\\" not in name
