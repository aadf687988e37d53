"""Logging in to the sandbox: SOAP, OAuth password and JWT bearer flows; session checks and expiry."""

from __future__ import annotations

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceAuthenticationFailed

from syncd.sandbox.salesforce import SalesforceSandbox
from tests.sandbox.salesforce_clients import API_VERSION, client, https_session, password_flow_token


def test_soap_login_as_simple_salesforce_sends_it(sandbox: SalesforceSandbox) -> None:
    sf = client(sandbox)
    assert sf.sf_instance == sandbox.base_url.removeprefix("https://")
    assert sf.session_id.startswith(sandbox.info()["org_id"][:15] + "!")
    assert sf.query("SELECT Id FROM Account")["totalSize"] == 0


def test_soap_login_with_a_wrong_password_fails_like_salesforce(sandbox: SalesforceSandbox) -> None:
    info = sandbox.info()
    with pytest.raises(SalesforceAuthenticationFailed) as caught:
        Salesforce(
            username=info["username"],
            password="wrong",
            security_token=info["security_token"],
            session=https_session(sandbox),
            version=API_VERSION,
        )
    assert caught.value.code == "INVALID_LOGIN"
    assert "wrong" not in caught.value.message


def test_oauth_password_flow_gives_a_working_session(sandbox: SalesforceSandbox) -> None:
    session = https_session(sandbox)
    token = password_flow_token(sandbox, session)
    sf = Salesforce(instance_url=sandbox.base_url, session_id=token, session=session, version=API_VERSION)
    assert sf.Account.create({"Name": "Via OAuth"})["success"] is True


def test_oauth_password_flow_with_a_wrong_secret_is_invalid_client(sandbox: SalesforceSandbox) -> None:
    info = sandbox.info()
    answer = https_session(sandbox).post(
        f"{info['login_url']}/services/oauth2/token",
        data={
            "grant_type": "password",
            "client_id": info["client_id"],
            "client_secret": "nope",
            "username": info["username"],
            "password": info["password"] + info["security_token"],
        },
        timeout=10,
    )
    assert (answer.status_code, answer.json()) == (
        400,
        {"error": "invalid_client", "error_description": "invalid client credentials"},
    )


def test_jwt_bearer_flow_with_the_registered_key(sandbox: SalesforceSandbox) -> None:
    info = sandbox.info()
    sf = Salesforce(
        username=info["username"],
        consumer_key=info["client_id"],
        privatekey_file=info["jwt_private_key_file"],
        session=https_session(sandbox),
        version=API_VERSION,
    )
    assert sf.query("SELECT Id FROM Account")["done"] is True


def test_jwt_signed_with_an_unregistered_key_is_refused(sandbox: SalesforceSandbox) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    info = sandbox.info()
    with pytest.raises(SalesforceAuthenticationFailed) as caught:
        Salesforce(
            username=info["username"],
            consumer_key=info["client_id"],
            privatekey=stranger.decode(),
            session=https_session(sandbox),
            version=API_VERSION,
        )
    assert caught.value.code == "invalid_grant"


def test_api_calls_without_a_valid_session_are_401(sandbox: SalesforceSandbox) -> None:
    answer = https_session(sandbox).get(
        f"{sandbox.base_url}/services/data/v{API_VERSION}/query/",
        params={"q": "SELECT Id FROM Account"},
        headers={"Authorization": "Bearer 00Dforged!token"},
        timeout=10,
    )
    assert (answer.status_code, answer.json()) == (
        401,
        [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}],
    )


def test_expired_sessions_are_renewed_by_a_client_holding_credentials(
    sf: Salesforce, sandbox: SalesforceSandbox
) -> None:
    old = sf.session_id
    sandbox.expire_sessions()
    assert sf.query("SELECT Id FROM Account")["totalSize"] == 0
    assert sf.session_id != old
    assert sandbox.knobs.calls["login"] == 2


def test_expired_session_without_credentials_surfaces_401(sandbox: SalesforceSandbox) -> None:
    session = https_session(sandbox)
    token = password_flow_token(sandbox, session)
    sandbox.expire_sessions()
    answer = session.get(
        f"{sandbox.base_url}/services/data/v{API_VERSION}/limits/",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert answer.status_code == 401


def test_plain_http_when_tls_is_off() -> None:
    org = SalesforceSandbox(tls=False).start()
    try:
        assert org.info()["ca_file"] is None and org.base_url.startswith("http://")
        session = requests.Session()
        session.trust_env = False
        versions = session.get(f"{org.base_url}/services/data/", timeout=10).json()
        assert {"label": "v62.0", "url": "/services/data/v62.0", "version": "62.0"} in versions
    finally:
        org.stop()
