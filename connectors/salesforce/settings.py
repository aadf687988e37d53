"""The `salesforce` connection's configuration block (one org; each sObject is a stream).

Every field carries a description because the editor JSON Schema is generated from this model.
Secrets are `SecretStr` so they never print; `${ENV}` / `file:` indirection is resolved by syncd.config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

DEFAULT_OBJECTS = (
    "Account",
    "Contact",
    "Order",
    "OrderItem",
    "Product2",
    "Pricebook2",
    "PricebookEntry",
    "Case",
    "EmailMessage",
    "Task",
)


class SalesforceSettings(BaseModel):
    """Which org, how to log in, what to read, and how much of the org's API allowance to use."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["salesforce"] = Field("salesforce", description="Connection kind: a Salesforce org.")
    login_url: str = Field(
        "https://login.salesforce.com",
        description="Where to log in: https://login.salesforce.com, https://test.salesforce.com, a My Domain "
        "URL, or the sandbox's `login_url`.",
    )
    instance_url: str | None = Field(
        None, description="The org's instance URL; needed with `session_id`, otherwise learnt at login."
    )
    username: str | None = Field(None, description="The integration user's username.")
    password: SecretStr | None = Field(None, description="That user's password.")
    security_token: SecretStr | None = Field(
        None, description="That user's security token (appended to the password for SOAP login)."
    )
    client_id: str | None = Field(
        None, description="Connected app consumer key (OAuth password or JWT flow)."
    )
    client_secret: SecretStr | None = Field(
        None, description="Connected app consumer secret (OAuth password flow)."
    )
    private_key_file: Path | None = Field(
        None, description="PEM private key of the connected app's certificate, for the OAuth JWT bearer flow."
    )
    jwt_audience: str = Field(
        "https://login.salesforce.com",
        description="`aud` of the JWT assertion: https://login.salesforce.com, or https://test.salesforce.com for "
        "sandboxes.",
    )
    session_id: SecretStr | None = Field(
        None, description="An existing session (with `instance_url`); it cannot be renewed when it expires."
    )
    ca_file: Path | None = Field(
        None, description="CA bundle to trust instead of the system's (the sandbox's ca.pem)."
    )
    api_version: str = Field("62.0", pattern=r"^\d{2}\.0$", description="REST API version, e.g. 62.0.")
    objects: tuple[str, ...] = Field(
        DEFAULT_OBJECTS, description="The sObjects offered as streams (describe is called for each)."
    )
    select: dict[str, list[str]] = Field(
        default_factory=dict,
        description="sObject -> extra relationship paths to read with each record, e.g. {Contact: [Account.AccountNumber, "
        "Owner.Name]}.",
    )
    overlap_seconds: float = Field(
        5,
        ge=0,
        description="Each read looks this far behind its cursor again, for transactions that committed late "
        "with an earlier SystemModstamp; records already seen are not handed on twice.",
    )
    page_size: int = Field(2000, ge=200, le=2000, description="Records per query page Salesforce returns.")
    batch_size: int = Field(
        2000, ge=1, description="Records per batch handed to the engine (each batch is a checkpoint)."
    )
    bulk_threshold: int = Field(
        2000, ge=1, description="Writes of more records than this in one call go through Bulk API 2.0."
    )
    max_pass_share: float = Field(
        0.25,
        gt=0,
        le=1,
        description="Stop a pass cleanly once it has used this share of the daily API limit.",
    )
    max_org_share: float = Field(
        0.9,
        gt=0,
        le=1,
        description="Stop a pass cleanly once the whole org has used this share of its daily limit.",
    )
    max_attempts: int = Field(
        5, ge=1, description="Tries per call on 503, UNABLE_TO_LOCK_ROW, resets and timeouts."
    )
    backoff_seconds: float = Field(0.5, ge=0, description="First retry delay; doubles per try, with jitter.")
    backoff_max_seconds: float = Field(30, ge=0, description="Cap of one retry delay.")
    timeout_seconds: float = Field(60, gt=0, description="HTTP timeout of one call.")
    describe_max_age_seconds: float = Field(
        900,
        ge=0,
        description="Reuse an sObject's describe for this long across passes (0: describe every pass). "
        "A query refused for a field that no longer exists describes again at once.",
    )
    hard_deletes_every_seconds: float = Field(
        3600,
        ge=60,
        description="How often a read asks getDeleted for records purged from the recycle bin. Deletions "
        "in the recycle bin are seen by every read; getDeleted looks 15 days back, so nothing is missed.",
    )
    bulk_poll_seconds: float = Field(2, ge=0, description="Delay between Bulk API job status checks.")
    bulk_timeout_seconds: float = Field(600, gt=0, description="Give up on a Bulk API job after this long.")

    @field_validator("login_url", "instance_url", "jwt_audience")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/") if value else value

    @model_validator(mode="after")
    def _one_auth(self) -> SalesforceSettings:
        if self.session_id is not None:
            if self.instance_url is None:
                raise ValueError("session_id needs instance_url")
            return self
        if self.username is None:
            raise ValueError(
                "give username (with password, or client_id and private_key_file), or session_id"
            )
        if self.private_key_file is not None:
            if self.client_id is None:
                raise ValueError("the JWT bearer flow needs client_id with private_key_file")
            return self
        if self.password is None:
            raise ValueError("give password (and security_token), or private_key_file for the JWT flow")
        if (self.client_id is None) != (self.client_secret is None):
            raise ValueError("the OAuth password flow needs both client_id and client_secret")
        return self
