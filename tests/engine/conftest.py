"""A small company on disk for engine tests: CSV files as the systems, real journal, real config files."""

from __future__ import annotations

import csv
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from syncd.engine import PassResult, run_pass
from syncd.journal import Journal
from syncd.project import Project, load_project

CONFIG = """\
version: 1
journal: syncd.db
mappings: ["mappings/*.yaml"]
connections:
  crm:
    kind: files
    path: crm
    keys: {Account: AccountNumber, Order: PO_Number__c, Pricebook2: Id}
    modified: {Account: LastModifiedDate}
  roster:
    kind: files
    path: roster
    modified: {Clients: Updated}
  orders_sheet:
    kind: files
    path: orders
"""

CLIENTS = """\
version: 1
name: clients
source: crm.Account
target: roster.Clients
direction: two-way
match: {source: AccountNumber, target: "Account No"}
fields:
  "Account No": AccountNumber
  "Client": Name
  "Email": {from: Email__c, transform: [strip, lower]}
  "Tier": {from: Tier__c, map: {Gold: A, Silver: B, Bronze: C}}
  "Owner": {template: "{{ Owner.Name }} <{{ Owner.Email }}>", readonly: true}
  "Region": {value: EMEA}
filter: "Type == 'Customer'"
conflict: %(conflict)s
deletes: %(deletes)s
flag_field: "Status"
schedule: 5m
"""

ORDERS = """\
version: 1
name: orders
source: orders_sheet.Orders
target: crm.Order
direction: one-way
match: {source: "PO Number", target: PO_Number__c}
fields:
  PO_Number__c: "PO Number"
  AccountId: {lookup: {mapping: clients, from: "Account No"}}
  Pricebook2Id: {lookup: {stream: crm.Pricebook2, by: Name, from: "Price Book"}}
  EffectiveDate: {from: "Order Date", transform: [{date: {format: "%d/%m/%Y"}}]}
  Status: {value: Draft}
  Description: {template: "{{ Notes | default('') }}"}
schedule: 1m
"""

ACCOUNT_HEADER = [
    "AccountNumber",
    "Name",
    "Email__c",
    "Tier__c",
    "Type",
    "Owner.Name",
    "Owner.Email",
    "LastModifiedDate",
]


def account(number: str, name: str, **extra: str) -> dict[str, str]:
    row = {
        "AccountNumber": number,
        "Name": name,
        "Email__c": f"info@{name.split()[0].lower()}.example",
        "Tier__c": "Gold",
        "Type": "Customer",
        "Owner.Name": "Dana Reyes",
        "Owner.Email": "dana@ourco.example",
        "LastModifiedDate": "2026-11-01T09:00:00+00:00",
    }
    row.update(extra)
    return row


class Company:
    """The files and config of one test company, with helpers that read like a person's actions."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.conflict = "source-wins"
        self.deletes = "ignore"

    # -- setting up -------------------------------------------------------------------------

    def write_mappings(self, clients: str | None = None, orders: str | None = None) -> None:
        (self.root / "mappings").mkdir(exist_ok=True)
        text = (
            clients if clients is not None else CLIENTS % {"conflict": self.conflict, "deletes": self.deletes}
        )
        (self.root / "mappings" / "clients.yaml").write_text(text)
        (self.root / "mappings" / "orders.yaml").write_text(orders if orders is not None else ORDERS)

    def setup(self, accounts: list[dict[str, str]], clients_rows: list[dict[str, str]] | None = None) -> None:
        (self.root / "syncd.yaml").write_text(CONFIG)
        self.write_mappings()
        self.write_csv("crm/Account.csv", ACCOUNT_HEADER, accounts)
        self.write_csv(
            "crm/Pricebook2.csv", ["Id", "Name"], [{"Id": "01sSTD", "Name": "Standard Price Book"}]
        )
        self.write_csv(
            "crm/Order.csv",
            ["PO_Number__c", "AccountId", "Pricebook2Id", "EffectiveDate", "Status", "Description"],
            [],
        )
        self.write_csv(
            "roster/Clients.csv",
            ["Account No", "Client", "Email", "Tier", "Owner", "Region", "Status", "Updated"],
            clients_rows or [],
        )
        self.write_csv(
            "orders/Orders.csv", ["PO Number", "Account No", "Price Book", "Order Date", "Notes"], []
        )

    def write_csv(self, rel: str, header: list[str], rows: list[dict[str, str]]) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=header)
            writer.writeheader()
            writer.writerows(rows)

    # -- acting -----------------------------------------------------------------------------

    def rows(self, rel: str) -> list[dict[str, str]]:
        with (self.root / rel).open(newline="", encoding="utf-8-sig") as fh:
            return list(csv.DictReader(fh))

    def row(self, rel: str, key_column: str, key: str) -> dict[str, str]:
        found = [r for r in self.rows(rel) if r[key_column] == key]
        assert len(found) == 1, f"{rel}: {len(found)} rows with {key_column}={key}"
        return found[0]

    def edit(self, rel: str, key_column: str, key: str, **changes: str) -> None:
        """Change some cells of one row, keeping every other cell as it is."""
        path = self.root / rel
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = list(reader.fieldnames or [])
            rows = list(reader)
        for r in rows:
            if r[key_column] == key:
                r.update({k.replace("_", " ") if k not in header else k: v for k, v in changes.items()})
        self.write_csv(rel, header, rows)

    def append(self, rel: str, row: dict[str, str]) -> None:
        path = self.root / rel
        with path.open(newline="", encoding="utf-8-sig") as fh:
            header = next(csv.reader(fh))
        with path.open("a", newline="", encoding="utf-8") as fh:
            csv.DictWriter(fh, fieldnames=header).writerow(row)

    def delete_row(self, rel: str, key_column: str, key: str) -> None:
        path = self.root / rel
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = list(reader.fieldnames or [])
            rows = [r for r in reader if r[key_column] != key]
        self.write_csv(rel, header, rows)

    def project(self) -> Project:
        return load_project(self.root / "syncd.yaml")

    def sync(self, name: str, **kwargs: Any) -> PassResult:
        project = self.project()
        with self.journal() as journal:
            return run_pass(project, journal, name, **kwargs)

    def journal(self) -> _JournalCtx:
        return _JournalCtx(self.root / "syncd.db")


class _JournalCtx:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.j: Journal | None = None

    def __enter__(self) -> Journal:
        self.j = Journal(self.path)
        return self.j

    def __exit__(self, *exc: object) -> None:
        assert self.j is not None
        self.j.close()


@pytest.fixture
def company(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Company]:
    monkeypatch.chdir(tmp_path)
    yield Company(tmp_path)


def dedent(text: str) -> str:
    return textwrap.dedent(text)
