"""The sandbox's IMAP server: pymap's in-memory (`dict`) backend served on one loopback port.

Why the `dict` backend and not pymap's `maildir`: with maildir, IDLE responses arrive split across
writes and imapclient's `idle_check` aborts on them most of the time (see the shared field notes);
the dict backend answers IDLE in one write, so a watching connector wakes instead of reconnecting.
Persistence is therefore ours (`mail_store.py`): mailboxes are loaded at start and written at stop.

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

from proxyprotocol.result import ProxyResultLocal
from proxyprotocol.sock import SocketInfo
from pymap.backend.dict import Config, DictBackend, Identity, Login
from pymap.backend.dict.mailbox import MailboxData, MailboxSet
from pymap.imap import IMAPServer
from pymap.parsing.message import AppendMessage
from pymap.parsing.specials.fetchattr import FetchRequirement
from pymap.parsing.specials.flag import Flag
from pymap.user import UserMetadata
from pysasl.hashing import Cleartext

INBOX = "INBOX"


@dataclass(frozen=True)
class StoredMessage:
    """One message as a mailbox holds it: what survives a restart of the sandbox."""

    raw: bytes
    flags: tuple[str, ...] = ()
    internal_date: datetime | None = None


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

    async def start(self, port: int, ssl_context: ssl.SSLContext | None) -> int:
        """Listen on 127.0.0.1:`port` (0 picks one); the port bound."""
        imap = IMAPServer(self.login, self.config)

        async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self._writers.add(writer)
            try:
                await imap(reader, writer, _socket_info(writer))
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
