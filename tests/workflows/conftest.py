"""The shipped mappings against the sandboxes: a project written exactly as `syncd demo` writes it.

Each test gets its own stand-ins (Salesforce with the workflows' fields, Sheets, IMAP/SMTP), seeds
only what its story needs through their back doors, and runs the shipped mapping files unchanged.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from syncd.demo_company import HEADERS, SHIPPED_MAPPINGS, new_spreadsheets, start_sandboxes, write_project
from syncd.engine import Connections, PassResult, SyncPass
from syncd.journal import Journal
from syncd.project import Project, load_project
from syncd.sandbox.mail import MailSandbox
from syncd.sandbox.salesforce import SalesforceSandbox
from syncd.sandbox.serve import Sandboxes
from syncd.sandbox.sheets import SheetsSandbox


@dataclass
class Stack:
    """Running stand-ins plus a project directory; `write()` points the shipped mappings at them."""

    root: Path
    sandboxes: Sandboxes
    books: dict[str, str] = field(default_factory=dict)
    config: Path | None = None

    @property
    def org(self) -> SalesforceSandbox:
        assert self.sandboxes.salesforce is not None
        return self.sandboxes.salesforce

    @property
    def sheets(self) -> SheetsSandbox:
        assert self.sandboxes.sheets is not None
        return self.sandboxes.sheets

    @property
    def mail(self) -> MailSandbox:
        assert self.sandboxes.mail is not None
        return self.sandboxes.mail

    def write(self, *mappings: str, rows: dict[str, list[list[Any]]] | None = None) -> None:
        """The spreadsheets (each worksheet's header plus `rows`) and the project running `mappings`."""
        self.books = new_spreadsheets(self.sheets, rows or {})
        self.config = write_project(
            self.root, self.sandboxes.info(), self.books, mappings or SHIPPED_MAPPINGS
        )

    def project(self) -> Project:
        assert self.config is not None, "call write() first"
        return load_project(self.config)

    def run(self, *names: str, now: datetime | None = None) -> dict[str, PassResult]:
        """One pass of each named mapping (all when none is named), in the demo's data-flow order."""
        project = self.project()
        order = [n for n in SHIPPED_MAPPINGS if n in project.mappings and (not names or n in names)]
        conns = Connections(project)
        journal = Journal(project.journal_path)
        try:
            return {n: SyncPass(project, journal, project.mapping(n), conns, now=now).run() for n in order}
        finally:
            conns.close()
            journal.close()

    def journal(self) -> Journal:
        return Journal(self.project().journal_path)

    def book(self, connection: str, worksheet: str) -> list[dict[str, str]]:
        """A worksheet's rows as header -> cell text, the way a person reads the sheet."""
        values = self.sheets.values(self.books[connection], worksheet)
        header = values[0]
        return [dict(zip(header, row + [""] * (len(header) - len(row)), strict=True)) for row in values[1:]]

    def edit(self, connection: str, worksheet: str, key: str, column: str, value: Any) -> None:
        """A person typing into one cell of the row whose first column holds `key`."""
        values = self.sheets.values(self.books[connection], worksheet)
        row = next(i for i, r in enumerate(values) if r and r[0] == key)
        self.sheets.set_values(
            self.books[connection], worksheet, (row, HEADERS[worksheet].index(column)), [[value]]
        )

    def sent(self) -> list[EmailMessage]:
        """Every message the SMTP stand-in accepted, parsed."""
        return [
            email.message_from_bytes(raw, _class=EmailMessage, policy=email.policy.default)
            for raw in self.mail.sent()
        ]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    sandboxes = start_sandboxes(tmp_path / "sandbox")
    assert sandboxes.sheets is not None
    sandboxes.sheets.quotas.read_per_minute = sandboxes.sheets.quotas.write_per_minute = None
    try:
        yield Stack(tmp_path, sandboxes)
    finally:
        sandboxes.stop()


def account(stack: Stack, number: str, name: str, **fields: Any) -> str:
    """An Account with a primary Contact, as the demo seeds them; the Account's id."""
    domain = name.lower().replace(" ", "") + ".example"
    values = {"Name": name, "AccountNumber": number, "Type": "Customer", "Email__c": f"orders@{domain}",
              "Tier__c": "Gold", "Account_Status__c": "Active", **fields}  # fmt: skip
    account_id = stack.org.insert("Account", values)
    contact = stack.org.insert(
        "Contact", {"FirstName": "Ann", "LastName": name, "Email": f"ann@{domain}", "AccountId": account_id}
    )
    stack.org.update("Account", account_id, {"Primary_Contact__c": contact})
    return account_id


def product(stack: Stack, code: str, name: str, on_hand: int = 100, level: int = 10, **fields: Any) -> str:
    """A Product2 with a Wholesale price book entry; the product's id."""
    books = [b["Id"] for b in stack.org.records("Pricebook2") if b["Name"] == "Wholesale"]
    book = books[0] if books else stack.org.insert("Pricebook2", {"Name": "Wholesale", "IsActive": True})
    product_id = stack.org.insert(
        "Product2",
        {"Name": name, "ProductCode": code, "IsActive": True, "QuantityOnHand__c": on_hand,
         "Reorder_Level__c": level, **fields},
    )  # fmt: skip
    stack.org.insert(
        "PricebookEntry", {"Pricebook2Id": book, "Product2Id": product_id, "UnitPrice": 5, "IsActive": True}
    )
    return product_id


NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
