"""Reaching a Salesforce sandbox with simple-salesforce over HTTPS, as the tests and a user's script would."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce

from syncd.sandbox.salesforce import SalesforceSandbox

API_VERSION = "62.0"


class LoginHostAdapter(HTTPAdapter):
    """Sends simple-salesforce's hard-coded https://login.salesforce.com calls to the sandbox instead."""

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        assert request.url is not None
        request.url = request.url.replace("https://login.salesforce.com", self.target, 1)
        return super().send(request, *args, **kwargs)


def https_session(sandbox: SalesforceSandbox) -> requests.Session:
    """A session that trusts only the sandbox's CA (trust_env off: REQUESTS_CA_BUNDLE would override verify)."""
    session = requests.Session()
    session.trust_env = False
    session.verify = sandbox.info()["ca_file"]
    session.mount("https://login.salesforce.com", LoginHostAdapter(sandbox.base_url))
    return session


def password_flow_token(sandbox: SalesforceSandbox, session: requests.Session) -> str:
    info = sandbox.info()
    answer = session.post(
        f"{info['login_url']}/services/oauth2/token",
        data={
            "grant_type": "password",
            "client_id": info["client_id"],
            "client_secret": info["client_secret"],
            "username": info["username"],
            "password": info["password"] + info["security_token"],
        },
        timeout=10,
    )
    answer.raise_for_status()
    return str(answer.json()["access_token"])


def client(sandbox: SalesforceSandbox) -> Salesforce:
    """simple-salesforce logged in through the SOAP login, as most scripts use it."""
    info = sandbox.info()
    return Salesforce(
        username=info["username"],
        password=info["password"],
        security_token=info["security_token"],
        session=https_session(sandbox),
        version=API_VERSION,
    )


@contextmanager
def running_org(seed: dict[str, Any] | None = None) -> Iterator[tuple[SalesforceSandbox, Salesforce]]:
    """A started org with a seed (custom fields, rules), and a logged-in client."""
    org = SalesforceSandbox(api_version=API_VERSION, seed=seed).start()
    try:
        yield org, client(org)
    finally:
        org.stop()
