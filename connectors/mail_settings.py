"""The `kind: imap` and `kind: smtp` configuration blocks, and the clear-text rule they share."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator


class ImapSettings(BaseModel):
    """The `kind: imap` block of a connection."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    kind: Literal["imap"] = Field("imap", description="Connection kind: an IMAP mailbox.")

    host: str
    """The IMAP server's host name."""
    port: int = 993
    """993 for ssl, 143 for starttls."""
    security: Literal["ssl", "starttls", "none"] = "ssl"
    """TLS from the first byte (ssl), upgraded after connecting (starttls), or none."""
    allow_plaintext: bool = False
    """`security: none` sends the password in clear: refused unless the host is loopback or this is set."""
    username: str
    """The mailbox user."""
    password: SecretStr
    """The mailbox password; give it as ${ENV_VAR} or file:/run/secrets/name."""
    folders: list[str] = Field(default_factory=lambda: ["INBOX"])
    """The folders offered as streams."""
    ca_file: Path | None = None
    """CA bundle to trust instead of the system's."""
    connect_timeout_seconds: float = Field(15.0, gt=0)
    """Timeout of connecting and logging in."""
    read_timeout_seconds: float = Field(60.0, gt=0)
    """Socket timeout of every later command."""
    batch_size: int = Field(100, ge=1, le=5000)
    """Messages per batch handed to the engine (each batch is a checkpoint)."""
    fetch_bytes: int = Field(32 * 1024 * 1024, ge=1)
    """Most message bytes asked for in one FETCH of bodies (one message always fits)."""
    max_message_bytes: int = Field(50 * 1024 * 1024, ge=1)
    """A larger message becomes a dead letter (its headers are kept) instead of being fetched."""
    max_parts: int = Field(500, ge=1)
    """A message with more MIME parts becomes a dead letter."""
    max_attachment_bytes: int = Field(25 * 1024 * 1024, ge=1)
    """A larger attachment makes its message a dead letter."""
    attachment_dir: Path | None = None
    """Store attachment contents here, by their SHA-256 (files 0600), never under the sender's file name."""
    include_headers: bool = False
    """Also hand on every raw header of each message as `headers`."""
    idle_reissue_seconds: float = Field(25 * 60, gt=0, lt=29 * 60)
    """RFC 2177: servers may drop an IDLE after 30 minutes; re-issuing also proves the link alive (NOOP)."""
    idle_poll_seconds: float = Field(1.0, gt=0)
    """How often a waiting IDLE looks at its stop flag and its socket."""
    reconnect_max_seconds: float = Field(60.0, gt=0)
    """Cap of the back-off between reconnects of a watcher."""
    retries: int = Field(3, ge=0, le=10)
    """Tries of one command after a dropped connection."""

    @model_validator(mode="after")
    def _no_clear_text_password_over_the_network(self) -> ImapSettings:
        refuse_plaintext(self.security, self.host, self.allow_plaintext)
        return self


def refuse_plaintext(security: str, host: str, allowed: bool) -> None:
    """Shared by IMAP and SMTP settings: a password in clear leaves this machine only when asked to."""
    if security == "none" and not allowed and host not in ("127.0.0.1", "::1", "localhost"):
        raise ValueError(
            "security: none would send the password in clear; use ssl or starttls, or set allow_plaintext"
        )


class SentCopySettings(BaseModel):
    """Where sent mail is filed (IMAP), and looked up by Message-ID before a possible resend."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    imap: ImapSettings
    """The mailbox that keeps the sent copies."""
    folder: str = "Sent"
    """Its folder of sent mail."""


class SmtpSettings(BaseModel):
    """The `kind: smtp` block of a connection."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    kind: Literal["smtp"] = Field("smtp", description="Connection kind: sending mail through an SMTP server.")

    host: str
    """The SMTP server's host name."""
    port: int = 587
    """587 for starttls, 465 for ssl."""
    security: Literal["starttls", "ssl", "none"] = "starttls"
    """Upgrade after connecting (starttls), TLS from the first byte (ssl), or none."""
    allow_plaintext: bool = False
    """`security: none` sends the password and mail in clear: refused unless the host is loopback or this is set."""
    username: str | None = None
    """Login user, when the server needs AUTH."""
    password: SecretStr | None = None
    """Login password; give it as ${ENV_VAR} or file:/run/secrets/name."""
    ca_file: Path | None = None
    """CA bundle to trust instead of the system's."""
    timeout_seconds: float = Field(30.0, gt=0)
    """Socket timeout of every command."""
    from_address: str | None = None
    """Used when a mapped message has no `from`."""
    message_id_domain: str = "syncd.invalid"
    """Domain of the Message-IDs syncd makes (derived from each write, so a resend is recognised)."""
    attachment_dir: Path | None = None
    """Where attachments named by SHA-256 are read from (the IMAP connector's store)."""
    sent_copy: SentCopySettings | None = None
    """File each sent message in an IMAP folder, and look there before a send that may be a repeat."""
    retries: int = Field(3, ge=0, le=10)
    """Tries of one send after a dropped connection or a temporary refusal."""
    local_hostname: str | None = None
    """Name given in EHLO (default: this machine's)."""

    @model_validator(mode="after")
    def _no_clear_text_over_the_network(self) -> SmtpSettings:
        refuse_plaintext(self.security, self.host, self.allow_plaintext)
        return self
