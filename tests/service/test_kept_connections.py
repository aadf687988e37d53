"""The daemon keeps a mapping's Salesforce and Sheets connectors open between its passes.

A pass per mail (IDLE) or per minute would otherwise log in to Salesforce every time, against a
limit on logins per user per hour; files and mail connectors are opened per pass as before.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from syncd.metrics import Metrics
from syncd.sandbox.salesforce import SalesforceSandbox
from syncd.service import Daemon
from tests.service.conftest import wait_for

MAPPING = """\
version: 1
name: accounts
source: crm.Account
target: roster.Accounts
match: {source: Id, target: Id}
fields: {Id: Id, Name: Name}
schedule: 1s
"""


@pytest.fixture
def org() -> Iterator[SalesforceSandbox]:
    sandbox = SalesforceSandbox().start()
    yield sandbox
    sandbox.stop()


def daemon_over(tmp_path: Path, org: SalesforceSandbox) -> Daemon:
    info = org.info()
    crm = {k: info[k] for k in ("login_url", "username", "password", "security_token", "ca_file")} | {
        "kind": "salesforce",
        "objects": ["Account"],
    }
    config = {
        "version": 1,
        "journal": "syncd.db",
        "metrics": {"listen": "127.0.0.1:0"},
        "service": {"jitter": 0},
        "mappings": ["mappings/*.yaml"],
        "connections": {
            "crm": crm,
            "roster": {"kind": "files", "path": "roster", "keys": {"Accounts": "Id"}},
        },
    }
    (tmp_path / "mappings").mkdir()
    (tmp_path / "roster").mkdir()
    (tmp_path / "mappings" / "accounts.yaml").write_text(MAPPING)
    with (tmp_path / "syncd.yaml").open("w") as fh:
        YAML().dump(config, fh)
    return Daemon(tmp_path / "syncd.yaml", Metrics(), install_signals=False)


def runs(tmp_path: Path) -> int:
    try:
        with sqlite3.connect(tmp_path / "syncd.db") as db:
            return int(db.execute("SELECT COUNT(*) FROM runs WHERE finished_at IS NOT NULL").fetchone()[0])
    except sqlite3.OperationalError:  # the daemon has not created its journal yet
        return 0


def test_a_mappings_salesforce_session_is_kept_across_its_passes(
    tmp_path: Path, org: SalesforceSandbox
) -> None:
    org.insert("Account", {"Name": "Acme"})
    daemon = daemon_over(tmp_path, org)
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    try:
        wait_for("three passes", lambda: runs(tmp_path) >= 3)
    finally:
        daemon.request_stop()
        thread.join(timeout=60)
    assert org.knobs.calls["login"] == 1
    assert org.knobs.calls["describe"] == 1
    assert (tmp_path / "roster" / "Accounts.csv").read_text().count("Acme") == 1
