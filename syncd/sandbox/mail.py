"""A local mail provider for `syncd demo`, `syncd sandbox` and tests: IMAP (pymap) and SMTP (aiosmtpd).

Both are pure Python, so the demo needs no Debian package; the connectors' own test suite runs
against real Dovecot instead (tests/mail), because pymap is a small server and the connectors must
be proven against a server that is not.

Each server runs on its own loopback port, on its own thread with its own asyncio loop. Mail sent
through the SMTP server is recorded (`sent()`), filed in the sending user's "Sent" folder (as hosted
providers do, so the SMTP connector's Sent-folder check finds it) and put in the INBOX of any
recipient who is a sandbox user. `deliver()` is the back door for "a message arrives".

With `data_dir`, users, passwords, the TLS certificate and all mailboxes survive a restart (saved
a moment after they change, and at `stop()`); without it everything lives in memory and in a
temporary directory.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import secrets
import tempfile
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from syncd.sandbox.mail_imap import INBOX, ImapStandIn, StoredMessage
from syncd.sandbox.mail_loop import LoopThread
from syncd.sandbox.mail_smtp import SmtpStandIn, Submission
from syncd.sandbox.mail_store import Mailboxes, MailStore
from syncd.sandbox.tls import LoopbackTLS, make_loopback_tls

DEFAULT_USER = "coordinator@sandbox.example"
SENT = "Sent"
STANDARD_FOLDERS = ("Drafts", SENT)
"""Made for every user at start, as a provider's new account has them (the connectors' configs name them)."""
HOST = "127.0.0.1"
AUTOSAVE_SECONDS = 2.0
"""How often a persistent sandbox looks for changed mail to save, so a killed sandbox loses little."""


class MailSandbox:
    """An IMAP and an SMTP server sharing one set of users and mailboxes."""

    def __init__(
        self,
        data_dir: Path | None = None,
        imap_port: int = 0,
        smtp_port: int = 0,
        users: dict[str, str] | None = None,
        tls: bool = False,
    ) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._store: MailStore | None = None
        if data_dir is not None:
            self.data_dir = Path(data_dir)
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._store = MailStore(self.data_dir / "mail.sqlite3")
        else:
            self._tmp = tempfile.TemporaryDirectory(prefix="syncd-mail-")
            self.data_dir = Path(self._tmp.name)
        self.users = self._users(users)
        self.tls: LoopbackTLS | None = make_loopback_tls(self.data_dir / "tls") if tls else None
        self._ports = (imap_port, smtp_port)
        self.imap_port = 0
        self.smtp_port = 0
        self._sent: list[bytes] = []
        self._sent_lock = threading.Lock()
        self._imap_loop: LoopThread | None = None
        self._smtp_loop: LoopThread | None = None
        self._imap: ImapStandIn | None = None
        self._smtp: SmtpStandIn | None = None
        self._autosaver: concurrent.futures.Future[None] | None = None
        self._serving = False
        """True once fully started: only then do the live mailboxes replace the saved ones at stop."""

    def _users(self, given: dict[str, str] | None) -> dict[str, str]:
        """Given users win; else the ones saved in data_dir; else one user with a fresh password."""
        saved = self._store.users() if self._store is not None else {}
        users = dict(given) if given else saved or {DEFAULT_USER: secrets.token_urlsafe(12)}
        if self._store is not None:
            self._store.save_users(users)
        return users

    @property
    def user(self) -> str:
        """The first user: the one `info()` hands out and the back doors use by default."""
        return next(iter(self.users))

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> MailSandbox:
        """Start both servers; if either cannot (a port taken), whatever did start is stopped again."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> MailSandbox:
        context = self.tls.server_context() if self.tls else None
        self._imap_loop = LoopThread("sandbox-imap")
        self._imap = self._imap_loop.call(_new_imap(self.users))
        saved: Mailboxes = self._store.mailboxes() if self._store is not None else {}
        for user, folders in saved.items():
            if user in self.users:
                self._imap_loop.call(self._imap.load(user, folders))
        self.imap_port = self._imap_loop.call(self._imap.start(self._ports[0], context))
        self._smtp_loop = LoopThread("sandbox-smtp")
        self._smtp = SmtpStandIn(self.users, self._on_submission)
        self.smtp_port = self._smtp_loop.call(self._smtp.start(self._ports[1], context))
        self._serving = True
        if self._store is not None:
            self._autosaver = asyncio.run_coroutine_threadsafe(
                self._autosave(self._imap, self._store), self._imap_loop.loop
            )
        return self

    def stop(self) -> None:
        """Stop both servers (open connections are closed), then save the mailboxes if persistent."""
        if self._smtp_loop is not None:
            if self._smtp is not None:
                self._smtp_loop.call(self._smtp.stop())
                self._smtp = None
            self._smtp_loop.stop()
            self._smtp_loop = None
        if self._autosaver is not None:
            self._autosaver.cancel()
            self._autosaver = None
        if self._imap_loop is not None:
            if self._imap is not None:
                if self._store is not None and self._serving:
                    self._store.save_mailboxes(self._snapshot())
                self._imap_loop.call(self._imap.stop())
            self._imap_loop.stop()
        self._imap_loop = self._imap = None
        self._serving = False
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> MailSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def info(self) -> dict[str, Any]:
        """How to connect: per protocol host, port, TLS (implicit when on), the first user and password."""
        if self._imap is None:
            raise RuntimeError("the mail sandbox is not started")
        common = {
            "host": HOST,
            "tls": self.tls is not None,
            "security": "ssl" if self.tls else "none",
            "ca_file": str(self.tls.ca_file) if self.tls else None,
            "user": self.user,
            "password": self.users[self.user],
        }
        return {"imap": {**common, "port": self.imap_port}, "smtp": {**common, "port": self.smtp_port}}

    # --- back doors -----------------------------------------------------------------------------

    def deliver(
        self,
        folder: str,
        raw: bytes,
        *,
        user: str | None = None,
        flags: Sequence[str] = (),
        internal_date: datetime | None = None,
    ) -> None:
        """A message arrives in `folder` (created if missing); clients IDLEing on it are told."""
        imap, loop = self._running()
        loop.call(imap.deliver(user or self.user, folder, StoredMessage(raw, tuple(flags), internal_date)))

    def messages(self, folder: str, *, user: str | None = None) -> list[bytes]:
        """The raw messages in `folder`, in UID order (empty when the folder does not exist)."""
        imap, loop = self._running()
        return [m.raw for m in loop.call(imap.messages(user or self.user, folder))]

    def folders(self, *, user: str | None = None) -> list[str]:
        imap, loop = self._running()
        return loop.call(imap.folders(user or self.user))

    def sent(self) -> list[bytes]:
        """Every message the SMTP server accepted, oldest first, as the client sent it."""
        with self._sent_lock:
            return list(self._sent)

    # --- internals ------------------------------------------------------------------------------

    def _running(self) -> tuple[ImapStandIn, LoopThread]:
        if self._imap is None or self._imap_loop is None:
            raise RuntimeError("the mail sandbox is not started")
        return self._imap, self._imap_loop

    async def _on_submission(self, submission: Submission) -> None:
        """On the SMTP loop: record the message, then file it on the IMAP loop before answering 250."""
        with self._sent_lock:
            self._sent.append(submission.raw)
        imap, loop = self._running()
        filed = asyncio.run_coroutine_threadsafe(self._file(imap, submission), loop.loop)
        await asyncio.wrap_future(filed)

    async def _file(self, imap: ImapStandIn, submission: Submission) -> None:
        if submission.user in self.users:
            await imap.deliver(submission.user, SENT, StoredMessage(submission.raw, ("\\Seen",)))
        local = {name.lower(): name for name in self.users}
        for recipient in dict.fromkeys(r.lower() for r in submission.rcpt_tos):
            if recipient in local:
                await imap.deliver(local[recipient], INBOX, StoredMessage(submission.raw))

    def _snapshot(self) -> Mailboxes:
        imap, loop = self._running()
        return loop.call(self._everything(imap))

    async def _everything(self, imap: ImapStandIn) -> Mailboxes:
        return {
            user: {name: await imap.messages(user, name) for name in await imap.folders(user)}
            for user in self.users
        }

    async def _autosave(self, imap: ImapStandIn, store: MailStore) -> None:
        """On the IMAP loop: save the mailboxes whenever they changed, whoever changed them."""
        saved = await imap.version()
        while True:
            await asyncio.sleep(AUTOSAVE_SECONDS)
            current = await imap.version()
            if current != saved:
                mailboxes = await self._everything(imap)
                await asyncio.get_running_loop().run_in_executor(None, store.save_mailboxes, mailboxes)
                saved = current


async def _new_imap(users: dict[str, str]) -> ImapStandIn:
    """pymap's locks and events belong to the loop they are made on: build it there."""
    imap = ImapStandIn(users)
    await imap.add_users()
    for user in users:
        for folder in STANDARD_FOLDERS:
            await imap.folder(user, folder)
    return imap
