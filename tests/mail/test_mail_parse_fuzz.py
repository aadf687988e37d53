"""Property: no byte string, however broken, makes mail_parse raise or hand back dirty text."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.mail_parse import Rejected, parse_headers, parse_message

CORPUS = sorted((Path(__file__).resolve().parents[1] / "data" / "mail").glob("*.eml"))
SEEDS = [p.read_bytes() for p in CORPUS if p.stat().st_size < 20_000]

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _assert_clean(result: dict[str, object] | Rejected) -> None:
    if isinstance(result, Rejected):
        assert result.category == "bad-input" and result.reason
        return
    subject = result["subject"]
    assert isinstance(subject, str) and "\n" not in subject
    assert not any("\udc80" <= ch <= "\udcff" for ch in subject)


@FUZZ
@given(st.binary(max_size=3000))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    _assert_clean(parse_message(raw))
    _assert_clean(parse_headers(raw))


@FUZZ
@given(st.sampled_from(SEEDS), st.data())
def test_corrupted_corpus_messages_never_raise(seed: bytes, data: st.DataObject) -> None:
    at = data.draw(st.integers(0, len(seed)))
    cut = data.draw(st.integers(0, 40))
    junk = data.draw(
        st.binary(max_size=40) | st.sampled_from([b"\r\n", b"\n\n", b"=?", b"?=", b"--", b"\x00", b":"])
    )
    _assert_clean(parse_message(seed[:at] + junk + seed[at + cut :]))
