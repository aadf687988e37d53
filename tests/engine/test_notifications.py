"""Notification mappings: emails sent once, again after a threshold is crossed anew, once per period,
and reports that fold many records into one message with a CSV attachment (a real SMTP server)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from syncd.engine import Connections, SyncPass
from syncd.journal import Journal
from syncd.mapping import get_path
from syncd.project import load_project
from tests.engine.conftest import Company
from tests.mail.smtp_server import Inbox, start_smtp

CONFIG = """\
version: 1
journal: syncd.db
mappings: ["mappings/*.yaml"]
connections:
  crm: {kind: files, path: crm, keys: {Product2: ProductCode}}
  mailer: {kind: smtp, host: 127.0.0.1, port: %d, security: none, from_address: ops@ourco.example}
"""

LOW_STOCK = """\
version: 1
name: low_stock
source: crm.Product2
target: mailer.outbox
match: {source: ProductCode, target: subject}
fields:
  to: {value: warehouse@ourco.example}
  subject: {template: "Low stock: {{ Name }} ({{ ProductCode }})"}
  text: {template: "{{ Qty }} left, reorder level {{ Reorder }}."}
filter: "Qty | int < Reorder | int"
updates: false
on_filter_exit: unlink
"""

MONTHLY = """\
version: 1
name: monthly_stock
source: crm.Product2
target: mailer.outbox
group_by: Client
match: {source: Client, target: subject}
fields:
  to: ClientEmail
  subject: {template: "Your stock report ({{ count }} products)"}
  text: {template: "{% for p in items %}{{ p.Name }}: {{ p.Qty }}\\n{% endfor %}"}
  "attachment:stock.csv": {from: items, transform: [{csv: [ProductCode, Name, Qty]}]}
updates: false
once_per: "{{ now.strftime('%Y-%m') }}"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp(company: Company) -> Iterator[Inbox]:
    port = free_port()
    controller, inbox = start_smtp(port)
    (company.root / "syncd.yaml").write_text(CONFIG % port)
    (company.root / "mappings").mkdir()
    yield inbox
    controller.stop()


def products(company: Company, *rows: tuple[str, str, int, int, str]) -> None:
    company.write_csv(
        "crm/Product2.csv",
        ["ProductCode", "Name", "Qty", "Reorder", "Client", "ClientEmail"],
        [
            {
                "ProductCode": c,
                "Name": n,
                "Qty": str(q),
                "Reorder": str(r),
                "Client": cl,
                "ClientEmail": f"buyer@{cl.lower()}.example",
            }
            for c, n, q, r, cl in rows
        ],
    )


def run(company: Company, name: str, now: datetime | None = None) -> None:
    project = load_project(company.root / "syncd.yaml")
    journal = Journal(company.root / "syncd.db")
    conns = Connections(project)
    try:
        SyncPass(project, journal, project.mapping(name), conns, now=now).run()
    finally:
        conns.close()
        journal.close()


def subjects(inbox: Inbox) -> list[str]:
    return [str(r.message["Subject"]) for r in inbox.received]


def test_one_email_per_crossing_of_the_threshold_not_one_per_pass(company: Company, smtp: Inbox) -> None:
    (company.root / "mappings" / "low_stock.yaml").write_text(LOW_STOCK)
    products(company, ("P-1", "Bolt", 3, 10, "Acme"), ("P-2", "Nut", 50, 10, "Acme"))
    run(company, "low_stock")
    assert subjects(smtp) == ["Low stock: Bolt (P-1)"]
    products(company, ("P-1", "Bolt", 2, 10, "Acme"), ("P-2", "Nut", 50, 10, "Acme"))
    run(company, "low_stock")  # still low: no second email
    products(company, ("P-1", "Bolt", 40, 10, "Acme"), ("P-2", "Nut", 50, 10, "Acme"))
    run(company, "low_stock")  # restocked
    products(company, ("P-1", "Bolt", 4, 10, "Acme"), ("P-2", "Nut", 50, 10, "Acme"))
    run(company, "low_stock")  # crosses again
    assert subjects(smtp) == ["Low stock: Bolt (P-1)", "Low stock: Bolt (P-1)"]
    assert smtp.received[0].message["Message-ID"] != smtp.received[1].message["Message-ID"]


def test_report_groups_records_into_one_email_per_client_with_a_csv_attachment(
    company: Company, smtp: Inbox
) -> None:
    (company.root / "mappings" / "monthly.yaml").write_text(MONTHLY)
    products(
        company, ("P-1", "Bolt", 3, 10, "Acme"), ("P-2", "Nut", 50, 10, "Acme"), ("P-3", "Gear", 7, 1, "Zeta")
    )
    run(company, "monthly_stock", datetime(2026, 11, 1, 8, tzinfo=UTC))
    by_to = {str(r.message["To"]): r.message for r in smtp.received}
    assert sorted(by_to) == ["buyer@acme.example", "buyer@zeta.example"]
    acme = by_to["buyer@acme.example"]
    assert acme["Subject"] == "Your stock report (2 products)"
    [attachment] = list(acme.iter_attachments())
    assert attachment.get_filename() == "stock.csv"
    assert attachment.get_content().splitlines() == ["ProductCode,Name,Qty", "P-1,Bolt,3", "P-2,Nut,50"]


def test_report_is_sent_once_per_period(company: Company, smtp: Inbox) -> None:
    (company.root / "mappings" / "monthly.yaml").write_text(MONTHLY)
    products(company, ("P-1", "Bolt", 3, 10, "Acme"))
    run(company, "monthly_stock", datetime(2026, 11, 1, 8, tzinfo=UTC))
    run(company, "monthly_stock", datetime(2026, 11, 15, 8, tzinfo=UTC))
    assert len(smtp.received) == 1
    run(company, "monthly_stock", datetime(2026, 12, 1, 8, tzinfo=UTC))
    assert len(smtp.received) == 2


def test_dotted_paths_index_into_lists() -> None:
    record = {"from": [{"name": "Ann", "address": "ann@example.com"}]}
    assert get_path(record, "from.0.address") == "ann@example.com"
    assert get_path(record, "from.1.address") is None


def test_two_way_mapping_cannot_be_a_notification(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from syncd.config import MappingSpec

    with pytest.raises(ValidationError, match="for one-way mappings"):
        MappingSpec.model_validate(
            {
                "name": "x",
                "source": "a.b",
                "target": "c.d",
                "direction": "two-way",
                "match": {"source": "k", "target": "k"},
                "fields": {"k": "k"},
                "updates": False,
            }
        )


def test_create_only_mapping_links_an_existing_target_record_without_writing_it(company: Company) -> None:
    from tests.engine.conftest import CLIENTS, account

    company.setup(
        [account("ACC-1", "Northwind")],
        clients_rows=[{"Account No": "ACC-1", "Client": "Northwind (hand-typed)"}],
    )
    one_way = CLIENTS % {"conflict": "source-wins", "deletes": "ignore"}
    company.write_mappings(
        clients=one_way.replace("direction: two-way", "direction: one-way") + "updates: false\n"
    )
    result = company.sync("clients")
    assert result.counts["linked"] == 1 and result.counts["updated"] == 0
    assert company.row("roster/Clients.csv", "Account No", "ACC-1")["Client"] == "Northwind (hand-typed)"
