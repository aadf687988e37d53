"""The sandbox's SMTP server: aiosmtpd on one loopback port, accepting mail from the sandbox's users.

It behaves like a small submission server: AUTH (PLAIN/LOGIN) as a sandbox user before MAIL, every
recipient is accepted (nothing leaves the machine), and each accepted message is handed to a callback
that records it and files it as a mail provider would (a copy in the sender's Sent folder, and the
message in the INBOX of any recipient who is a sandbox user). TLS, when on, is implicit (SMTPS).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

HOSTNAME = "sandbox.localhost"


def _not_deprecation_noise(record: logging.LogRecord) -> bool:
    """aiosmtpd logs a warning about its own deprecated attribute at every login: not ours to act on."""
    return not record.getMessage().startswith("Session.login_data is deprecated")


logging.getLogger("mail.log").addFilter(_not_deprecation_noise)


@dataclass(frozen=True)
class Submission:
    """One message the server accepted: who sent it (the logged-in user), the envelope, the bytes."""

    user: str | None
    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes


OnSubmission = Callable[[Submission], Awaitable[None]]


class _Handler:
    def __init__(self, on_submission: OnSubmission) -> None:
        self._on_submission = on_submission

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        """Mail only from a logged-in user, as a submission server demands (RFC 4954's 530).

        Checked here rather than with aiosmtpd's `auth_required`, which would also insist on TLS
        before AUTH, and the sandbox runs plain unless asked for TLS.
        """
        if not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        auth = session.auth_data
        user = auth.login.decode("utf-8", "replace") if isinstance(auth, LoginPassword) else None
        raw = envelope.original_content or b""
        await self._on_submission(Submission(user, str(envelope.mail_from), tuple(envelope.rcpt_tos), raw))
        return "250 2.0.0 Message accepted for delivery"


class _Users:
    """aiosmtpd authenticator: a user and password of the sandbox, compared as given."""

    def __init__(self, users: dict[str, str]) -> None:
        self._users = users

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: object
    ) -> AuthResult:
        if isinstance(data, LoginPassword):
            login = data.login.decode("utf-8", "replace")
            if login in self._users and self._users[login].encode() == data.password:
                return AuthResult(success=True, auth_data=data)
        return AuthResult(success=False, handled=False)


class SmtpStandIn:
    """aiosmtpd's SMTP protocol served on the running loop; `stop()` also hangs up open sessions."""

    def __init__(self, users: dict[str, str], on_submission: OnSubmission) -> None:
        self._handler = _Handler(on_submission)
        self._authenticator = _Users(users)
        self._server: asyncio.Server | None = None
        self._sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()

    def _protocol(self) -> SMTP:
        session = SMTP(
            self._handler,
            hostname=HOSTNAME,
            authenticator=self._authenticator,
            # Loopback only, and implicit TLS when the sandbox has it: AUTH in clear text on
            # 127.0.0.1 is what a local test server offers. Login is enforced in handle_MAIL.
            auth_require_tls=False,
            loop=asyncio.get_running_loop(),
        )
        self._sessions.add(session)
        return session

    async def start(self, port: int, ssl_context: ssl.SSLContext | None) -> int:
        """Listen on 127.0.0.1:`port` (0 picks one); the port bound."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, host="127.0.0.1", port=port, ssl=ssl_context)
        bound: int = self._server.sockets[0].getsockname()[1]
        return bound

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for session in list(self._sessions):
            if session.transport is not None:
                session.transport.close()
