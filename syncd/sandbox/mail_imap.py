"""The sandbox's IMAP server: pymap's in-memory (`dict`) backend served on one loopback port.

Two things are mended here, both measured with imapclient and the IDLE loop of connectors/imap.py:
pymap writes one response in several small writes, which reach the client as half lines that make
imapclient's `idle_check` abort (the shared field notes saw it with pymap's maildir backend; the
writing is pymap's IMAP layer, shared by every backend) -- `_WholeWrites` sends each response whole; and pymap's IDLE
misses a message that arrived just before it began -- `_PromptMailbox`. With both, 150 deliveries
woke a watching connector 150 times without one reconnect (plain and TLS, median 4 ms).

The in-memory `dict` backend is used, so the saved state is ours (`mail_store.py`), in one SQLite
file rather than pymap's maildir layout.

What pymap serves and what it does not, as the connector meets it: LOGIN (plain, or under implicit
TLS), SELECT/EXAMINE, UID SEARCH with HEADER, UID FETCH of BODY.PEEK[...]/RFC822.SIZE/INTERNALDATE/
FLAGS, APPEND, IDLE, UIDPLUS (UID EXPUNGE), MOVE. No CONDSTORE, QRESYNC, ENABLE, UNSELECT or
SPECIAL-USE: the connector reads by UID and never needs them.

Everything here is a coroutine or runs on the server's own loop (`LoopThread`); `MailSandbox` is
the synchronous face.
"""

from __future__ import annotations

import asyncio
import ssl
import uuid
from argparse import Namespace
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from proxyprotocol.result import ProxyResultLocal
from proxyprotocol.sock import SocketInfo
from pymap.backend.dict import Config, DictBackend, Identity, Login
from pymap.backend.dict.filter import FilterSet
from pymap.backend.dict.mailbox import MailboxData, MailboxSet
from pymap.concurrent import Event
from pymap.imap import IMAPServer
from pymap.parsing.message import AppendMessage
from pymap.parsing.specials.fetchattr import FetchRequirement
from pymap.parsing.specials.flag import Flag
from pymap.parsing.specials.objectid import ObjectId
from pymap.selected import SelectedMailbox
from pymap.user import UserMetadata
from pysasl.hashing import Cleartext

INBOX = "INBOX"
ANNOUNCE_DELAY = 0.1
"""Seconds between IDLE's continuation and news that was already waiting when IDLE began."""


@dataclass(frozen=True)
class StoredMessage:
    """One message as a mailbox holds it: what survives a restart of the sandbox."""

    raw: bytes
    flags: tuple[str, ...] = ()
    internal_date: datetime | None = None


class _PromptMailbox(MailboxData):
    """pymap's in-memory mailbox without its IDLE race.

    pymap's IDLE waits for the *next* change signal, so a message that arrives after the client's
    last command but before IDLE starts waiting is announced only with the next one (or never, in a
    quiet folder). Here a wait is skipped when the folder already changed past what the client saw,
    so such a message is announced as soon as IDLE begins, as Dovecot does.
    """

    async def update_selected(
        self, selected: SelectedMailbox, *, wait_on: Event | None = None
    ) -> SelectedMailbox:
        seen = selected.mod_sequence
        if wait_on is not None and seen is not None and self._mod_sequences.highest > seen:
            # Not at once: IDLE's "+ idling" has just been sent, and imapclient reads it through a
            # buffer and then polls the socket, so news in the same TCP read would sit unnoticed.
            await asyncio.sleep(ANNOUNCE_DELAY)
            wait_on = None
        return await super().update_selected(selected, wait_on=wait_on)


class _PromptMailboxSet(MailboxSet):
    """pymap's in-memory folder set, making `_PromptMailbox` folders (pymap 0.36's layout)."""

    def __init__(self) -> None:
        super().__init__()
        self._inbox = _PromptMailbox(self._content_cache, self._thread_cache)

    async def add_mailbox(self, name: str) -> ObjectId:
        async with self._set_lock.write_lock():
            if name in self._set:
                raise ValueError(name)
            self._set[name] = mailbox = _PromptMailbox(self._content_cache, self._thread_cache)
            return mailbox.mailbox_id

    async def rename_mailbox(self, before: str, after: str) -> None:
        await super().rename_mailbox(before, after)
        if not isinstance(self._inbox, _PromptMailbox):  # renaming INBOX leaves a fresh, empty one
            self._inbox = _PromptMailbox(self._content_cache, self._thread_cache)


class _WholeWrites:
    """A StreamWriter that sends what pymap writes for one response in one piece, at `drain()`.

    pymap writes a response in several small writes, and asyncio sends each at once: a response
    line then spans TCP segments, and imapclient's `idle_check`, reading without blocking, aborts
    on the half line ("unterminated line", imapclient issue #519). Real servers send whole lines.
    """

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self._pending = bytearray()

    def write(self, data: bytes) -> None:
        self._pending += data

    async def drain(self) -> None:
        self._flush()
        await self._writer.drain()

    def close(self) -> None:
        self._flush()
        self._writer.close()

    def _flush(self) -> None:
        if self._pending and not self._writer.is_closing():
            self._writer.write(bytes(self._pending))
        self._pending.clear()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._writer, name)


class ImapStandIn:
    """pymap with the dict backend, its users, and direct access to their mailboxes.

    Construct and use only on the server's loop (pymap binds its locks and events to it).
    """

    def __init__(self, users: dict[str, str]) -> None:
        # pymap reads a handful of command-line options from `args` even when embedded.
        args = Namespace(passlib_cfg=None, proxy_protocol=None, debug=False)
        self.config = Config(
            args,
            host="127.0.0.1",
            port=0,
            demo_data=False,
            demo_user="",
            demo_password="",
            # TLS, when on, is implicit (IMAPS) and done by the listening socket, so pymap itself
            # must not demand STARTTLS before LOGIN.
            tls_enabled=False,
            # In-memory test passwords gain nothing from hashing; hashing would slow every login.
            hash_context=Cleartext(),
            reject_dnsbl=False,
            invalid_user_sleep=0.0,
        )
        self.config.apply_context()
        self.login = Login(self.config)
        self.backend = DictBackend(self.login, self.config)
        self.users = dict(users)
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def add_users(self) -> None:
        for name, password in self.users.items():
            await Identity(name, self.login, None, frozenset()).set(
                UserMetadata(self.config, name, password=password)
            )
            # pymap's sessions take a user's folders from this cache, made on first login otherwise.
            self.config.set_cache[name] = (_PromptMailboxSet(), FilterSet())

    async def start(self, port: int, ssl_context: ssl.SSLContext | None) -> int:
        """Listen on 127.0.0.1:`port` (0 picks one); the port bound."""
        imap = IMAPServer(self.login, self.config)

        async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self._writers.add(writer)
            try:
                await imap(reader, cast(asyncio.StreamWriter, _WholeWrites(writer)), _socket_info(writer))
            finally:
                self._writers.discard(writer)

        self._server = await asyncio.start_server(
            connection,
            host="127.0.0.1",
            port=port,
            ssl=ssl_context,
        )
        bound: int = self._server.sockets[0].getsockname()[1]
        return bound

    async def stop(self) -> None:
        """Stop listening and hang up on connected clients (an IDLEing client sees the connection end)."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.close()

    async def _mailboxes(self, user: str) -> MailboxSet:
        if user not in self.users:
            raise KeyError(f"no such sandbox mail user: {user}")
        async with Identity(user, self.login, None, frozenset()).new_session() as session:
            return session.mailbox_set

    async def folder(self, user: str, name: str, create: bool = True) -> MailboxData:
        mailboxes = await self._mailboxes(user)
        try:
            return await mailboxes.get_mailbox(name)
        except KeyError:
            if not create:
                raise
        await mailboxes.add_mailbox(name)
        return await mailboxes.get_mailbox(name)

    async def folders(self, user: str) -> list[str]:
        tree = await (await self._mailboxes(user)).list_mailboxes()
        return [entry.name for entry in tree.list() if entry.exists]

    async def version(self) -> tuple[tuple[str, str, str, int], ...]:
        """Changes whenever a message, flag or folder of any user changes: what tells a save is due."""
        parts: list[tuple[str, str, str, int]] = []
        for user in self.users:
            for name in await self.folders(user):
                box = await self.folder(user, name, create=False)
                parts.append((user, name, str(box.mailbox_id), box._mod_sequences.highest))
        return tuple(parts)

    async def deliver(self, user: str, folder: str, message: StoredMessage) -> None:
        """Put a message into a folder as the server's own delivery would: IDLE clients hear of it."""
        mailbox = await self.folder(user, folder)
        flags = frozenset(Flag(f) for f in message.flags)
        await mailbox.append(
            AppendMessage(message.raw, message.internal_date or datetime.now(UTC), flags), recent=True
        )

    async def messages(self, user: str, folder: str) -> list[StoredMessage]:
        """The folder's messages in UID order (none when the folder does not exist)."""
        try:
            mailbox = await self.folder(user, folder, create=False)
        except KeyError:
            return []
        found: list[StoredMessage] = []
        async for msg in mailbox.messages():
            loaded = await msg.load_content(FetchRequirement.CONTENT)
            flags = tuple(sorted(_text(f.value) for f in msg.permanent_flags))
            found.append(StoredMessage(bytes(loaded), flags, msg.internal_date))
        return found

    async def load(self, user: str, folders: Mapping[str, Iterable[StoredMessage]]) -> None:
        """Put saved folders back (at start, before any client connects)."""
        for name, stored in folders.items():
            mailbox = await self.folder(user, name)
            for message in stored:
                flags = frozenset(Flag(f) for f in message.flags)
                await mailbox.append(AppendMessage(message.raw, message.internal_date, flags))


def _socket_info(writer: asyncio.StreamWriter) -> SocketInfo:
    """pymap wants the PROXY-protocol view of the socket; on loopback there is no proxy."""
    return SocketInfo.get(writer, ProxyResultLocal(), unique_id=uuid.uuid4().bytes)


def _text(value: bytes) -> str:
    return value.decode("ascii", "replace")
