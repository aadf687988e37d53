"""`syncd sandbox` as a script meets it: a real subprocess, its JSON line, real clients on each port, SIGTERM."""

from __future__ import annotations

import json
import selectors
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import gspread
import pytest
import requests
from google.auth.transport.requests import AuthorizedSession, Request
from google.oauth2 import service_account
from imapclient import IMAPClient  # type: ignore[import-untyped]
from simple_salesforce import Salesforce

from connectors.sheets.transport import mount_endpoint_override
from syncd.demo_company import free_port_block
from tests.sandbox.salesforce_clients import LoginHostAdapter

SCOPES = ["https://www.googleapis.com/auth/spreadsheets", "https://www.googleapis.com/auth/drive"]
SERVICES = {"salesforce", "sheets", "imap", "smtp"}


class Served:
    """`syncd sandbox --json` running as a subprocess; `info` is its first line of output."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "syncd", "sandbox", "--json", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.first_line = self._first_line()
        self.info: dict[str, Any] = json.loads(self.first_line) if self.first_line else {}

    def _first_line(self) -> str:
        assert self.process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            if not selector.select(timeout=60):
                self.process.kill()
                raise AssertionError("syncd sandbox printed nothing")
        return self.process.stdout.readline()

    def stop(self) -> int:
        """SIGTERM, then the exit code (a process still running after 15 s fails the test)."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError("syncd sandbox ignored SIGTERM") from None
        finally:
            self._close_pipes()

    def _close_pipes(self) -> None:
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()

    def failed(self) -> tuple[int, str]:
        """For a run expected to end by itself: its exit code and what it said on stderr."""
        code = self.process.wait(timeout=30)
        assert self.process.stderr is not None
        message = self.process.stderr.read()
        self._close_pipes()
        return code, message


def _welcome() -> bytes:
    msg = EmailMessage()
    msg["From"] = "Client <client@example.com>"
    msg["To"] = "coordinator@sandbox.example"
    msg["Subject"] = "Welcome aboard"
    msg["Message-ID"] = "<welcome@example.com>"
    msg.set_content("Hello.\n")
    return msg.as_bytes()


def _seed(directory: Path) -> Path:
    (directory / "welcome.eml").write_bytes(_welcome())
    seed = directory / "seed.yaml"
    seed.write_text(
        "salesforce:\n"
        "  objects:\n"
        "    Account:\n"
        "      records: [{Name: Seeded Co}]\n"
        "sheets:\n"
        "  Client roster:\n"
        "    Clients: [[Name, Email], [Acme, ops@acme.example]]\n"
        "mail:\n"
        "  INBOX: [welcome.eml]\n",
        encoding="utf-8",
    )
    return seed


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, int]]:
    base = free_port_block()
    seed = _seed(tmp_path_factory.mktemp("seed"))
    running = Served("--port-base", str(base), "--seed", str(seed))
    yield running, base
    running.stop()


def _salesforce(info: dict[str, Any]) -> Salesforce:
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify
    session.verify = info["ca_file"]
    session.mount("https://login.salesforce.com", LoginHostAdapter(info["login_url"]))
    return Salesforce(
        username=info["username"],
        password=info["password"],
        security_token=info["security_token"],
        session=session,
        version=info["api_version"],
    )


def _gspread(info: dict[str, Any]) -> gspread.Client:
    credentials = service_account.Credentials.from_service_account_file(
        info["service_account_file"], scopes=SCOPES
    )
    token_session = requests.Session()
    token_session.trust_env = False
    token_session.verify = info["ca_file"]
    authed = AuthorizedSession(credentials, auth_request=Request(token_session))
    authed.trust_env = False
    authed.verify = info["ca_file"]
    mount_endpoint_override(authed, info["base_url"])
    return gspread.Client(auth=None, session=authed)


def test_first_line_is_one_json_object_describing_every_service(served: tuple[Served, int]) -> None:
    info = served[0].info
    assert set(info) == SERVICES
    for key in ("instance_url", "login_url", "username", "password", "security_token", "client_id",
                "client_secret", "ca_file"):  # fmt: skip
        assert info["salesforce"][key], key
    for key in ("base_url", "ca_file", "service_account_file"):
        assert info["sheets"][key], key
    for service in ("imap", "smtp"):
        assert {"host", "port", "tls", "user", "password"} <= set(info[service])


def test_port_base_fixes_each_services_port(served: tuple[Served, int]) -> None:
    info, base = served[0].info, served[1]
    assert info["salesforce"]["instance_url"] == f"https://127.0.0.1:{base}"
    assert info["sheets"]["base_url"] == f"https://127.0.0.1:{base + 1}"
    assert (info["imap"]["port"], info["smtp"]["port"]) == (base + 2, base + 3)


def test_salesforce_login_with_the_printed_credentials_sees_the_seed(served: tuple[Served, int]) -> None:
    sf = _salesforce(served[0].info["salesforce"])
    names = [r["Name"] for r in sf.query("SELECT Name FROM Account")["records"]]
    assert names == ["Seeded Co"]


def test_gspread_opens_the_seeded_sheet_with_the_service_account_file(served: tuple[Served, int]) -> None:
    gc = _gspread(served[0].info["sheets"])
    key = served[0].info["sheets"]["spreadsheets"]["Client roster"]
    assert gc.open("Client roster").id == key
    rows = gc.open_by_key(key).worksheet("Clients").get_all_values()
    assert rows == [["Name", "Email"], ["Acme", "ops@acme.example"]]


def test_imapclient_logs_in_and_finds_the_seeded_mail(served: tuple[Served, int]) -> None:
    info = served[0].info["imap"]
    with IMAPClient(info["host"], port=info["port"], ssl=info["tls"], timeout=10) as client:
        client.login(info["user"], info["password"])
        client.select_folder("INBOX", readonly=True)
        assert client.search(["HEADER", "Message-ID", "<welcome@example.com>"])


def test_smtp_answers_noop_and_accepts_the_printed_login(served: tuple[Served, int]) -> None:
    info = served[0].info["smtp"]
    with smtplib.SMTP(info["host"], info["port"], timeout=10) as client:
        assert client.noop()[0] == 250
        assert client.login(info["user"], info["password"])[0] == 235


def test_mail_tls_serves_imaps_and_smtps_trusting_the_printed_ca_file() -> None:
    running = Served("--mail-tls")
    try:
        imap, smtp = running.info["imap"], running.info["smtp"]
        assert imap["tls"] and smtp["tls"]
        context = ssl.create_default_context(cafile=imap["ca_file"])
        with IMAPClient(imap["host"], port=imap["port"], ssl=True, ssl_context=context, timeout=10) as client:
            client.login(imap["user"], imap["password"])
        with smtplib.SMTP_SSL(smtp["host"], smtp["port"], context=context, timeout=10) as client:
            assert client.login(smtp["user"], smtp["password"])[0] == 235
    finally:
        assert running.stop() == 0


def test_sigterm_stops_it_with_exit_code_0() -> None:
    running = Served()
    assert set(running.info) == SERVICES
    assert running.stop() == 0


def test_data_keeps_a_salesforce_record_and_the_credentials_across_a_restart(tmp_path: Path) -> None:
    first = Served("--data", str(tmp_path))
    created = _salesforce(first.info["salesforce"]).Account.create({"Name": "Kept Ltd"})
    assert first.stop() == 0
    second = Served("--data", str(tmp_path))
    try:
        found = _salesforce(second.info["salesforce"]).Account.get(created["id"])
        assert found["Name"] == "Kept Ltd"
        assert second.info["imap"]["password"] == first.info["imap"]["password"]
        assert second.info["salesforce"]["ca_file"] == first.info["salesforce"]["ca_file"]
    finally:
        assert second.stop() == 0


def test_a_taken_port_is_a_clear_error_with_exit_code_2() -> None:
    base = free_port_block()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", base + 2))
        taken.listen()
        running = Served("--port-base", str(base))
        code, message = running.failed()
    assert code == 2
    assert "cannot serve the sandboxes" in message
    assert running.first_line == ""


def test_a_seed_naming_a_missing_message_file_is_a_clear_error_with_exit_code_2(tmp_path: Path) -> None:
    seed = tmp_path / "seed.yaml"
    seed.write_text("mail:\n  INBOX: [missing.eml]\n", encoding="utf-8")
    code, message = Served("--seed", str(seed)).failed()
    assert code == 2
    assert "missing.eml" in message
