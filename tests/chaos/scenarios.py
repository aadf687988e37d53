"""A sequence-numbered source in each system, synced into a target whose contents the tests can count.

Every record is `SEQ-nnnnn` with a value `v<round>` that later rounds may change, so the end state is
known exactly: each key once, carrying the value of the last round that touched it. The systems are
the real stand-ins (Salesforce and Sheets sandboxes over HTTPS, Dovecot over IMAP) and real files; a
test seeds and inspects them through their back doors, never through the connector under test.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from imapclient import IMAPClient  # type: ignore[import-untyped]

from syncd.sandbox.salesforce import SalesforceSandbox
from syncd.sandbox.sheets import SheetsSandbox
from tests.mail.dovecot import Account

SF_SEED = {
    "objects": {
        "Account": {
            "fields": {"Ext__c": {"type": "string", "length": 40, "externalId": True, "unique": True}}
        }
    }
}

HEADER = """\
version: 1
journal: syncd.db
metrics: {listen: "127.0.0.1:0"}
service: {jitter: 0, backoff_initial_seconds: 0.2, backoff_max_seconds: 1, grace_seconds: 1}
connections:
"""


def key(seq: int) -> str:
    return f"SEQ-{seq:05}"


def read_csv(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def write_csv(path: Path, header: list[str], rows: list[dict[str, str]]) -> None:
    """Rewrite the whole file through a temporary one, as a spreadsheet program saves."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, header)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


class Scenario(Protocol):
    """One source system feeding one target; `root` is the project folder syncd runs in."""

    name: str
    mutable: bool  # can a record's value change after it is created (mail cannot)

    def connections(self) -> dict[str, dict[str, object]]: ...
    def mapping(self) -> str: ...
    def env(self) -> dict[str, str]: ...
    def add(self, seqs: range, value: str) -> None: ...
    def change(self, seqs: list[int], value: str) -> None: ...
    def target(self) -> list[tuple[str, str]]: ...


def write_project(root: Path, scenario: Scenario) -> None:
    """syncd.yaml and mappings/seq.yaml for one scenario (secrets come from the environment)."""
    lines = [f"  {name}: {json.dumps(conn)}" for name, conn in scenario.connections().items()]
    (root / "syncd.yaml").write_text(HEADER + "\n".join(lines) + "\n", encoding="utf-8")
    (root / "mappings").mkdir(exist_ok=True)
    (root / "mappings" / "seq.yaml").write_text(scenario.mapping(), encoding="utf-8")


@dataclass
class Expected:
    """What the target must hold at the end: each key once, with the last value it was given."""

    values: dict[str, str] = field(default_factory=dict)

    def check(self, found: list[tuple[str, str]]) -> tuple[int, list[str]]:
        """(duplicates ever created, problems): a wrong, missing or unexpected key is a problem."""
        counts = Counter(k for k, _ in found)
        duplicates = sum(n - 1 for n in counts.values() if n > 1)
        problems = [f"missing {k}" for k in self.values if k not in counts]
        problems += [f"unexpected {k}" for k in counts if k not in self.values]
        last = dict(found)
        problems += [
            f"{k}: {last[k]!r} != {v!r}" for k, v in self.values.items() if k in last and last[k] != v
        ]
        return duplicates, problems


def mapping(source: str, target: str, source_key: str, target_key: str, fields: Mapping[str, object]) -> str:
    """A one-way mapping run every second in batches of 7, so a kill often lands mid-pass."""
    return (
        "version: 1\nname: seq\n"
        f"source: {source}\ntarget: {target}\n"
        f"match: {json.dumps({'source': source_key, 'target': target_key})}\n"
        f"fields: {json.dumps(fields)}\n"
        "schedule: 1s\nbatch_size: 7\n"
    )


FILES_TARGET: dict[str, object] = {"kind": "files", "path": "dst", "keys": {"Seq": "Seq"}}


def files_target_rows(root: Path) -> list[tuple[str, str]]:
    return [(r["Seq"], r["Value"]) for r in read_csv(root / "dst" / "Seq.csv")]


def salesforce_connection(org: SalesforceSandbox) -> dict[str, object]:
    info = org.info()
    return {
        "kind": "salesforce",
        "login_url": info["login_url"],
        "username": info["username"],
        "password": "${SF_PASSWORD}",
        "security_token": "${SF_TOKEN}",
        "ca_file": info["ca_file"],
        "objects": ["Account"],
        "backoff_seconds": 0.05,
        "backoff_max_seconds": 0.5,
    }


def salesforce_env(org: SalesforceSandbox) -> dict[str, str]:
    info = org.info()
    return {"SF_PASSWORD": info["password"], "SF_TOKEN": info["security_token"]}


@dataclass
class FilesToSalesforce:
    """CSV rows upserted into Salesforce Accounts on an external id: creates are idempotent by key."""

    root: Path
    org: SalesforceSandbox
    name: str = "files"
    mutable: bool = True
    settings: dict[str, object] = field(default_factory=dict)  # more settings of the crm connection

    def connections(self) -> dict[str, dict[str, object]]:
        return {
            "src": {"kind": "files", "path": "src", "keys": {"Seq": "Seq"}},
            "crm": {**salesforce_connection(self.org), **self.settings},
        }

    def mapping(self) -> str:
        fields = {"Ext__c": "Seq", "Name": "Seq", "BillingCity": "Value"}
        return mapping("src.Seq", "crm.Account", "Seq", "Ext__c", fields)

    def env(self) -> dict[str, str]:
        return salesforce_env(self.org)

    def _rows(self) -> list[dict[str, str]]:
        return read_csv(self.root / "src" / "Seq.csv")

    def add(self, seqs: range, value: str) -> None:
        rows = self._rows() + [{"Seq": key(n), "Value": value} for n in seqs]
        write_csv(self.root / "src" / "Seq.csv", ["Seq", "Value"], rows)

    def change(self, seqs: list[int], value: str) -> None:
        wanted = {key(n) for n in seqs}
        rows = [{**r, "Value": value} if r["Seq"] in wanted else r for r in self._rows()]
        write_csv(self.root / "src" / "Seq.csv", ["Seq", "Value"], rows)

    def target(self) -> list[tuple[str, str]]:
        return [(r["Ext__c"], r["BillingCity"]) for r in self.org.records("Account", include_deleted=True)]


@dataclass
class SalesforceToFiles:
    """Salesforce Accounts (read by SystemModstamp cursor) into a CSV keyed by the external id."""

    root: Path
    org: SalesforceSandbox
    name: str = "salesforce"
    mutable: bool = True
    ids: dict[str, str] = field(default_factory=dict)
    settings: dict[str, object] = field(default_factory=dict)  # more settings of the crm connection

    def connections(self) -> dict[str, dict[str, object]]:
        return {"crm": {**salesforce_connection(self.org), **self.settings}, "dst": FILES_TARGET}

    def mapping(self) -> str:
        return mapping("crm.Account", "dst.Seq", "Ext__c", "Seq", {"Seq": "Ext__c", "Value": "BillingCity"})

    def env(self) -> dict[str, str]:
        return salesforce_env(self.org)

    def add(self, seqs: range, value: str) -> None:
        for n in seqs:
            self.ids[key(n)] = self.org.insert(
                "Account", {"Ext__c": key(n), "Name": key(n), "BillingCity": value}
            )

    def change(self, seqs: list[int], value: str) -> None:
        for n in seqs:
            self.org.update("Account", self.ids[key(n)], {"BillingCity": value})

    def target(self) -> list[tuple[str, str]]:
        return files_target_rows(self.root)


@dataclass
class SheetsToFiles:
    """Rows of a Google Sheets worksheet (one read per pass) into a CSV keyed by the Seq column."""

    root: Path
    server: SheetsSandbox
    name: str = "sheets"
    mutable: bool = True
    spreadsheet: str = ""
    settings: dict[str, object] = field(default_factory=dict)  # more settings of the sheet connection

    def __post_init__(self) -> None:
        self.spreadsheet = self.server.create_spreadsheet("chaos", {"Seq": [["Seq", "Value"]]})

    def connections(self) -> dict[str, dict[str, object]]:
        info = self.server.info()
        sheet = {
            "kind": "sheets",
            "spreadsheet": self.spreadsheet,
            "endpoint": info["base_url"],
            "ca_file": info["ca_file"],
            "service_account_file": info["service_account_file"],
            "keys": {"Seq": "Seq"},
            "backoff_seconds": 0.05,
            "backoff_max_seconds": 0.5,
            **self.settings,
        }
        return {"sheet": sheet, "dst": FILES_TARGET}

    def mapping(self) -> str:
        return mapping("sheet.Seq", "dst.Seq", "Seq", "Seq", {"Seq": "Seq", "Value": "Value"})

    def env(self) -> dict[str, str]:
        return {}

    def add(self, seqs: range, value: str) -> None:
        top = len(self.server.values(self.spreadsheet, "Seq"))
        rows = [[key(n), value] for n in seqs]
        self.server.set_values(self.spreadsheet, "Seq", (top, 0), rows, raw=True)

    def change(self, seqs: list[int], value: str) -> None:
        wanted = {key(n) for n in seqs}
        for number, row in enumerate(self.server.values(self.spreadsheet, "Seq")):
            if row and row[0] in wanted:
                self.server.set_values(self.spreadsheet, "Seq", (number, 1), [[value]], raw=True)

    def target(self) -> list[tuple[str, str]]:
        return files_target_rows(self.root)


@dataclass
class ImapToFiles:
    """Mail in a Dovecot folder (cursor: UIDVALIDITY and last UID) into a CSV keyed by Message-ID."""

    root: Path
    account: Account
    name: str = "imap"
    mutable: bool = False

    def connections(self) -> dict[str, dict[str, object]]:
        mail = {
            "kind": "imap",
            "host": self.account.host,
            "port": self.account.port,
            "security": "none",
            "allow_plaintext": True,
            "username": self.account.username,
            "password": "${MAIL_PASSWORD}",
            "folders": ["INBOX"],
        }
        return {"mail": mail, "dst": {"kind": "files", "path": "dst", "keys": {"Seq": "MessageId"}}}

    def mapping(self) -> str:
        fields = {
            "MessageId": "message_id",
            "Seq": "subject",
            "Value": {"from": "text", "transform": ["strip"]},
        }
        return mapping("mail.INBOX", "dst.Seq", "message_id", "MessageId", fields)

    def env(self) -> dict[str, str]:
        return {"MAIL_PASSWORD": self.account.password}

    def add(self, seqs: range, value: str) -> None:
        client = IMAPClient(self.account.host, self.account.port, ssl=False, timeout=10)
        client.login(self.account.username, self.account.password)
        try:
            for n in seqs:
                raw = (
                    f"From: Seq <seq@source.example>\r\nTo: log@ourco.example\r\nSubject: {key(n)}\r\n"
                    f"Message-ID: <{key(n).lower()}@source.example>\r\n"
                    f"Date: Mon, 23 Nov 2026 09:00:00 +0000\r\n\r\n{value}\r\n"
                )
                client.append("INBOX", raw.encode())
        finally:
            client.logout()

    def change(self, seqs: list[int], value: str) -> None:
        raise NotImplementedError("a delivered message never changes")

    def target(self) -> list[tuple[str, str]]:
        return files_target_rows(self.root)


@dataclass
class FilesToFiles:
    """CSV into CSV: no network, so a pass is quick and the journal is what is under test."""

    root: Path
    name: str = "files->files"
    mutable: bool = True

    def connections(self) -> dict[str, dict[str, object]]:
        return {"src": {"kind": "files", "path": "src", "keys": {"Seq": "Seq"}}, "dst": FILES_TARGET}

    def mapping(self) -> str:
        return mapping("src.Seq", "dst.Seq", "Seq", "Seq", {"Seq": "Seq", "Value": "Value"})

    def env(self) -> dict[str, str]:
        return {}

    def add(self, seqs: range, value: str) -> None:
        rows = read_csv(self.root / "src" / "Seq.csv") + [{"Seq": key(n), "Value": value} for n in seqs]
        write_csv(self.root / "src" / "Seq.csv", ["Seq", "Value"], rows)

    def change(self, seqs: list[int], value: str) -> None:
        wanted = {key(n) for n in seqs}
        rows = [
            {**r, "Value": value} if r["Seq"] in wanted else r
            for r in read_csv(self.root / "src" / "Seq.csv")
        ]
        write_csv(self.root / "src" / "Seq.csv", ["Seq", "Value"], rows)

    def target(self) -> list[tuple[str, str]]:
        return files_target_rows(self.root)


@dataclass
class FilesToSheets:
    """CSV rows into a Google Sheets worksheet keyed by its Seq column (new rows appended in one call)."""

    root: Path
    server: SheetsSandbox
    name: str = "files->sheets"
    mutable: bool = True
    spreadsheet: str = ""

    def __post_init__(self) -> None:
        self.spreadsheet = self.server.create_spreadsheet("chaos-target", {"Seq": [["Seq", "Value"]]})

    def connections(self) -> dict[str, dict[str, object]]:
        info = self.server.info()
        sheet: dict[str, object] = {
            "kind": "sheets",
            "spreadsheet": self.spreadsheet,
            "endpoint": info["base_url"],
            "ca_file": info["ca_file"],
            "service_account_file": info["service_account_file"],
            "keys": {"Seq": "Seq"},
            "backoff_seconds": 0.05,
            "backoff_max_seconds": 0.5,
        }
        return {"src": {"kind": "files", "path": "src", "keys": {"Seq": "Seq"}}, "sheet": sheet}

    def mapping(self) -> str:
        return mapping("src.Seq", "sheet.Seq", "Seq", "Seq", {"Seq": "Seq", "Value": "Value"})

    def env(self) -> dict[str, str]:
        return {}

    def add(self, seqs: range, value: str) -> None:
        rows = read_csv(self.root / "src" / "Seq.csv") + [{"Seq": key(n), "Value": value} for n in seqs]
        write_csv(self.root / "src" / "Seq.csv", ["Seq", "Value"], rows)

    def change(self, seqs: list[int], value: str) -> None:
        wanted = {key(n) for n in seqs}
        rows = [
            {**r, "Value": value} if r["Seq"] in wanted else r
            for r in read_csv(self.root / "src" / "Seq.csv")
        ]
        write_csv(self.root / "src" / "Seq.csv", ["Seq", "Value"], rows)

    def target(self) -> list[tuple[str, str]]:
        rows = self.server.values(self.spreadsheet, "Seq")[1:]
        return [(str(r[0]), str(r[1]) if len(r) > 1 else "") for r in rows if r]
