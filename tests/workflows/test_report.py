"""`syncd report`: the coordinator's KPIs, read from the journal and the sandboxes."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from syncd.cli import main
from syncd.demo_company import mail
from syncd.metrics import KpiCollector
from syncd.report import Report, build_report

from .conftest import NOW, Stack, account, product

MAPPINGS = ("clients", "orders", "inventory", "helpdesk_cases", "helpdesk_ack")
ANN = ("Ann Northwind", "ann@northwind.example")


@pytest.fixture
def day(stack: Stack) -> Stack:
    """Two helpdesk threads (one answered by a person 3 h later, one case closed), an order for an
    unknown account, an order typed after the last pass, and a product under its reorder level."""
    account(stack, "ACC-1", "Northwind")
    product(stack, "P-1", "Bolt")
    answered, raw = mail(ANN, "Delivery date?", "When?", when=NOW)
    stack.mail.deliver("INBOX", raw)
    stack.mail.deliver("INBOX", mail(ANN, "Invoice copy", "Please.", when=NOW + timedelta(minutes=5))[1])
    stack.write(
        *MAPPINGS,
        rows={
            "Orders": [
                ["PO-1", "ACC-1", "Wholesale", "21/11/2026"],
                ["PO-2", "ACC-404", "Wholesale", "21/11/2026"],
            ],
            "Inventory": [["P-1", "Bolt", 3, 10]],
        },
    )
    stack.run()
    stack.run()  # the acknowledgements go out: they are syncd's, not a person's reply
    reply = mail(("Coordinator", "help@ourco.example"), "Re: Delivery date?", "Thursday.",
                 when=NOW + timedelta(hours=3), to=ANN[1], reply_to=answered, domain="ourco.example")  # fmt: skip
    stack.mail.deliver("Sent", reply[1])
    case = next(c for c in stack.org.records("Case") if c["Subject"] == "Invoice copy")
    stack.org.update("Case", case["Id"], {"Status": "Closed"})
    stack.sheets.set_values(
        stack.books["orders_sheet"], "Orders", (3, 0), [["PO-3", "ACC-1", "Wholesale", "22/11/2026"]]
    )
    return stack


def report_of(stack: Stack, now: datetime | None = None) -> Report:
    with stack.journal() as journal:
        return build_report(stack.project(), journal, now=now)


def test_email_response_time_counts_a_persons_first_reply_not_the_acknowledgement(day: Stack) -> None:
    assert len(day.sent()) == 2  # two acknowledgements, filed in Sent beside the person's reply
    assert len(day.mail.messages("Sent")) == 3
    report = report_of(day)
    assert report.value("mail_response_seconds_median") == 3 * 3600
    assert (report.value("mail_threads"), report.value("mail_unanswered")) == (2, 1)


def test_cases_closed_and_open_with_resolution_time_and_age(day: Stack) -> None:
    report = report_of(day)
    assert (report.value("cases_open"), report.value("cases_closed")) == (1, 1)
    resolution = report.value("case_resolution_seconds_median")
    assert resolution is not None and resolution >= 0
    assert report.open_cases_by_age == {"under_1d": 1, "1d_to_3d": 0, "3d_to_7d": 0, "over_7d": 0}
    later = report_of(day, now=datetime.now(UTC) + timedelta(days=5))
    assert later.open_cases_by_age["3d_to_7d"] == 1


def test_orders_waiting_are_dead_letters_and_rows_not_synced_yet(day: Stack) -> None:
    report = report_of(day)
    assert (report.value("orders_dead_letters"), report.value("orders_unsynced")) == (1, 1)
    waiting = {(w["key"], w["why"]) for w in report.orders_waiting}
    assert waiting == {("PO-2", "unresolved-reference"), ("PO-3", "not synced yet")}


def test_low_stock_items_are_listed(day: Stack) -> None:
    report = report_of(day)
    assert report.value("low_stock_items") == 1
    assert report.low_stock == [{"code": "P-1", "name": "Bolt", "on_hand": 3, "reorder_level": 10}]


def test_the_command_prints_csv_and_json(day: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(day.config), "report", "--format", "csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["kpi", "value", "unit"]
    assert ["low_stock_items", "1", "count"] in rows and ["open_cases_under_1d", "1", "count"] in rows
    assert main(["--config", str(day.config), "report", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {k["name"]: k["value"] for k in data["kpis"]}["orders_dead_letters"] == 1


def test_a_figure_without_a_source_is_a_note_not_a_zero(stack: Stack) -> None:
    stack.write("clients")
    report = report_of(stack)
    assert report.kpis == []
    assert any("Cases" in note for note in report.notes) and any("Orders" in note for note in report.notes)


def scrape(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for s in family.samples
    }


def test_the_kpis_are_prometheus_gauges_with_bounded_labels(day: Stack) -> None:
    collector = KpiCollector(lambda: report_of(day), refresh_seconds=3600)
    registry = CollectorRegistry()
    registry.register(collector)
    assert scrape(registry) == {}  # nothing read yet: absent, not zero (this scrape starts a refresh)
    collector.refresh_now()
    samples = scrape(registry)
    assert samples[("syncd_kpi_mail_response_seconds", ())] == 3 * 3600
    assert samples[("syncd_kpi_mail_threads", (("state", "unanswered"),))] == 1
    assert samples[("syncd_kpi_cases_open", (("age", "under_1d"),))] == 1
    assert samples[("syncd_kpi_orders_waiting", (("reason", "dead-letter"),))] == 1
    assert samples[("syncd_kpi_orders_waiting", (("reason", "unsynced"),))] == 1
    assert samples[("syncd_kpi_low_stock_items", ())] == 1
    labels = {k for name, pairs in samples for k, _ in pairs if name.startswith("syncd_kpi")}
    assert labels == {"state", "age", "reason"}
