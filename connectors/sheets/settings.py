"""The `sheets` connection's configuration block (one Google spreadsheet; each worksheet is a stream).

Every field carries a description because the editor JSON Schema is generated from this model.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

SYNCD_ID = "syncd id"
"""Header of the hidden key column syncd adds to worksheets that have no natural key."""

_URL_ID = re.compile(r"/spreadsheets/d/([a-zA-Z0-9-_]+)")


class SheetsSettings(BaseModel):
    """Which spreadsheet, how to authenticate, and how to read its worksheets as tables."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["sheets"] = Field("sheets", description="Connection kind: a Google Sheets spreadsheet.")
    spreadsheet: str = Field(
        description="The spreadsheet's id (the long part of its URL) or its full URL.", min_length=10
    )
    service_account_file: Path | None = Field(
        None, description="A service-account key file (JSON). Share the spreadsheet with its client_email."
    )
    oauth_token_file: Path | None = Field(
        None, description="An OAuth authorized-user file (JSON with a refresh token), acting as that user."
    )
    access_token: SecretStr | None = Field(
        None,
        description="A fixed bearer token, for a local Sheets sandbox only (real tokens expire in an hour).",
    )
    endpoint: str | None = Field(
        None,
        description=(
            "Send API calls to this base URL instead of Google (the Sheets sandbox: `syncd sandbox` "
            "prints it). The credentials stay as configured."
        ),
    )
    ca_file: Path | None = Field(
        None, description="CA bundle to trust for `endpoint` (the sandbox's ca.pem)."
    )
    header_row: int = Field(1, ge=1, description="Row holding the column headers; data starts below it.")
    keys: dict[str, str] = Field(
        default_factory=dict,
        description=(
            f"Worksheet -> header of its key column. Default: the first column. `{SYNCD_ID}` makes "
            "syncd keep its own ids in a hidden column of that name (for sheets without a natural key)."
        ),
    )
    formulas: dict[str, list[str]] = Field(
        default_factory=dict,
        description=(
            "Worksheet -> columns whose values are formulas on purpose (written as typed). In every other "
            "column a value a spreadsheet would run as a formula (= + - @) is stored with a leading "
            "apostrophe and read back without it."
        ),
    )
    dates: dict[str, list[str]] = Field(
        default_factory=dict,
        description=(
            "Worksheet -> columns holding dates or times. They are read as the sheet displays them "
            "(e.g. 2024-02-29) and written back parsed, as if typed, so they stay dates in the sheet "
            "rather than becoming text."
        ),
    )
    modified: dict[str, str] = Field(
        default_factory=dict,
        description="Worksheet -> column holding each row's last-edit time (ISO 8601), for newest-wins.",
    )
    settle_seconds: float = Field(
        0,
        ge=0,
        description=(
            "A changed row is handed on only once it has stayed the same for this long, so a row "
            "someone is still typing is not synced half-done."
        ),
    )
    read_per_minute: int = Field(
        60, ge=1, description="Read requests per minute syncd allows itself (Google: 60)."
    )
    write_per_minute: int = Field(
        60, ge=1, description="Write requests per minute syncd allows itself (Google: 60)."
    )
    max_quota_wait_seconds: float = Field(
        20, ge=0, description="Longest wait for quota before the pass stops and resumes on the next one."
    )
    max_attempts: int = Field(8, ge=1, description="Tries per call on 429, 5xx or a dropped connection.")
    backoff_seconds: float = Field(1.0, ge=0, description="First retry delay; doubles per try, with jitter.")
    backoff_max_seconds: float = Field(
        64.0, ge=0, description="Cap of one retry delay (Google suggests 64 s)."
    )
    timeout_seconds: float = Field(60.0, gt=0, description="HTTP timeout of one call.")
    max_request_bytes: int = Field(
        9_000_000,
        ge=100_000,
        le=10_000_000,
        description=(
            "Largest body of one write request; a bigger write is cut into requests of this size. "
            "Google refuses a request over 10 MiB (10,485,760 bytes) and recommends 2 MB for speed, "
            "but the per-minute write quota, not bandwidth, is what runs out, so the default sends a "
            "pass's writes in as few requests as it can. Set 2000000 on a slow link."
        ),
    )
    batch_size: int = Field(500, ge=1, description="Records per batch handed to the engine when reading.")

    @field_validator("endpoint")
    @classmethod
    def _http_endpoint(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("endpoint must be an http(s) URL")
        return value

    @model_validator(mode="after")
    def _one_auth(self) -> SheetsSettings:
        given = [
            name
            for name in ("service_account_file", "oauth_token_file", "access_token")
            if getattr(self, name) is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of service_account_file, oauth_token_file or access_token"
                + (f" (got {', '.join(given)})" if given else "")
            )
        if self.access_token is not None and self.endpoint is None:
            raise ValueError("access_token is only for a sandbox: set endpoint as well")
        return self

    def spreadsheet_id(self) -> str:
        m = _URL_ID.search(self.spreadsheet)
        return m.group(1) if m else self.spreadsheet
