"""The IMAP connector against a real Dovecot on loopback: reads, cursors, UIDVALIDITY, APPEND, post-actions, IDLE."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from imapclient import IMAPClient  # type: ignore[import-untyped]

from connectors.imap import ImapConnector
from connectors.mail_settings import ImapSettings
from syncd.errors import ConfigError, ConnectionDown
from syncd.records import Batch, Op, Telemetry, WriteOp, set_telemetry, telemetry

from .dovecot import Account, Dovecot
from .split_proxy import SplitProxy

CORPUS = Path(__file__).resolve().parents[1] / "data" / "mail"


def _settings(account: Account, **extra: Any) -> ImapSettings:
    base: dict[str, Any] = {
        "host": account.host,
        "port": account.port,
        "security": "none",
        "username": account.username,
        "password": account.password,
        "folders": ["INBOX"],
        "read_timeout_seconds": 10,
    }
    return ImapSettings(**{**base, **extra})


@pytest.fixture
def connector(account: Account) -> Iterator[ImapConnector]:
    conn = ImapConnector("mail", _settings(account))
    yield conn
    conn.close()


@pytest.fixture
def other(account: Account) -> Iterator[IMAPClient]:
    """A second client, standing in for the people and systems that deliver and move mail."""
    client = IMAPClient(account.host, port=account.port, ssl=False, timeout=10)
    client.login(account.username, account.password)
    yield client
    client.logout()


def _mail(n: int | str, subject: str = "", message_id: bool = True, size: int = 0) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Client <client@example.com>"
    msg["To"] = "helpdesk@example.com"
    msg["Subject"] = subject or f"Order {n}"
    msg["Date"] = "Tue, 03 Nov 2026 09:30:00 +0000"
    if message_id:
        msg["Message-ID"] = f"<order-{n}@example.com>"
    msg.set_content(f"Order number {n}\n" + "x" * size)
    return msg.as_bytes()


def _read_all(
    conn: ImapConnector, cursor: Any = None, stream: str = "INBOX", **kw: Any
) -> tuple[list[Batch], Any]:
    batches = list(conn.read(stream, cursor, **kw))
    return batches, (batches[-1].cursor if batches else cursor)


def _keys(batches: list[Batch]) -> list[str]:
    return [r.key for b in batches for r in b.records]


def test_first_read_delivers_every_message_oldest_first(connector: ImapConnector, other: IMAPClient) -> None:
    for n in (1, 2, 3):
        other.append("INBOX", _mail(n))
    batches, cursor = _read_all(connector)
    assert _keys(batches) == ["<order-1@example.com>", "<order-2@example.com>", "<order-3@example.com>"]
    record = batches[0].records[0]
    assert record.fields["subject"] == "Order 1"
    assert record.fields["text"].startswith("Order number 1")
    assert cursor["folder"] == "INBOX" and cursor["last_uid"] == 3


def test_batches_are_cut_at_batch_size_each_with_its_own_cursor(account: Account, other: IMAPClient) -> None:
    for n in range(5):
        other.append("INBOX", _mail(n))
    conn = ImapConnector("mail", _settings(account, batch_size=2))
    try:
        batches, _ = _read_all(conn)
    finally:
        conn.close()
    assert [len(b.records) for b in batches] == [2, 2, 1]
    assert [b.cursor and b.cursor["last_uid"] for b in batches] == [2, 4, 5]


def test_bodies_fetched_in_small_groups_read_the_same_records(account: Account, other: IMAPClient) -> None:
    for n in range(4):
        other.append("INBOX", _mail(n, size=3000))
    small = ImapConnector("mail", _settings(account, fetch_bytes=5000))
    large = ImapConnector("mail", _settings(account))
    try:
        in_small_groups, _ = _read_all(small)
        in_one_fetch, _ = _read_all(large)
    finally:
        small.close()
        large.close()
    assert [r.fields for b in in_small_groups for r in b.records] == [
        r.fields for b in in_one_fetch for r in b.records
    ]
    assert len(_keys(in_small_groups)) == 4


def test_read_after_a_cursor_delivers_only_newer_messages(
    connector: ImapConnector, other: IMAPClient
) -> None:
    other.append("INBOX", _mail(1))
    _, cursor = _read_all(connector)
    other.append("INBOX", _mail(2))
    batches, _ = _read_all(connector, cursor)
    assert _keys(batches) == ["<order-2@example.com>"]


def test_cursor_at_the_newest_message_reads_nothing_despite_uid_star_repeat(
    connector: ImapConnector, other: IMAPClient
) -> None:
    other.append("INBOX", _mail(1))
    _, cursor = _read_all(connector)
    batches, _ = _read_all(connector, cursor)
    assert _keys(batches) == []


def test_reading_never_marks_mail_as_seen(connector: ImapConnector, other: IMAPClient) -> None:
    other.append("INBOX", _mail(1))
    _read_all(connector)
    other.select_folder("INBOX", readonly=True)
    flags = other.get_flags(other.search("ALL"))
    assert all(b"\\Seen" not in f for f in flags.values())


def test_flags_are_part_of_the_record(connector: ImapConnector, other: IMAPClient) -> None:
    other.append("INBOX", _mail(1), flags=[b"\\Flagged"])
    batches, _ = _read_all(connector)
    assert "\\Flagged" in batches[0].records[0].fields["flags"]


def test_message_without_message_id_is_keyed_by_content_hash(
    connector: ImapConnector, other: IMAPClient
) -> None:
    other.append("INBOX", _mail(1, message_id=False))
    batches, _ = _read_all(connector)
    assert _keys(batches)[0].startswith("sha256:")


def _recreate(client: IMAPClient, folder: str, messages: list[bytes]) -> None:
    client.delete_folder(folder)
    client.create_folder(folder)
    for raw in messages:
        client.append(folder, raw)


def test_uidvalidity_change_resumes_after_the_last_synced_message(
    account: Account, other: IMAPClient
) -> None:
    other.create_folder("Orders")
    first = [_mail(1), _mail(2), _mail(3)]
    for raw in first:
        other.append("Orders", raw)
    conn = ImapConnector("mail", _settings(account, folders=["Orders"]))
    try:
        _, cursor = _read_all(conn, stream="Orders")
        _recreate(other, "Orders", [*first, _mail(4)])  # restored from a backup, plus one new message
        batches, after = _read_all(conn, cursor, stream="Orders")
    finally:
        conn.close()
    assert after["uidvalidity"] != cursor["uidvalidity"]
    assert _keys(batches) == ["<order-4@example.com>"]


def test_uidvalidity_change_finds_a_last_message_without_message_id_by_hash(
    account: Account, other: IMAPClient
) -> None:
    other.create_folder("Orders")
    first = [_mail(1), _mail(2, message_id=False)]
    for raw in first:
        other.append("Orders", raw)
    conn = ImapConnector("mail", _settings(account, folders=["Orders"]))
    try:
        _, cursor = _read_all(conn, stream="Orders")
        assert cursor["last_key"].startswith("sha256:")
        _recreate(other, "Orders", [*first, _mail(3)])
        batches, _ = _read_all(conn, cursor, stream="Orders")
    finally:
        conn.close()
    assert _keys(batches) == ["<order-3@example.com>"]


def test_uidvalidity_change_without_the_last_message_rereads_the_folder(
    account: Account, other: IMAPClient
) -> None:
    other.create_folder("Orders")
    other.append("Orders", _mail(1))
    other.append("Orders", _mail(2))
    conn = ImapConnector("mail", _settings(account, folders=["Orders"]))
    try:
        _, cursor = _read_all(conn, stream="Orders")
        _recreate(other, "Orders", [_mail(1), _mail(5)])
        batches, _ = _read_all(conn, cursor, stream="Orders")
    finally:
        conn.close()
    # The engine matches by key, so <order-1> is recognised as already synced; nothing is lost.
    assert _keys(batches) == ["<order-1@example.com>", "<order-5@example.com>"]


def test_uidvalidity_change_with_nothing_new_still_moves_the_cursor(
    account: Account, other: IMAPClient
) -> None:
    other.create_folder("Orders")
    other.append("Orders", _mail(1))
    conn = ImapConnector("mail", _settings(account, folders=["Orders"]))
    try:
        _, cursor = _read_all(conn, stream="Orders")
        _recreate(other, "Orders", [_mail(1)])
        batches, after = _read_all(conn, cursor, stream="Orders")
    finally:
        conn.close()
    assert _keys(batches) == []
    assert after["uidvalidity"] != cursor["uidvalidity"]
    assert after["last_key"] == "<order-1@example.com>"


def test_header_filter_decides_which_bodies_are_read(connector: ImapConnector, other: IMAPClient) -> None:
    other.append("INBOX", _mail(1, subject="Invoice 1"))
    other.append("INBOX", _mail(2, subject="Newsletter"))
    batches, cursor = _read_all(connector, keep=lambda head: head["subject"].startswith("Invoice"))
    assert _keys(batches) == ["<order-1@example.com>"]
    assert cursor["last_uid"] == 2


def test_message_over_the_size_cap_becomes_a_problem_with_its_headers(
    account: Account, other: IMAPClient
) -> None:
    other.append("INBOX", _mail(1, size=5000))
    other.append("INBOX", _mail(2))
    conn = ImapConnector("mail", _settings(account, max_message_bytes=2000))
    try:
        batches, _ = _read_all(conn)
    finally:
        conn.close()
    problems = [p for b in batches for p in b.problems]
    assert _keys(batches) == ["<order-2@example.com>"]
    assert len(problems) == 1 and problems[0].message.startswith("too-large")
    assert problems[0].place == "INBOX uid 1" and problems[0].raw.startswith("base64:")


def test_too_many_parts_is_judged_from_bodystructure_without_fetching_the_body(
    account: Account, other: IMAPClient
) -> None:
    parts = "".join(f"--b\r\nContent-Type: text/plain\r\n\r\npart {i}\r\n" for i in range(6))
    raw = (
        "From: a@example.com\r\nMessage-ID: <many@example.com>\r\nSubject: many\r\n"
        'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n' + parts + "--b--\r\n"
    ).encode()
    other.append("INBOX", raw)
    other.append("INBOX", _mail(2))
    conn = ImapConnector("mail", _settings(account, max_parts=5))
    try:
        batches, _ = _read_all(conn)
    finally:
        conn.close()
    problems = [p for b in batches for p in b.problems]
    assert _keys(batches) == ["<order-2@example.com>"]
    assert len(problems) == 1 and problems[0].message == "too-many-parts: 6 MIME parts, over the cap of 5"


def _append_op(n: int, **fields: Any) -> WriteOp:
    base = {"from": "syncd@example.com", "to": "client@example.com", "subject": f"Draft {n}", "text": "Hello"}
    return WriteOp(Op.CREATE, {**base, **fields}, idempotency_key=f"draft-{n}")


def test_append_of_the_same_op_twice_stores_one_message(connector: ImapConnector, other: IMAPClient) -> None:
    first = connector.write("INBOX", [_append_op(1)])
    again = connector.write("INBOX", [_append_op(1)])
    other.select_folder("INBOX", readonly=True)
    assert len(other.search("ALL")) == 1
    assert first[0].ok and first[0].created
    assert again[0].ok and not again[0].created and again[0].key == first[0].key


def test_appended_message_reads_back_with_its_fields(connector: ImapConnector) -> None:
    [result] = connector.write("INBOX", [_append_op(1, in_reply_to="<order-9@example.com>")])
    batches, _ = _read_all(connector)
    [record] = [r for b in batches for r in b.records]
    assert record.key == result.key
    assert record.fields["in_reply_to"] == "<order-9@example.com>"
    assert record.fields["thread"] == "<order-9@example.com>"


def test_header_injection_fails_only_its_own_record(connector: ImapConnector, other: IMAPClient) -> None:
    results = connector.write(
        "INBOX", [_append_op(1, subject="Hi\r\nBcc: victim@example.com"), _append_op(2)]
    )
    assert not results[0].ok and results[0].error is not None
    assert results[0].error.category == "validation"
    assert results[1].ok
    other.select_folder("INBOX", readonly=True)
    assert len(other.search("ALL")) == 1


def test_delete_op_expunges_the_message(connector: ImapConnector, other: IMAPClient) -> None:
    other.append("INBOX", _mail(1))
    [result] = connector.write("INBOX", [WriteOp(Op.DELETE, {}, key="<order-1@example.com>")])
    assert result.ok
    other.select_folder("INBOX", readonly=True)
    assert other.search("ALL") == []


def test_find_returns_only_message_ids_present(connector: ImapConnector, other: IMAPClient) -> None:
    other.append("INBOX", _mail(1))
    found = connector.find("INBOX", "message_id", ["<order-1@example.com>", "<order-2@example.com>"])
    assert found == {"<order-1@example.com>": "<order-1@example.com>"}


def test_move_post_action_moves_the_message(connector: ImapConnector, other: IMAPClient) -> None:
    other.append("INBOX", _mail(1))
    other.append("INBOX", _mail(2))
    missing = connector.post_action(
        "INBOX", ["<order-1@example.com>", "<order-7@example.com>"], "move", "Archive"
    )
    assert missing == ["<order-7@example.com>"]
    other.select_folder("Archive", readonly=True)
    assert len(other.search(["HEADER", "Message-ID", "<order-1@example.com>"])) == 1
    other.select_folder("INBOX", readonly=True)
    assert other.search(["HEADER", "Message-ID", "<order-1@example.com>"]) == []
    assert len(other.search("ALL")) == 1


def test_move_without_the_move_extension_copies_deletes_and_expunges(dovecot_without_move: Dovecot) -> None:
    account = dovecot_without_move.account(1)
    conn = ImapConnector("mail", _settings(account))
    with IMAPClient(account.host, port=account.port, ssl=False, timeout=10) as client:
        client.login(account.username, account.password)
        assert b"MOVE" not in client.capabilities()
        client.append("INBOX", _mail(1))
        client.append("INBOX", _mail(2))
        try:
            assert conn.post_action("INBOX", ["<order-1@example.com>"], "move", "Archive") == []
        finally:
            conn.close()
        client.select_folder("Archive", readonly=True)
        assert len(client.search(["HEADER", "Message-ID", "<order-1@example.com>"])) == 1
        client.select_folder("INBOX", readonly=True)
        assert len(client.search("ALL")) == 1  # expunged, not just flagged \Deleted


def test_flag_post_action_finds_a_message_by_content_hash(
    connector: ImapConnector, other: IMAPClient
) -> None:
    other.append("INBOX", _mail(1, message_id=False))
    [key] = _keys(_read_all(connector)[0])
    assert connector.post_action("INBOX", [key], "flag") == []
    other.select_folder("INBOX", readonly=True)
    [flags] = other.get_flags(other.search("ALL")).values()
    assert b"\\Flagged" in flags and b"\\Seen" not in flags


def test_wrong_password_is_a_config_error_without_the_password(account: Account) -> None:
    conn = ImapConnector("mail", _settings(account, password="wrong-secret-123"))
    with pytest.raises(ConfigError) as caught:
        conn.connect()
    assert "wrong-secret-123" not in str(caught.value)


def test_reading_a_folder_that_does_not_exist_is_a_config_error(connector: ImapConnector) -> None:
    with pytest.raises(ConfigError, match="No-Such-Folder"):
        list(connector.read("No-Such-Folder", None))


def test_connection_dropped_between_batches_is_resumed_without_losing_mail(account: Account) -> None:
    with IMAPClient(account.host, port=account.port, ssl=False, timeout=10) as client:
        client.login(account.username, account.password)
        for n in (1, 2, 3):
            client.append("INBOX", _mail(n))
    conn = ImapConnector("mail", _settings(account, batch_size=1))
    try:
        batches = conn.read("INBOX", None)
        first = next(batches)
        account.server.doveadm("kick", account.username)
        rest = list(batches)
    finally:
        conn.close()
    assert _keys([first, *rest]) == [f"<order-{n}@example.com>" for n in (1, 2, 3)]


def test_clear_text_password_to_a_remote_host_is_refused_by_the_settings() -> None:
    with pytest.raises(ValueError, match="in clear"):
        ImapSettings(host="mail.example.com", security="none", username="u", password="p")


def test_every_corpus_message_appended_is_accounted_for(connector: ImapConnector, other: IMAPClient) -> None:
    stored: list[str] = []
    for path in sorted(CORPUS.glob("*.eml")):
        try:
            other.append("INBOX", path.read_bytes())
        except IMAPClient.Error:
            continue  # refused by the server itself (e.g. empty); never reaches a reader
        stored.append(path.stem)
    batches, _ = _read_all(connector)
    records = [r for b in batches for r in b.records]
    problems = [p for b in batches for p in b.problems]
    assert len(stored) >= 30
    assert {p.stem for p in CORPUS.glob("*.eml")} - set(stored) <= {"empty-file"}  # Dovecot refuses 0 bytes
    assert len(records) + len(problems) == len(stored)
    assert [p.message.split(":")[0] for p in problems] == ["too-many-parts"]


# -- IDLE -------------------------------------------------------------------------------------------


class _Watcher:
    """Runs watch() on a thread and hands each wake-up to the test through a queue."""

    def __init__(self, conn: ImapConnector, stream: str = "INBOX") -> None:
        self.conn = conn
        self.stop = threading.Event()
        self.wakeups: queue.Queue[None] = queue.Queue()
        self.thread = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self.thread.start()

    def _run(self, stream: str) -> None:
        for _ in self.conn.watch(stream, self.stop):
            self.wakeups.put(None)

    def wait_for_wakeup(self) -> None:
        self.wakeups.get(timeout=15)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=15)
        assert not self.thread.is_alive()


def _wait_until(condition: Any) -> None:
    done = threading.Event()
    for _ in range(300):
        if condition():
            return
        done.wait(0.05)
    raise AssertionError("condition never held")


def test_idle_wakes_when_a_message_arrives(account: Account, other: IMAPClient) -> None:
    conn = ImapConnector("mail", _settings(account, idle_poll_seconds=0.2))
    watcher = _Watcher(conn)
    try:
        watcher.wait_for_wakeup()  # every connection wakes the caller once, to read what came before
        _wait_until(lambda: conn.watch_stats["INBOX"].idling)
        other.append("INBOX", _mail(1))
        watcher.wait_for_wakeup()
        assert conn.watch_stats["INBOX"].wakeups == 2
    finally:
        watcher.close()


def test_idle_is_reissued_and_still_wakes_afterwards(account: Account, other: IMAPClient) -> None:
    conn = ImapConnector("mail", _settings(account, idle_reissue_seconds=0.3, idle_poll_seconds=0.1))
    watcher = _Watcher(conn)
    try:
        watcher.wait_for_wakeup()
        _wait_until(lambda: conn.watch_stats["INBOX"].idle_reissues >= 2 and conn.watch_stats["INBOX"].idling)
        other.append("INBOX", _mail(1))
        watcher.wait_for_wakeup()
    finally:
        watcher.close()


@pytest.mark.parametrize("security", ["none", "ssl"])
def test_connection_dropped_mid_idle_reconnects_and_wakes(account: Account, security: str) -> None:
    settings = _tls_settings(account, security, idle_poll_seconds=0.2)
    conn = ImapConnector("mail", settings)
    watcher = _Watcher(conn)
    try:
        watcher.wait_for_wakeup()
        _wait_until(lambda: conn.watch_stats["INBOX"].idling)
        account.server.doveadm("kick", account.username)
        watcher.wait_for_wakeup()  # the reconnect wakes the mapping: mail may have come meanwhile
        assert conn.watch_stats["INBOX"].reconnects == 1
        _wait_until(lambda: conn.watch_stats["INBOX"].idling)
        with IMAPClient(account.host, port=account.port, ssl=False, timeout=10) as fresh:
            fresh.login(account.username, account.password)
            fresh.append("INBOX", _mail(2))
        watcher.wait_for_wakeup()
    finally:
        watcher.close()


# -- TLS --------------------------------------------------------------------------------------------


def _tls_settings(account: Account, security: str, trusted: bool = True, **extra: Any) -> ImapSettings:
    tls = account.server.tls
    assert tls is not None
    port = account.server.imaps_port if security == "ssl" else account.port
    ca = tls.ca_file if trusted else None
    return _settings(account, security=security, port=port, ca_file=ca, **extra)


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_tls_connection_verified_against_the_configured_ca_reads_mail(
    account: Account, other: IMAPClient, security: str
) -> None:
    other.append("INBOX", _mail(1))
    conn = ImapConnector("mail", _tls_settings(account, security))
    try:
        batches, _ = _read_all(conn)
    finally:
        conn.close()
    assert _keys(batches) == ["<order-1@example.com>"]


def test_certificate_from_an_untrusted_ca_is_refused_as_connection_down(account: Account) -> None:
    conn = ImapConnector("mail", _tls_settings(account, "ssl", trusted=False))
    with pytest.raises(ConnectionDown):
        conn.connect()


def test_idle_response_split_across_segments_reconnects_and_still_wakes(
    account: Account, other: IMAPClient
) -> None:
    proxy = SplitProxy(account.port)
    conn = ImapConnector("mail", _settings(account, port=proxy.port, idle_poll_seconds=0.2))
    watcher = _Watcher(conn)
    try:
        watcher.wait_for_wakeup()
        _wait_until(lambda: conn.watch_stats["INBOX"].idling)
        proxy.split.set()
        other.append("INBOX", _mail(1))
        watcher.wait_for_wakeup()
        assert watcher.thread.is_alive()
        assert conn.watch_stats["INBOX"].reconnects >= 1  # the abort was met and survived
    finally:
        watcher.close()
        proxy.close()


# -- telemetry --------------------------------------------------------------------------------------


class _Recorder(Telemetry):
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []
        self.watch_events: list[tuple[str, str]] = []

    def api_call(self, connection: str, operation: str, outcome: str, seconds: float = 0.0) -> None:
        self.calls.append((connection, operation, outcome))

    def watch_event(self, connection: str, stream: str) -> None:
        self.watch_events.append((connection, stream))


@pytest.fixture
def recorder() -> Iterator[_Recorder]:
    previous = telemetry()
    sink = _Recorder()
    set_telemetry(sink)
    yield sink
    set_telemetry(previous)


def test_reads_report_each_server_call_with_bounded_labels(
    connector: ImapConnector, other: IMAPClient, recorder: _Recorder
) -> None:
    other.append("INBOX", _mail(1))
    _read_all(connector)
    assert ("mail", "list", "ok") in recorder.calls and ("mail", "fetch", "ok") in recorder.calls
    assert all("@" not in part for call in recorder.calls for part in call)


def test_watch_reports_liveness_so_a_dead_listener_is_visible(account: Account, recorder: _Recorder) -> None:
    conn = ImapConnector("mail", _settings(account, idle_reissue_seconds=0.2, idle_poll_seconds=0.1))
    watcher = _Watcher(conn)
    try:
        watcher.wait_for_wakeup()
        _wait_until(lambda: conn.watch_stats["INBOX"].idle_reissues >= 2)
    finally:
        watcher.close()
    # one event for the connection, then one per NOOP liveness check before each IDLE
    assert recorder.watch_events.count(("mail", "INBOX")) >= 3


def test_connection_cut_silently_mid_idle_is_noticed_and_reconnected(
    account: Account, other: IMAPClient
) -> None:
    proxy = SplitProxy(account.port)
    conn = ImapConnector("mail", _settings(account, port=proxy.port, idle_poll_seconds=0.2))
    watcher = _Watcher(conn)
    try:
        watcher.wait_for_wakeup()
        _wait_until(lambda: conn.watch_stats["INBOX"].idling)
        proxy.drop_connections()
        watcher.wait_for_wakeup()  # noticed without any BYE, reconnected, woke the caller
        assert conn.watch_stats["INBOX"].reconnects == 1
        _wait_until(lambda: conn.watch_stats["INBOX"].idling)
        other.append("INBOX", _mail(1))
        watcher.wait_for_wakeup()
    finally:
        watcher.close()
        proxy.close()
