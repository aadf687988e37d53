"""Service-account credentials for the Sheets sandbox, and its OAuth token endpoint.

The sandbox writes a real service-account JSON file (fresh RSA key, `token_uri` pointing at the
sandbox) so google-auth's `service_account.Credentials` runs its genuine JWT-bearer flow against it:
the connector's production auth path is what the tests exercise, not a shortcut.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import exceptions as google_exceptions
from google.auth import jwt

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
USER_CLIENT_ID = "100000000002-sandbox.apps.googleusercontent.com"
USER_EMAIL = "demo.user@example.com"
TOKEN_LIFETIME_S = 3600
#: google-auth signs service-account assertions for Google's endpoint whatever `token_uri` says, and
#: Google accepts both of these audiences; so does the sandbox (besides its own token URL).
GOOGLE_AUDIENCES = ("https://oauth2.googleapis.com/token", "https://www.googleapis.com/oauth2/v4/token")


@dataclass
class ServiceAccount:
    client_email: str
    private_key_pem: str
    public_key_pem: str
    key_id: str

    @staticmethod
    def generate(email: str = "syncd-sandbox@syncd-sandbox.iam.gserviceaccount.com") -> ServiceAccount:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        public_pem = (
            key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )
        return ServiceAccount(email, private_pem, public_pem, secrets.token_hex(20))

    def info(self, token_uri: str) -> dict[str, str]:
        """The JSON Google issues for a service-account key, with `token_uri` set to the sandbox."""
        return {
            "type": "service_account",
            "project_id": "syncd-sandbox",
            "private_key_id": self.key_id,
            "private_key": self.private_key_pem,
            "client_email": self.client_email,
            "client_id": "100000000000000000001",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": token_uri,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "universe_domain": "googleapis.com",
        }

    def write(self, path: Path, token_uri: str) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(json.dumps(self.info(token_uri), indent=2), encoding="utf-8")
        path.chmod(0o600)
        return path

    def to_json(self) -> dict[str, str]:
        return {
            "client_email": self.client_email,
            "private_key_pem": self.private_key_pem,
            "public_key_pem": self.public_key_pem,
            "key_id": self.key_id,
        }


class TokenError(Exception):
    """A refused token request; `body` is the OAuth error JSON."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.body = {"error": "invalid_grant", "error_description": description}


@dataclass
class TokenIssuer:
    """Exchanges signed JWT assertions for bearer tokens and tells which account a token belongs to."""

    account: ServiceAccount
    token_uri: str
    static_tokens: dict[str, str] = field(default_factory=dict)
    user_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    user_refresh_token: str = field(default_factory=lambda: "1//sandbox-" + secrets.token_urlsafe(32))
    _issued: dict[str, tuple[str, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def exchange(self, form: dict[str, str]) -> dict[str, Any]:
        """Answer a token request: the JWT-bearer grant (service accounts) or the refresh-token grant
        (OAuth user credentials, see `user_info`)."""
        if form.get("grant_type") == "refresh_token":
            return self._refresh(form)
        if form.get("grant_type") != JWT_BEARER:
            raise TokenError("Invalid grant_type")
        assertion = form.get("assertion", "")
        try:
            claims = jwt.decode(  # type: ignore[no-untyped-call]
                assertion, certs=self.account.public_key_pem, audience=[self.token_uri, *GOOGLE_AUDIENCES]
            )
        except (ValueError, google_exceptions.GoogleAuthError) as exc:
            reason = str(exc)
            raise TokenError(
                "Invalid JWT Signature." if "signature" in reason.lower() else f"Invalid JWT: {reason}"
            ) from exc
        if claims.get("iss") != self.account.client_email:
            raise TokenError("Invalid JWT: unknown issuer.")
        return self._issue(self.account.client_email)

    def user_info(self) -> dict[str, str]:
        """An OAuth authorized-user file's content (what `gcloud`/gspread's oauth flow saves), whose
        refresh token this issuer honours; the user is `USER_EMAIL`."""
        return {
            "type": "authorized_user",
            "client_id": USER_CLIENT_ID,
            "client_secret": self.user_secret,
            "refresh_token": self.user_refresh_token,
            "token_uri": self.token_uri,
        }

    def _refresh(self, form: dict[str, str]) -> dict[str, Any]:
        if (
            form.get("client_id") != USER_CLIENT_ID
            or not secrets.compare_digest(form.get("client_secret", ""), self.user_secret)
            or not secrets.compare_digest(form.get("refresh_token", ""), self.user_refresh_token)
        ):
            raise TokenError("Token has been expired or revoked.")
        return self._issue(USER_EMAIL)

    def _issue(self, user: str) -> dict[str, Any]:
        token = "ya29.sandbox-" + secrets.token_urlsafe(32)
        with self._lock:
            self._issued[token] = (user, time.time() + TOKEN_LIFETIME_S)
        return {"access_token": token, "expires_in": TOKEN_LIFETIME_S - 1, "token_type": "Bearer"}

    def user_of(self, token: str) -> str | None:
        """The account a bearer token acts for, or None when it is unknown or expired."""
        if token in self.static_tokens:
            return self.static_tokens[token]
        with self._lock:
            entry = self._issued.get(token)
        if entry is None or entry[1] < time.time():
            return None
        return entry[0]
