"""The sandbox's login endpoints: OAuth2 token (password and JWT bearer flows) and the SOAP login.

Each answers in the shape the real endpoint does, success and failure alike, because clients parse
them differently: simple-salesforce reads `sessionId`/`serverUrl` out of SOAP XML and `error` /
`error_description` out of OAuth JSON. The JWT flow verifies the assertion's signature with the public
key of the certificate registered for the connected app, exactly what Salesforce checks, so a client
that signs with the wrong key or claims the wrong audience fails here too.
"""

from __future__ import annotations

import secrets
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

_PARTNER_NS = "urn:partner.soap.sforce.com"
JWT_AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")


@dataclass
class Credentials:
    username: str = "coordinator@sandbox.example"
    password: str = "sandbox-password"
    security_token: str = "SANDBOXTOKEN"
    client_id: str = "3MVG9sandbox.client.id"
    client_secret: str = "sandbox-client-secret"
    certificates: list[x509.Certificate] = field(default_factory=list)


class AuthFailure(Exception):
    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


_GENERATED: list[tuple[bytes, bytes]] = []


def make_jwt_keypair(directory: Path) -> tuple[Path, Path]:
    """A connected-app key pair for the JWT flow: (private key PEM, certificate PEM), reused if present.

    One RSA key is generated per process and copied into each new directory: generation costs a few
    hundred milliseconds, and throwaway test orgs gain nothing from distinct keys.
    """
    key_file, cert_file = directory / "jwt_private_key.pem", directory / "jwt_certificate.pem"
    if key_file.exists() and cert_file.exists():
        return key_file, cert_file
    if not _GENERATED:
        _GENERATED.append(_generate_keypair())
    key_pem, cert_pem = _GENERATED[0]
    key_file.touch(mode=0o600)
    key_file.write_bytes(key_pem)
    key_file.chmod(0o600)
    cert_file.write_bytes(cert_pem)
    return key_file, cert_file


def _generate_keypair() -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "syncd sandbox connected app")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def new_session_token(org_id: str) -> str:
    """Salesforce session ids start with the 15-char org id and a `!`."""
    return f"{org_id[:15]}!{secrets.token_urlsafe(60)}"


def password_grant(creds: Credentials, form: dict[str, str]) -> str:
    """Check a grant_type=password request; returns the username it authenticates."""
    if form.get("client_id") != creds.client_id:
        raise AuthFailure(400, "invalid_client_id", "client identifier invalid")
    if form.get("client_secret") != creds.client_secret:
        raise AuthFailure(400, "invalid_client", "invalid client credentials")
    if form.get("username") != creds.username or form.get("password") not in {
        creds.password + creds.security_token,
        creds.password,
    }:
        raise AuthFailure(400, "invalid_grant", "authentication failure")
    return creds.username


def jwt_grant(creds: Credentials, assertion: str, extra_audiences: tuple[str, ...]) -> str:
    """Verify a JWT bearer assertion (RS256, iss = client id, sub = username, aud, exp)."""
    if not creds.certificates:
        raise AuthFailure(400, "invalid_client", "invalid client credentials")
    claims: dict[str, Any] | None = None
    for cert in creds.certificates:
        try:
            claims = jwt.decode(
                assertion,
                cert.public_key(),  # type: ignore[arg-type]
                algorithms=["RS256"],
                audience=[*JWT_AUDIENCES, *extra_audiences],
                options={"require": ["exp", "iss", "sub", "aud"]},
            )
            break
        except jwt.ExpiredSignatureError as exc:
            raise AuthFailure(400, "invalid_grant", "expired authorization code") from exc
        except jwt.InvalidAudienceError as exc:
            raise AuthFailure(400, "invalid_grant", "audience is invalid") from exc
        except jwt.PyJWTError:
            continue
    if claims is None:
        raise AuthFailure(400, "invalid_grant", "invalid assertion")
    if claims.get("iss") != creds.client_id:
        raise AuthFailure(400, "invalid_client_id", "client identifier invalid")
    if claims.get("sub") != creds.username:
        raise AuthFailure(400, "invalid_grant", "user hasn't approved this consumer")
    return creds.username


def token_response(
    token: str, instance_url: str, login_url: str, org_id: str, user_id: str
) -> dict[str, str]:
    return {
        "access_token": token,
        "instance_url": instance_url,
        "id": f"{login_url}/id/{org_id}/{user_id}",
        "token_type": "Bearer",
        "issued_at": str(int(time.time() * 1000)),
        "signature": secrets.token_urlsafe(32),
        "scope": "api",
    }


def soap_credentials(body: bytes) -> tuple[str, str]:
    """(username, password) from a partner-API login envelope; ValueError when it is not one."""
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        raise ValueError("DTDs are not accepted")
    root = ET.fromstring(body)
    username = root.find(f".//{{{_PARTNER_NS}}}username")
    password = root.find(f".//{{{_PARTNER_NS}}}password")
    if username is None or password is None:
        raise ValueError("not a login request")
    return username.text or "", password.text or ""


def soap_login_ok(
    instance_url: str, version: str, token: str, org_id: str, user_id: str, username: str
) -> str:
    server = f"{instance_url}/services/Soap/u/{version}/{org_id[:15]}"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns="urn:partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        "<soapenv:Body><loginResponse><result>"
        f"<metadataServerUrl>{instance_url}/services/Soap/m/{version}/{org_id[:15]}</metadataServerUrl>"
        "<passwordExpired>false</passwordExpired><sandbox>true</sandbox>"
        f"<serverUrl>{server}</serverUrl><sessionId>{escape(token)}</sessionId><userId>{user_id}</userId>"
        f"<userInfo><organizationId>{org_id}</organizationId><userName>{escape(username)}</userName>"
        "</userInfo></result></loginResponse></soapenv:Body></soapenv:Envelope>"
    )


def soap_fault(code: str, message: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:sf="urn:fault.partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f"<soapenv:Body><soapenv:Fault><faultcode>sf:{code}</faultcode><faultstring>{code}: {escape(message)}"
        f'</faultstring><detail><sf:LoginFault xsi:type="sf:LoginFault"><sf:exceptionCode>{code}'
        f"</sf:exceptionCode><sf:exceptionMessage>{escape(message)}</sf:exceptionMessage></sf:LoginFault>"
        "</detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )
