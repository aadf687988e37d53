"""A mailbox folder as a stream of messages (imapclient): incremental reads by UID, APPEND, IDLE.

Reading is strictly look-but-don't-touch: folders are opened with EXAMINE and bodies fetched with
BODY.PEEK, so syncing never marks a client's mail as read. Headers, size, INTERNALDATE and flags
come first for a whole batch; bodies are fetched only for messages that pass the size cap and the
caller's header filter, because a helpdesk inbox is mostly mail a mapping does not want.

The cursor is {folder, uidvalidity, last_uid, last_key, last_hash}. UIDs are only meaningful under
one UIDVALIDITY; when the server changes it (folder recreated, restored, migrated) the folder is
re-listed and the last message synced is found again by its key (Message-ID, or content hash when
it has none) and its content hash, and reading resumes after it. If it cannot be found, everything
is re-read: the engine matches records by key, so that re-delivers nothing it already linked, and
loses nothing.
"""

from __future__ import annotations

import contextlib
import functools
import imaplib
import logging
import ssl
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from threading import Event
from typing import Any, ClassVar, TypeVar

from imapclient import IMAPClient, SocketTimeout  # type: ignore[import-untyped]
from imapclient.exceptions import LoginError  # type: ignore[import-untyped]
from pydantic import BaseModel

from connectors.mail_build import build_message, make_message_id
from connectors.mail_idle import WatchStats, idle_until_stopped, quietly_close
from connectors.mail_parse import (
    Limits,
    Rejected,
    content_hash,
    message_key,
    parse_headers,
    parse_message,
    raw_for_problem,
)
from connectors.mail_settings import ImapSettings
from syncd.errors import ConfigError, ConnectionDown, RecordError
from syncd.records import (
    Batch,
    Cursor,
    FieldInfo,
    Op,
    ReadProblem,
    Record,
    RecordFailure,
    StreamInfo,
    WriteOp,
    WriteResult,
    telemetry,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

HeaderFilter = Callable[[dict[str, Any]], bool]
"""Decides from header fields alone (parse_headers output plus `flags`, `size`) whether to fetch a body."""

_DROPPED = (OSError, imaplib.IMAP4.abort, EOFError)
"""A connection that died under us: reconnect. imaplib's abort covers "unterminated line" (imapclient
issue #519: a response split across TCP segments), which is the server's fault, not ours."""

_HEADER_FETCH = [b"BODY.PEEK[HEADER]", b"RFC822.SIZE", b"INTERNALDATE", b"FLAGS", b"BODYSTRUCTURE"]


@dataclass(frozen=True, slots=True)
class _Listed:
    uid: int
    header: bytes
    size: int
    internal_date: datetime | None
    flags: list[str]
    structure: tuple[int, int] = (0, 0)  # (leaf parts, largest leaf bytes) from BODYSTRUCTURE


FIELDS = (
    FieldInfo("message_id", createable=True, updateable=False),
    FieldInfo("from", "list"),
    FieldInfo("to", "list"),
    FieldInfo("cc", "list"),
    FieldInfo("reply_to", "list"),
    FieldInfo("subject"),
    FieldInfo("date", "datetime"),
    FieldInfo("in_reply_to"),
    FieldInfo("references", "list"),
    FieldInfo("thread", createable=False, updateable=False),
    FieldInfo("text"),
    FieldInfo("html"),
    FieldInfo("attachments", "list"),
    FieldInfo("flags", "list", createable=False),
    FieldInfo("size", "integer", createable=False, updateable=False),
    FieldInfo("content_hash", createable=False, updateable=False),
    FieldInfo("defects", "list", createable=False, updateable=False),
)


class ImapConnector:
    """One IMAP account; each configured folder is a stream."""

    Settings: ClassVar[type[BaseModel]] = ImapSettings

    def __init__(self, name: str, settings: ImapSettings, base_dir: Path | None = None) -> None:
        self.name = name
        self.settings = settings
        self.base_dir = base_dir or Path.cwd()
        self.limits = Limits(settings.max_message_bytes, settings.max_parts, settings.max_attachment_bytes)
        self._client: IMAPClient | None = None
        self._selected: tuple[str, bool] | None = None
        self.watch_stats: dict[str, WatchStats] = {}

    # -- connection ---------------------------------------------------------------------------

    def _ssl_context(self) -> ssl.SSLContext:
        ca = self.settings.ca_file
        if ca is not None and not ca.is_absolute():
            ca = self.base_dir / ca
        return ssl.create_default_context(cafile=str(ca) if ca else None)

    def _open(self) -> IMAPClient:
        s = self.settings
        timeout = SocketTimeout(connect=s.connect_timeout_seconds, read=s.read_timeout_seconds)
        client: IMAPClient | None = None
        try:
            client = IMAPClient(
                s.host,
                port=s.port,
                ssl=s.security == "ssl",
                ssl_context=self._ssl_context() if s.security != "none" else None,
                timeout=timeout,
            )
            if s.security == "starttls":
                client.starttls(self._ssl_context())
            client.login(s.username, s.password.get_secret_value())
        except BaseException:
            if client is not None:  # a refused login or a failed STARTTLS must not leak the socket
                with contextlib.suppress(Exception):
                    client.shutdown()
            raise
        client.normalise_times = False
        telemetry().connection_up(self.name, True)
        return client

    def connect(self) -> IMAPClient:
        """A fresh, logged-in connection with timeouts on every socket operation."""
        s = self.settings
        try:
            return self._open()
        except LoginError as exc:
            raise ConfigError(
                f"{self.name}: IMAP login refused for {s.username} at {s.host}:{s.port}"
            ) from exc
        except ssl.SSLError as exc:
            telemetry().connection_up(self.name, False)
            raise ConnectionDown(f"{self.name}: TLS with {s.host}:{s.port} failed: {exc.reason}") from exc
        except _DROPPED as exc:
            telemetry().connection_up(self.name, False)
            raise ConnectionDown(
                f"{self.name}: cannot reach {s.host}:{s.port}: {type(exc).__name__}"
            ) from exc

    def _session(self) -> IMAPClient:
        if self._client is None:
            self._client = self.connect()
            self._selected = None
        return self._client

    def _select(self, folder: str, readonly: bool) -> dict[bytes, Any]:
        info = self._select_on(self._session(), folder, readonly)
        self._selected = (folder, readonly)
        return info

    def _select_on(self, client: IMAPClient, folder: str, readonly: bool) -> dict[bytes, Any]:
        try:
            info: dict[bytes, Any] = client.select_folder(folder, readonly=readonly)
        except imaplib.IMAP4.abort:
            raise
        except imaplib.IMAP4.error as exc:
            raise ConfigError(f"{self.name}: cannot open folder {folder!r}: {_text(exc)}") from exc
        return info

    def _drop(self) -> None:
        client, self._client, self._selected = self._client, None, None
        if client is not None:
            try:
                client.shutdown()
            except Exception:  # already dead: nothing more to release
                log.debug("%s: shutdown of a dropped connection failed", self.name, exc_info=True)

    def _retrying(self, operation: str, folder: str, call: Callable[[], T]) -> T:
        """Run `call`, reconnecting after a dropped connection; the call must be safe to repeat.

        `operation` is a fixed word ("fetch", "append" ...) so telemetry labels stay bounded.
        """
        delay = 0.2
        sink = telemetry()
        for attempt in range(self.settings.retries + 1):
            started = time.monotonic()
            try:
                result = call()
            except _DROPPED as exc:  # before IMAP4.error: imaplib's abort is a subclass of it
                sink.api_call(self.name, operation, "transient", time.monotonic() - started)
                self._drop()
                if attempt == self.settings.retries:
                    sink.connection_up(self.name, False)
                    raise ConnectionDown(
                        f"{self.name}: {operation} in {folder}: connection lost ({type(exc).__name__})"
                    ) from exc
                sink.retry(self.name, operation, "connection-lost")
                log.info("%s: %s in %s: connection lost, reconnecting", self.name, operation, folder)
            except imaplib.IMAP4.error as exc:
                # A NO or BAD we did not expect: the server is unwell or unlike IMAP; back off.
                sink.api_call(self.name, operation, "error", time.monotonic() - started)
                raise ConnectionDown(
                    f"{self.name}: {operation} in {folder}: server refused: {_text(exc)}"
                ) from exc
            else:
                sink.api_call(self.name, operation, "ok", time.monotonic() - started)
                return result
            time.sleep(delay)
            delay = min(delay * 2, self.settings.reconnect_max_seconds)
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Log out politely; safe to call twice and on a connection that already died."""
        client, self._client, self._selected = self._client, None, None
        if client is not None:
            try:
                client.logout()
            except Exception:
                log.debug("%s: logout failed", self.name, exc_info=True)
                with contextlib.suppress(Exception):
                    client.shutdown()

    # -- streams ------------------------------------------------------------------------------

    def streams(self) -> list[StreamInfo]:
        caps = frozenset({"watch", "find", "post_action"})
        return [StreamInfo(folder, "message_id", FIELDS, caps) for folder in self.settings.folders]

    # -- read ---------------------------------------------------------------------------------

    def read(self, stream: str, cursor: Cursor | None, keep: HeaderFilter | None = None) -> Iterator[Batch]:
        """Batches of messages after `cursor`, oldest first; each batch's cursor resumes after it."""
        uids, uidvalidity, resume = self._retrying("list", stream, lambda: self._pending(stream, cursor))
        last: dict[str, Any] = dict(resume)
        for start in range(0, len(uids), self.settings.batch_size):
            chunk = uids[start : start + self.settings.batch_size]
            fetch = functools.partial(self._fetch, stream, chunk, keep)
            records, problems, newest = self._retrying("fetch", stream, fetch)
            if newest is not None:
                last.update(newest)
            last["last_uid"] = chunk[-1]
            yield Batch(records, {"folder": stream, "uidvalidity": uidvalidity, **last}, problems)
        if not uids and isinstance(cursor, dict) and cursor.get("uidvalidity") != uidvalidity:
            # Nothing new after a UIDVALIDITY change: still hand back the new cursor, or every
            # later read would redo the costly re-matching.
            yield Batch([], {"folder": stream, "uidvalidity": uidvalidity, **last})

    def _pending(self, folder: str, cursor: Cursor | None) -> tuple[list[int], int, dict[str, Any]]:
        info = self._select(folder, readonly=True)
        uidvalidity = int(info[b"UIDVALIDITY"])
        cur = cursor if isinstance(cursor, dict) and cursor.get("folder") == folder else {}
        client = self._session()
        if cur and int(cur.get("uidvalidity", -1)) == uidvalidity:
            last_uid = int(cur.get("last_uid", 0))
            found: list[int] = client.search(["UID", f"{last_uid + 1}:*"]) if info.get(b"EXISTS") else []
            # RFC 3501: "UID n:*" always includes the highest UID, even when it is below n.
            keep = {k: cur[k] for k in ("last_key", "last_hash") if k in cur}
            return sorted(u for u in found if u > last_uid), uidvalidity, {"last_uid": last_uid, **keep}
        every: list[int] = sorted(client.search("ALL")) if info.get(b"EXISTS") else []
        if cur and cur.get("last_key"):
            log.warning("%s: UIDVALIDITY of %s changed; matching the last synced message", self.name, folder)
            position = self._find_again(every, str(cur["last_key"]), str(cur.get("last_hash", "")))
            if position is not None:
                return every[position + 1 :], uidvalidity, {"last_uid": every[position], **_last_of(cur)}
        return every, uidvalidity, {"last_uid": 0}

    def _find_again(self, uids: list[int], key: str, want_hash: str) -> int | None:
        """Index in `uids` of the message with this key and content hash, searching newest first."""
        client = self._session()
        candidates = set(client.search(["HEADER", "Message-ID", key])) if key.startswith("<") else set(uids)
        for index in range(len(uids) - 1, -1, -1):
            uid = uids[index]
            if uid not in candidates:
                continue
            raw = client.fetch([uid], [b"BODY.PEEK[]"]).get(uid, {}).get(b"BODY[]")
            if isinstance(raw, bytes) and content_hash(raw) == want_hash:
                return index
        return None

    def _fetch(
        self, folder: str, uids: list[int], keep: HeaderFilter | None
    ) -> tuple[list[Record], list[ReadProblem], dict[str, Any] | None]:
        if self._selected != (folder, True):
            self._select(folder, readonly=True)
        client = self._session()
        listed = [_listed(uid, data) for uid, data in sorted(client.fetch(uids, _HEADER_FETCH).items())]
        problems: list[ReadProblem] = []
        wanted: list[_Listed] = []
        for item in listed:
            place = f"{folder} uid {item.uid}"
            if item.size > self.limits.max_message_bytes:
                reason = f"message is {item.size} bytes, over the cap of {self.limits.max_message_bytes}"
                problems.append(
                    ReadProblem(
                        "bad-input", f"too-large: {reason}", raw_for_problem(item.header), place=place
                    )
                )
                continue
            parts, largest = item.structure
            over = (
                f"too-many-parts: {parts} MIME parts, over the cap of {self.limits.max_parts}"
                if parts > self.limits.max_parts
                else f"attachment-too-large: a part of {largest} bytes, over the cap of "
                f"{self.limits.max_attachment_bytes}"
                if largest > self.limits.max_attachment_bytes
                else None
            )
            if over is not None:  # judged from BODYSTRUCTURE: the body is never downloaded
                problems.append(ReadProblem("bad-input", over, raw_for_problem(item.header), place=place))
                continue
            if keep is not None:
                head = parse_headers(item.header, internal_date=item.internal_date)
                # Headers too broken to judge: fetch it, so the full parse records why.
                if not isinstance(head, Rejected) and not keep(
                    {**head, "flags": item.flags, "size": item.size}
                ):
                    continue
            wanted.append(item)
        records: list[Record] = []
        newest: dict[str, Any] | None = None
        for item, raw in self._bodies(wanted):
            if not isinstance(raw, bytes):
                continue  # expunged between the two fetches: nothing to deliver
            place = f"{folder} uid {item.uid}"
            parsed = parse_message(
                raw,
                internal_date=item.internal_date,
                limits=self.limits,
                include_headers=self.settings.include_headers,
                attachment_dir=self._attachment_dir(),
            )
            if isinstance(parsed, Rejected):
                key = content_hash(raw)
                problems.append(
                    ReadProblem(
                        parsed.category, f"{parsed.code}: {parsed.reason}", raw_for_problem(raw), key, place
                    )
                )
                newest = {"last_key": key, "last_hash": key}
                continue
            parsed["flags"] = item.flags
            key = message_key(parsed)
            records.append(Record(key, parsed, _modified(parsed, item.internal_date)))
            newest = {"last_key": key, "last_hash": parsed["content_hash"]}
        return records, problems, newest

    def _bodies(self, wanted: list[_Listed]) -> Iterator[tuple[_Listed, bytes | None]]:
        """Bodies in UID order, fetched in groups of at most `fetch_bytes` so memory stays bounded."""
        groups: list[list[_Listed]] = []
        total = 0
        for item in wanted:
            if not groups or total + item.size > self.settings.fetch_bytes:
                groups.append([])
                total = 0
            groups[-1].append(item)
            total += item.size
        client = self._session()
        for group in groups:
            fetched = client.fetch([g.uid for g in group], [b"BODY.PEEK[]"])
            for g in group:
                raw = fetched.get(g.uid, {}).get(b"BODY[]")
                yield g, raw if isinstance(raw, bytes) else None

    def _attachment_dir(self) -> Path | None:
        d = self.settings.attachment_dir
        return None if d is None else d if d.is_absolute() else self.base_dir / d

    # -- find / write -------------------------------------------------------------------------

    def find(self, stream: str, field: str, values: Collection[str]) -> dict[str, str]:
        """Message-ID (or "sha256:..." key) -> key, for the messages present in the folder."""
        if field != "message_id":
            raise ConfigError(f"{self.name}: messages can only be found by message_id, not {field}")

        def search() -> dict[str, str]:
            self._select(stream, readonly=True)
            return {v: v for v in values if self._uids_for_keys([v])}

        return self._retrying("search", stream, search)

    def _uids_by_message_id(self, message_id: str) -> list[int]:
        found: list[int] = self._session().search(["HEADER", "Message-ID", message_id])
        return sorted(found)

    def write(self, stream: str, ops: Sequence[WriteOp]) -> list[WriteResult]:
        """APPEND each create/upsert unless a message with its Message-ID is already in the folder."""
        results: list[WriteResult] = []
        for op in ops:
            try:
                results.append(self._write_one(stream, op))
            except RecordError as exc:
                results.append(WriteResult(False, op.key, RecordFailure(exc.category, exc.code, exc.message)))
        return results

    def _write_one(self, folder: str, op: WriteOp) -> WriteResult:
        if op.op is Op.DELETE:
            if not op.key:
                raise RecordError("validation", "delete needs the message key", code="NO_KEY")
            # Deleting what is already gone is success: the outcome the engine asked for holds.
            self._retrying("delete", folder, lambda: self._delete(folder, str(op.key)))
            return WriteResult(True, op.key)
        if op.op is Op.UPDATE:
            raise RecordError(
                "validation", "a stored message cannot be changed, only replaced", code="IMMUTABLE"
            )
        seed = op.idempotency_key or op.key or ""
        message_id = str(op.fields.get("message_id") or (make_message_id(seed) if seed else ""))
        if not message_id:
            raise RecordError("validation", "append needs a message_id or an idempotency key", code="NO_ID")
        message = build_message(op.fields, message_id=message_id, attachment_dir=self._attachment_dir())
        raw = message.as_bytes()
        flags = [str(f) for f in op.fields.get("flags") or []]
        return self.append_raw(folder, message_id, raw, flags)

    def append_raw(self, folder: str, message_id: str, raw: bytes, flags: Sequence[str] = ()) -> WriteResult:
        """APPEND `raw` unless a message with `message_id` is already in `folder` (used for Sent copies)."""
        return self._retrying("append", folder, lambda: self._append_once(folder, message_id, raw, flags))

    def _append_once(self, folder: str, message_id: str, raw: bytes, flags: Sequence[str]) -> WriteResult:
        self._select(folder, readonly=True)
        if self._uids_by_message_id(message_id):
            return WriteResult(True, message_id, created=False)
        self._session().append(folder, raw, flags=list(flags))
        return WriteResult(True, message_id, created=True)

    def _delete(self, folder: str, key: str) -> bool:
        self._select(folder, readonly=False)
        uids = self._uids_for_keys([key])
        if not uids:
            return False
        client = self._session()
        client.add_flags(uids, [b"\\Deleted"], silent=True)
        client.uid_expunge(uids)
        return True

    # -- post-actions -------------------------------------------------------------------------

    def post_action(
        self, stream: str, keys: Sequence[str], action: str, target: str | None = None
    ) -> list[str]:
        """After the journal has committed these messages: "flag" (target = flag, default \\Flagged),
        "seen", or "move" (target = folder; MOVE, else COPY + \\Deleted + UID EXPUNGE).

        Returns the keys not found in the folder (already moved, or deleted by a person).
        """
        if action not in ("flag", "seen", "move"):
            raise ConfigError(f"{self.name}: unknown post-action {action!r}: use flag, seen or move")
        if action == "move" and not target:
            raise ConfigError(f"{self.name}: post-action move needs a target folder")
        return self._retrying(action, stream, lambda: self._post_action(stream, keys, action, target))

    def _post_action(self, folder: str, keys: Sequence[str], action: str, target: str | None) -> list[str]:
        self._select(folder, readonly=False)
        client = self._session()
        found: dict[str, list[int]] = {k: self._uids_for_keys([k]) for k in keys}
        uids = sorted({u for v in found.values() for u in v})
        if uids:
            if action == "flag":
                client.add_flags(uids, [(target or "\\Flagged").encode()], silent=True)
            elif action == "seen":
                client.add_flags(uids, [b"\\Seen"], silent=True)
            elif b"MOVE" in client.capabilities():
                client.move(uids, target)
            else:
                client.copy(uids, target)
                client.add_flags(uids, [b"\\Deleted"], silent=True)
                client.uid_expunge(uids)
        return [k for k, v in found.items() if not v]

    def _uids_for_keys(self, keys: Sequence[str]) -> list[int]:
        """UIDs in the selected folder for record keys: by SEARCH for Message-IDs, by hashing otherwise."""
        client = self._session()
        uids: set[int] = set()
        hashes = {k for k in keys if k.startswith("sha256:")}
        for key in keys:
            if key not in hashes:
                uids.update(self._uids_by_message_id(key))
        if hashes:
            for uid, data in client.fetch(client.search("ALL"), [b"BODY.PEEK[]"]).items():
                raw = data.get(b"BODY[]")
                if isinstance(raw, bytes) and content_hash(raw) in hashes:
                    uids.add(uid)
        return sorted(uids)

    # -- watch --------------------------------------------------------------------------------

    def watch(self, stream: str, stop: Event) -> Iterator[None]:
        """Yield whenever `stream` may have new mail, until `stop` is set.

        Uses its own connection (an IDLE holds it). Re-issues IDLE with a NOOP in between before
        the server's 30-minute limit, and reconnects with capped backoff when the link drops (a
        connection, the first one included, yields once: mail may have arrived while we were away).
        """
        stats = self.watch_stats.setdefault(stream, WatchStats())
        delay = 0.5
        first = True
        while not stop.is_set():
            client: IMAPClient | None = None
            try:
                client = self.connect()
                self._select_on(client, stream, readonly=True)
                delay = 0.5
                if not first:
                    stats.reconnects += 1
                first = False
                # Mail that came before IDLE started (or while disconnected) would wait for the
                # next message to be noticed: wake the caller once per connection to read it.
                stats.event(self.name, stream)
                yield
                yield from idle_until_stopped(
                    client,
                    self.name,
                    stream,
                    stop,
                    stats,
                    reissue_seconds=self.settings.idle_reissue_seconds,
                    poll_seconds=self.settings.idle_poll_seconds,
                )
            except _DROPPED as exc:
                log.info(
                    "%s: IDLE on %s lost its connection (%s); reconnecting",
                    self.name,
                    stream,
                    type(exc).__name__,
                )
            except ConnectionDown as exc:
                log.warning("%s: %s", self.name, exc)
            finally:
                if client is not None:
                    quietly_close(client)
            first = False
            if stop.wait(delay):
                return
            delay = min(delay * 2, self.settings.reconnect_max_seconds)


def _listed(uid: int, data: dict[bytes, Any]) -> _Listed:
    header = data.get(b"BODY[HEADER]") or b""
    when = data.get(b"INTERNALDATE")
    flags = [f.decode("utf-8", "replace") if isinstance(f, bytes) else str(f) for f in data.get(b"FLAGS", ())]
    return _Listed(
        uid=uid,
        header=header if isinstance(header, bytes) else b"",
        size=int(data.get(b"RFC822.SIZE") or 0),
        internal_date=when if isinstance(when, datetime) else None,
        flags=flags,
        structure=_structure(data.get(b"BODYSTRUCTURE")),
    )


def _structure(body: Any) -> tuple[int, int]:
    """(leaf parts, largest leaf in bytes) from a BODYSTRUCTURE; (0, 0) when it cannot be read, so
    the full parse of the body decides instead."""
    try:
        if body is None:
            return (0, 0)
        if getattr(body, "is_multipart", False):
            children = [_structure(child) for child in body[0]]
            return (sum(c[0] for c in children), max((c[1] for c in children), default=0))
        size = int(body[6]) if len(body) > 6 and isinstance(body[6], int) else 0
        encoding = body[5] if len(body) > 5 else None
        if isinstance(encoding, bytes) and encoding.upper() == b"BASE64":
            size = size * 3 // 4  # the cap is on the decoded attachment, as the full parse counts it
        return (1, size)
    except (TypeError, IndexError, ValueError):
        return (0, 0)


def _modified(record: dict[str, Any], internal_date: datetime | None) -> datetime | None:
    if internal_date is not None:
        return internal_date
    try:
        return datetime.fromisoformat(str(record.get("date")))
    except ValueError:
        return None


def _last_of(cur: dict[str, Any]) -> dict[str, Any]:
    return {k: cur[k] for k in ("last_key", "last_hash") if k in cur}


def _text(exc: BaseException) -> str:
    """The server's words from an imaplib error (bytes or text), bounded for logs and dead letters."""
    arg = exc.args[0] if exc.args else ""
    text = arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)
    return text[:300]
