"""Sending mail (push only) over SMTP with the standard library's smtplib.

A message must go out once per outbox entry, even across a crash. Two things make that hold:
the Message-ID is derived from the write's idempotency key (the same outbox entry always builds
the same Message-ID, recorded in the journal with the outbox row before sending), and, when a
Sent folder is configured, a copy is appended there after sending and looked up there before
sending. The engine skips entries the journal shows done; the Sent folder answers for the one
window the journal cannot see, a crash between the server accepting the message and the journal
recording it. Without a Sent folder that window remains, and is said so here rather than hidden.

Header values and addresses are validated by syncd itself (connectors.mail_build) before smtplib
sees them, whatever the Python version does about header injection.
"""

from __future__ import annotations

import contextlib
import logging
import smtplib
import ssl
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, NoReturn

from pydantic import BaseModel

from connectors.imap import ImapConnector
from connectors.mail_build import addresses, build_message, make_message_id
from connectors.mail_settings import SmtpSettings
from syncd.errors import ConfigError, ConnectionDown, RecordError, TransientError
from syncd.records import (
    Batch,
    Cursor,
    FieldInfo,
    Op,
    RecordFailure,
    StreamInfo,
    WriteOp,
    WriteResult,
    telemetry,
)

log = logging.getLogger(__name__)

_DROPPED = (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, OSError)


FIELDS = (
    FieldInfo("message_id", updateable=False),
    FieldInfo("from", "list"),
    FieldInfo("to", "list", nullable=False),
    FieldInfo("cc", "list"),
    FieldInfo("bcc", "list"),
    FieldInfo("reply_to", "list"),
    FieldInfo("subject"),
    FieldInfo("text"),
    FieldInfo("html"),
    FieldInfo("in_reply_to"),
    FieldInfo("references", "list"),
    FieldInfo("attachments", "list"),
)


class SmtpConnector:
    """One SMTP submission account; its only stream, "outbox", accepts creates."""

    Settings: ClassVar[type[BaseModel]] = SmtpSettings
    STREAM = "outbox"

    def __init__(self, name: str, settings: SmtpSettings, base_dir: Path | None = None) -> None:
        self.name = name
        self.settings = settings
        self.base_dir = base_dir or Path.cwd()
        self._smtp: smtplib.SMTP | None = None
        self._sent: ImapConnector | None = None
        if settings.sent_copy is not None:
            self._sent = ImapConnector(f"{name}.sent", settings.sent_copy.imap, self.base_dir)

    def streams(self) -> list[StreamInfo]:
        return [StreamInfo(self.STREAM, "message_id", FIELDS, frozenset())]

    def read(self, stream: str, cursor: Cursor | None) -> Iterator[Batch]:
        raise ConfigError(f"{self.name}: smtp is push only; it cannot be a mapping's source")

    # -- connection ---------------------------------------------------------------------------

    def _path(self, path: Path | None) -> Path | None:
        return None if path is None else path if path.is_absolute() else self.base_dir / path

    def _ssl_context(self) -> ssl.SSLContext:
        ca = self._path(self.settings.ca_file)
        return ssl.create_default_context(cafile=str(ca) if ca else None)

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        smtp: smtplib.SMTP | None = None
        try:
            if s.security == "ssl":
                smtp = smtplib.SMTP_SSL(
                    s.host, s.port, s.local_hostname, timeout=s.timeout_seconds, context=self._ssl_context()
                )
            else:
                smtp = smtplib.SMTP(s.host, s.port, s.local_hostname, timeout=s.timeout_seconds)
                if s.security == "starttls":
                    smtp.starttls(context=self._ssl_context())
            if s.username:
                password = s.password.get_secret_value() if s.password else ""
                smtp.login(s.username, password)
        except BaseException as exc:
            if smtp is not None:  # a refused login must not leak the socket
                with contextlib.suppress(Exception):
                    smtp.close()
            self._raise_connect_error(exc)
        assert smtp is not None
        telemetry().connection_up(self.name, True)
        return smtp

    def _raise_connect_error(self, error: BaseException) -> NoReturn:
        """The one place a failed connect becomes syncd's error kinds (bad credentials are config)."""
        s = self.settings
        if isinstance(error, smtplib.SMTPAuthenticationError):
            telemetry().connection_up(self.name, False)
            raise ConfigError(
                f"{self.name}: SMTP login refused for {s.username} at {s.host}:{s.port}"
            ) from error
        if isinstance(error, smtplib.SMTPNotSupportedError):
            raise ConfigError(
                f"{self.name}: {s.host}:{s.port} does not offer {s.security.upper()} or AUTH"
            ) from error
        if isinstance(error, ssl.SSLError):
            raise ConnectionDown(f"{self.name}: TLS with {s.host}:{s.port} failed: {error.reason}") from error
        if isinstance(error, _DROPPED):
            raise ConnectionDown(
                f"{self.name}: cannot reach {s.host}:{s.port}: {type(error).__name__}"
            ) from error
        raise error

    def _session(self) -> smtplib.SMTP:
        if self._smtp is None:
            self._smtp = self._connect()
        return self._smtp

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.close()
            except OSError:
                log.debug("%s: closing a dropped SMTP connection failed", self.name, exc_info=True)

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()
        if self._sent is not None:
            self._sent.close()

    # -- write --------------------------------------------------------------------------------

    def write(self, stream: str, ops: Sequence[WriteOp]) -> list[WriteResult]:
        """Send each create; a per-record problem fails only its op."""
        if stream != self.STREAM:
            raise ConfigError(f"{self.name}: unknown stream {stream!r}; smtp has only {self.STREAM!r}")
        results: list[WriteResult] = []
        for op in ops:
            try:
                results.append(self._send_one(op))
            except RecordError as exc:
                results.append(WriteResult(False, op.key, RecordFailure(exc.category, exc.code, exc.message)))
        return results

    def _send_one(self, op: WriteOp) -> WriteResult:
        if op.op not in (Op.CREATE, Op.UPSERT):
            raise RecordError("validation", f"sent mail cannot be {op.op.value}d", code="SEND_ONLY")
        seed = op.idempotency_key or op.key
        if not op.fields.get("message_id") and not seed:
            raise RecordError(
                "validation", "a message needs a message_id or an idempotency key", code="NO_ID"
            )
        message_id = str(
            op.fields.get("message_id") or make_message_id(str(seed), self.settings.message_id_domain)
        )
        fields: dict[str, Any] = dict(op.fields)
        if not fields.get("from"):
            if not self.settings.from_address:
                raise RecordError("validation", "no sender: map `from` or set from_address", code="NO_FROM")
            fields["from"] = self.settings.from_address
        message = build_message(
            fields, message_id=message_id, attachment_dir=self._path(self.settings.attachment_dir)
        )
        sender = addresses("from", fields["from"])[0].addr_spec
        recipients = [a.addr_spec for key in ("to", "cc", "bcc") for a in addresses(key, fields.get(key))]
        if not recipients:
            raise RecordError("validation", "no recipients", code="NO_RECIPIENTS", field="to")
        if self._already_sent(message_id):
            return WriteResult(True, message_id, created=False)
        # Bcc is never a header: it lives in the envelope only. SMTP and IMAP want CRLF line ends
        # (RFC 5321 2.3.8): smtplib sends bytes as they are, and a bare-LF body is one long line.
        raw = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
        self._deliver(sender, recipients, raw)
        self._file_copy(message_id, raw)
        return WriteResult(True, message_id, created=True)

    def _deliver(self, sender: str, recipients: list[str], raw: bytes) -> None:
        """Hand the message to the server, retrying what the server calls temporary.

        A connection lost after DATA but before the server's reply is retried too: the message
        may then arrive twice. SMTP offers no way to ask; the Sent-folder check cannot see it either.
        """
        delay = 0.5
        sink = telemetry()
        for attempt in range(self.settings.retries + 1):
            started = time.monotonic()
            try:
                refused = self._session().sendmail(sender, recipients, raw)
            except smtplib.SMTPRecipientsRefused as exc:
                sink.api_call(self.name, "send", "error", time.monotonic() - started)
                code, text = _first(exc.recipients.values())
                raise _record_error(code, text, "every recipient was refused") from exc
            except smtplib.SMTPSenderRefused as exc:
                sink.api_call(self.name, "send", "error", time.monotonic() - started)
                raise _record_error(exc.smtp_code, exc.smtp_error, "sender refused") from exc
            except smtplib.SMTPDataError as exc:
                sink.api_call(self.name, "send", "error", time.monotonic() - started)
                if not 400 <= exc.smtp_code < 500 or attempt == self.settings.retries:
                    raise _record_error(exc.smtp_code, exc.smtp_error, "message refused") from exc
                self._drop()
                sink.retry(self.name, "send", "deferred")
                log.info("%s: server deferred the message (%s); retrying", self.name, exc.smtp_code)
            except _DROPPED as exc:
                sink.api_call(self.name, "send", "transient", time.monotonic() - started)
                self._drop()
                if attempt == self.settings.retries:
                    sink.connection_up(self.name, False)
                    raise ConnectionDown(f"{self.name}: SMTP connection lost: {type(exc).__name__}") from exc
                sink.retry(self.name, "send", "connection-lost")
            else:
                sink.api_call(self.name, "send", "ok", time.monotonic() - started)
                if refused:
                    # Accepted for some: it went out, so it must not be sent again. Count, no addresses.
                    log.warning(
                        "%s: %d recipient(s) refused; the others received the message",
                        self.name,
                        len(refused),
                    )
                return
            time.sleep(delay)
            delay = min(delay * 2, 30.0)

    def _already_sent(self, message_id: str) -> bool:
        if self._sent is None or self.settings.sent_copy is None:
            return False
        return bool(self._sent.find(self.settings.sent_copy.folder, "message_id", [message_id]))

    def _file_copy(self, message_id: str, raw: bytes) -> None:
        if self._sent is None or self.settings.sent_copy is None:
            return
        try:
            self._sent.append_raw(self.settings.sent_copy.folder, message_id, raw, ["\\Seen"])
        except (ConnectionDown, TransientError) as exc:
            # The mail is out; failing the record now would send it again. Say so and go on.
            log.warning("%s: sent %s but could not file a copy: %s", self.name, message_id, exc)


def _first(values: Any) -> tuple[int, bytes]:
    for code, text in values:
        return int(code), text if isinstance(text, bytes) else str(text).encode()
    return 550, b""


def _record_error(code: int, text: bytes | str, what: str) -> RecordError:
    detail = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    category = "transient-exhausted" if 400 <= code < 500 else "validation"
    return RecordError(category, f"{what}: {code} {detail}", code=str(code))
