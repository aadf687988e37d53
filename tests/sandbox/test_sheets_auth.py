"""google-auth's service-account flow against the Sheets sandbox's own token endpoint, unchanged."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gspread
import pytest
import requests
from google.auth import crypt, jwt
from google.auth.exceptions import RefreshError
from google.auth.transport.requests import AuthorizedSession, Request
from google.oauth2 import credentials as user_credentials
from google.oauth2 import service_account

from connectors.sheets.transport import EndpointOverrideAdapter, mount_endpoint_override
from syncd.sandbox.sheets import SheetsSandbox
from syncd.sandbox.sheets_auth import ServiceAccount

logging.getLogger("werkzeug").setLevel(logging.WARNING)

SCOPES = ["https://www.googleapis.com/auth/spreadsheets", "https://www.googleapis.com/auth/drive"]


@pytest.fixture(scope="module")
def sheets_server() -> Iterator[SheetsSandbox]:
    with SheetsSandbox() as server:
        yield server


def trusting_session(server: SheetsSandbox) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = server.info()["ca_file"]
    mount_endpoint_override(session, server.base_url)
    return session


def authorized_session(server: SheetsSandbox, credentials: Any) -> AuthorizedSession:
    """What the connector does in production, with the endpoint override and CA of the sandbox."""
    authed = AuthorizedSession(credentials, auth_request=Request(trusting_session(server)))
    authed.trust_env = False
    authed.verify = server.info()["ca_file"]
    mount_endpoint_override(authed, server.base_url)
    return authed


def test_service_account_file_points_at_the_sandbox_token_endpoint(sheets_server: SheetsSandbox) -> None:
    info = json.loads(Path(sheets_server.info()["service_account_file"]).read_text(encoding="utf-8"))
    assert info["type"] == "service_account"
    assert info["token_uri"] == sheets_server.base_url + "/token"


def test_service_account_credentials_get_a_token_and_gspread_works(sheets_server: SheetsSandbox) -> None:
    credentials = service_account.Credentials.from_service_account_file(
        sheets_server.info()["service_account_file"], scopes=SCOPES
    )
    key = sheets_server.create_spreadsheet("authed", {"S": [["ok"]]})
    gc = gspread.Client(auth=None, session=authorized_session(sheets_server, credentials))
    assert gc.open_by_key(key).worksheet("S").get_all_values() == [["ok"]]
    assert credentials.token is not None and credentials.token.startswith("ya29.")


def test_oauth_user_credentials_refresh_against_the_sandbox(sheets_server: SheetsSandbox) -> None:
    credentials = user_credentials.Credentials.from_authorized_user_file(
        sheets_server.info()["authorized_user_file"], scopes=SCOPES
    )
    credentials.refresh(Request(trusting_session(sheets_server)))
    key = sheets_server.create_spreadsheet("user", {"S": [["mine"]]})
    answer = authorized_session(sheets_server, credentials).get(
        f"https://sheets.googleapis.com/v4/spreadsheets/{key}/values/S"
    )
    assert answer.json()["values"] == [["mine"]]


def test_a_wrong_refresh_token_is_refused(sheets_server: SheetsSandbox) -> None:
    info = json.loads(Path(sheets_server.info()["authorized_user_file"]).read_text(encoding="utf-8"))
    credentials = user_credentials.Credentials.from_authorized_user_info(
        {**info, "refresh_token": "1//stolen"}
    )
    with pytest.raises(RefreshError, match="invalid_grant"):
        credentials.refresh(Request(trusting_session(sheets_server)))


def test_an_assertion_signed_with_another_key_is_refused(sheets_server: SheetsSandbox) -> None:
    stranger = ServiceAccount.generate(email=sheets_server.info()["client_email"])
    info = stranger.info(sheets_server.base_url + "/token")
    credentials = service_account.Credentials.from_service_account_info(info, scopes=SCOPES)
    with pytest.raises(RefreshError, match="invalid_grant"):
        credentials.refresh(Request(trusting_session(sheets_server)))


def test_an_assertion_for_another_audience_is_refused(sheets_server: SheetsSandbox) -> None:
    info = json.loads(Path(sheets_server.info()["service_account_file"]).read_text(encoding="utf-8"))
    signer = crypt.RSASigner.from_service_account_info(info)
    now = int(time.time())
    claims = {
        "iss": info["client_email"],
        "aud": "https://example.com/token",
        "iat": now,
        "exp": now + 60,
    }
    assertion = jwt.encode(signer, claims).decode()
    answer = trusting_session(sheets_server).post(
        sheets_server.base_url + "/token",
        data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion},
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"


def test_the_adapter_only_rewrites_the_prefixes_it_was_given() -> None:
    adapter = EndpointOverrideAdapter({"https://sheets.googleapis.com/": "https://127.0.0.1:9/"})
    assert adapter.rewrite("https://sheets.googleapis.com/v4/spreadsheets/x?a=1") == (
        "https://127.0.0.1:9/v4/spreadsheets/x?a=1"
    )
    assert adapter.rewrite("https://oauth2.googleapis.com/token") == "https://oauth2.googleapis.com/token"
