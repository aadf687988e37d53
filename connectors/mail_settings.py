"""The `kind: imap` and `kind: smtp` configuration blocks, and the clear-text rule they share."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator


class ImapSettings(BaseModel):
    """The `kind: imap` block of a connection."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["imap"] = Field("imap", description="Connection kind: an IMAP mailbox.")

    host: str
    port: int = 993
    security: Literal["ssl", "starttls", "none"] = "ssl"
    allow_plaintext: bool = False
    """`security: none` sends the password in clear: refused unless the host is loopback or this is set."""
    username: str
    password: SecretStr
    folders: list[str] = Field(default_factory=lambda: ["INBOX"])
    ca_file: Path | None = None
    connect_timeout_seconds: float = Field(15.0, gt=0)
    read_timeout_seconds: float = Field(60.0, gt=0)
    batch_size: int = Field(100, ge=1, le=5000)
    fetch_bytes: int = Field(32 * 1024 * 1024, ge=1)
    """Most message bytes asked for in one FETCH of bodies (one message always fits)."""
    max_message_bytes: int = Field(50 * 1024 * 1024, ge=1)
    max_parts: int = Field(500, ge=1)
    max_attachment_bytes: int = Field(25 * 1024 * 1024, ge=1)
    attachment_dir: Path | None = None
    include_headers: bool = False
    idle_reissue_seconds: float = Field(25 * 60, gt=0, lt=29 * 60)
    """RFC 2177: servers may drop an IDLE after 30 minutes; re-issuing also proves the link alive (NOOP)."""
    idle_poll_seconds: float = Field(1.0, gt=0)
    """How often a waiting IDLE looks at its stop flag and its socket."""
    reconnect_max_seconds: float = Field(60.0, gt=0)
    retries: int = Field(3, ge=0, le=10)

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

    model_config = ConfigDict(extra="forbid")

    imap: ImapSettings
    folder: str = "Sent"


class SmtpSettings(BaseModel):
    """The `kind: smtp` block of a connection."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["smtp"] = Field("smtp", description="Connection kind: sending mail through an SMTP server.")

    host: str
    port: int = 587
    security: Literal["starttls", "ssl", "none"] = "starttls"
    allow_plaintext: bool = False
    """`security: none` sends the password and mail in clear: refused unless the host is loopback or this is set."""
    username: str | None = None
    password: SecretStr | None = None
    ca_file: Path | None = None
    timeout_seconds: float = Field(30.0, gt=0)
    from_address: str | None = None
    """Used when a mapped message has no `from`."""
    message_id_domain: str = "syncd.invalid"
    attachment_dir: Path | None = None
    sent_copy: SentCopySettings | None = None
    retries: int = Field(3, ge=0, le=10)
    local_hostname: str | None = None

    @model_validator(mode="after")
    def _no_clear_text_over_the_network(self) -> SmtpSettings:
        refuse_plaintext(self.security, self.host, self.allow_plaintext)
        return self
