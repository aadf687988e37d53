"""`syncd report`: the account coordinator's KPIs, read from the journal and from the systems themselves.

The figures are the ones a coordinator is asked about: how fast helpdesk mail gets a first answer
from a person, how long cases take to close, how many cases are open and for how long, which orders
are still not in Salesforce and why, and which products are under their reorder level.

Where the figures come from is found in the project, not configured twice: the mappings that write
Salesforce Cases name the helpdesk mailbox (their IMAP source) and the org; the mappings that write
Order / OrderItem name the order sheet; the mapping that writes Product2 names the org's stock
fields. A figure whose source the project does not have is left out with a note saying why, never
shown as zero. The systems are read in full, without cursors, so a report never moves a pass's place.

The acknowledgements syncd sends itself (any mapping with a mail target) are not a "first reply":
their Message-IDs are the target keys in the journal's links, and replies with those ids are skipped.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from syncd.engine import Connections
from syncd.journal import Journal
from syncd.project import Project
from syncd.records import Record

STOCK_FIELD = "QuantityOnHand__c"
REORDER_FIELD = "Reorder_Level__c"
ORDER_STREAMS = ("Order", "OrderItem")
AGE_BUCKETS: tuple[tuple[str, float], ...] = (
    ("under_1d", 1),
    ("1d_to_3d", 3),
    ("3d_to_7d", 7),
    ("over_7d", float("inf")),
)
"""Open-case age buckets (label, upper bound in days): a closed set, so they can be metric labels."""


@dataclass(frozen=True)
class Kpi:
    """One figure: `name` is also the Prometheus gauge's suffix (syncd_kpi_<name>)."""

    name: str
    value: float
    unit: str  # "seconds" or "count"
    label: str  # for people


@dataclass
class Report:
    kpis: list[Kpi] = field(default_factory=list)
    open_cases_by_age: dict[str, int] = field(default_factory=dict)
    low_stock: list[dict[str, Any]] = field(default_factory=list)
    orders_waiting: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    generated_at: str = ""

    def value(self, name: str) -> float | None:
        return next((k.value for k in self.kpis if k.name == name), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "generated_at": self.generated_at,
            "kpis": [asdict(k) for k in self.kpis],
            "open_cases_by_age": self.open_cases_by_age,
            "low_stock": self.low_stock,
            "orders_waiting": self.orders_waiting,
            "notes": self.notes,
        }

    def rows(self) -> list[tuple[str, str, str]]:
        """(kpi, value, unit) lines for a table or CSV: the KPIs, then open cases per age bucket."""
        out = [(k.name, _number(k.value), k.unit) for k in self.kpis]
        out += [(f"open_cases_{bucket}", str(n), "count") for bucket, n in self.open_cases_by_age.items()]
        return out


def parse_time(value: Any) -> datetime | None:
    """Salesforce (2026-11-23T14:01:18.650+0000), mail and sheet timestamps as aware datetimes."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value).strip().replace("Z", "+00:00")
    if len(text) > 5 and text[-5] in "+-" and text[-3] != ":":
        text = f"{text[:-2]}:{text[-2:]}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def build_report(project: Project, journal: Journal, now: datetime | None = None) -> Report:
    """Every KPI the project has the sources for; the systems are read through its connections."""
    now = now or datetime.now(UTC)
    report = Report(generated_at=now.isoformat(timespec="seconds"))
    conns = Connections(project)
    try:
        _helpdesk(project, journal, conns, report, now)
        _orders(project, journal, conns, report)
        _stock(project, conns, report)
    finally:
        conns.close()
    return report


def _read_all(conns: Connections, connection: str, stream: str) -> Iterator[Record]:
    for batch in conns.get(connection).read(stream, None):
        yield from (r for r in batch.records if not r.deleted)


def _kind(project: Project, connection: str) -> str:
    return project.connections[connection].kind


def _helpdesk(project: Project, journal: Journal, conns: Connections, report: Report, now: datetime) -> None:
    case_maps = [m.spec for m in project.mappings.values() if m.spec.target_stream == "Case"]
    if not case_maps:
        report.notes.append("no mapping writes Salesforce Cases: no helpdesk figures")
        return
    spec = case_maps[0]
    cases = list(_read_all(conns, spec.target_connection, "Case"))
    resolution = []
    open_ages = []
    for case in cases:
        created = parse_time(case.fields.get("CreatedDate"))
        closed = parse_time(case.fields.get("ClosedDate"))
        if created is None:
            continue
        if case.fields.get("IsClosed") or case.fields.get("Status") == "Closed":
            if closed is not None:
                resolution.append((closed - created).total_seconds())
        else:
            open_ages.append((now - created).total_seconds() / 86400)
    report.kpis.append(Kpi("cases_open", len(open_ages), "count", "open cases"))
    report.kpis.append(Kpi("cases_closed", len(resolution), "count", "closed cases"))
    if resolution:
        report.kpis.append(
            Kpi("case_resolution_seconds_median", statistics.median(resolution), "seconds",
                "case resolution time (median)")
        )  # fmt: skip
    report.open_cases_by_age = {label: 0 for label, _ in AGE_BUCKETS}
    for age in open_ages:
        label = next(label for label, upper in AGE_BUCKETS if age < upper)
        report.open_cases_by_age[label] += 1
    if _kind(project, spec.source_connection) != "imap":
        report.notes.append(f"{spec.name} does not read a mailbox: no email response time")
        return
    _response_time(project, journal, conns, spec.source_connection, spec.source_stream, report)


def _response_time(
    project: Project, journal: Journal, conns: Connections, connection: str, folder: str, report: Report
) -> None:
    """Per thread of the helpdesk folder: its first message's date -> the first reply a person sent."""
    settings = project.connections[connection].settings
    sent_folder = next((f for f in getattr(settings, "folders", []) if f.lower() == "sent"), None)
    if sent_folder is None:
        report.notes.append(f"connection {connection} does not list a Sent folder: no email response time")
        return
    ours = {
        link.target_key
        for name, m in project.mappings.items()
        if _kind(project, m.spec.target_connection) == "smtp"
        for link in journal.links(name)
    }
    first_in: dict[str, datetime] = {}
    ids_to_thread: dict[str, str] = {}
    for mail in _read_all(conns, connection, folder):
        thread, when = str(mail.fields.get("thread") or mail.key), parse_time(mail.fields.get("date"))
        ids_to_thread[str(mail.fields.get("message_id") or mail.key)] = thread
        if when is not None and (thread not in first_in or when < first_in[thread]):
            first_in[thread] = when
    first_reply: dict[str, datetime] = {}
    for mail in _read_all(conns, connection, sent_folder):
        if mail.fields.get("message_id") in ours:
            continue
        refs = [str(r) for r in [mail.fields.get("in_reply_to"), *(mail.fields.get("references") or [])]]
        replied = next((ids_to_thread[r] for r in refs if r in ids_to_thread), None)
        when = parse_time(mail.fields.get("date"))
        if replied is None or when is None or replied not in first_in:
            continue
        if replied not in first_reply or when < first_reply[replied]:
            first_reply[replied] = when
    waits = [(first_reply[t] - first_in[t]).total_seconds() for t in first_reply]
    report.kpis.append(Kpi("mail_threads", len(first_in), "count", "helpdesk threads"))
    report.kpis.append(Kpi("mail_unanswered", len(first_in) - len(waits), "count", "threads without a reply"))
    if waits:
        report.kpis.append(
            Kpi("mail_response_seconds_median", statistics.median(waits), "seconds",
                "email response time (median, first reply by a person)")
        )  # fmt: skip


def _orders(project: Project, journal: Journal, conns: Connections, report: Report) -> None:
    order_maps = [m.spec for m in project.mappings.values() if m.spec.target_stream in ORDER_STREAMS]
    if not order_maps:
        report.notes.append("no mapping writes Salesforce Orders: no order figures")
        return
    dead = unsynced = 0
    for spec in order_maps:
        letters = {d.record_key: d for d in journal.dead_letters(spec.name)}
        for letter in letters.values():
            report.orders_waiting.append(
                {"mapping": spec.name, "key": letter.record_key, "why": letter.category,
                 "message": letter.message}
            )  # fmt: skip
        dead += len(letters)
        keys = [r.key for r in _read_all(conns, spec.source_connection, spec.source_stream)]
        linked = journal.links_by_source(spec.name, keys)
        waiting = [k for k in keys if k not in linked and k not in letters]
        unsynced += len(waiting)
        report.orders_waiting += [{"mapping": spec.name, "key": k, "why": "not synced yet"} for k in waiting]
    report.kpis.append(Kpi("orders_dead_letters", dead, "count", "order rows waiting as dead letters"))
    report.kpis.append(Kpi("orders_unsynced", unsynced, "count", "order rows not synced yet"))


def _stock(project: Project, conns: Connections, report: Report) -> None:
    crm = next(
        (m.spec.target_connection for m in project.mappings.values() if m.spec.target_stream == "Product2"),
        None,
    )
    if crm is None:
        report.notes.append("no mapping writes Salesforce Product2: no stock figures")
        return
    for product in _read_all(conns, crm, "Product2"):
        on_hand, level = product.fields.get(STOCK_FIELD), product.fields.get(REORDER_FIELD)
        if isinstance(on_hand, int | float) and isinstance(level, int | float) and on_hand < level:
            report.low_stock.append(
                {"code": product.fields.get("ProductCode"), "name": product.fields.get("Name"),
                 "on_hand": on_hand, "reorder_level": level}
            )  # fmt: skip
    report.low_stock.sort(key=lambda p: str(p["code"]))
    report.kpis.append(Kpi("low_stock_items", len(report.low_stock), "count", "products under reorder level"))


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def human_duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def print_report(report: Report, console: Console) -> None:
    """The report for people: the KPIs, then the lists behind them."""
    table = Table(title=f"KPIs at {report.generated_at}", title_justify="left")
    table.add_column("kpi")
    table.add_column("value", justify="right")
    for kpi in report.kpis:
        shown = human_duration(kpi.value) if kpi.unit == "seconds" else _number(kpi.value)
        table.add_row(kpi.label, shown)
    for bucket, n in report.open_cases_by_age.items():
        table.add_row(f"open cases, {bucket.replace('_', ' ')}", str(n))
    console.print(table)
    if report.low_stock:
        console.print("\n[bold]Low stock[/bold]")
        for p in report.low_stock:
            console.print(
                f"   {p['code']} {p['name']}: {_number(p['on_hand'])} on hand, reorder at {_number(p['reorder_level'])}",
                markup=False,
            )
    if report.orders_waiting:
        console.print("\n[bold]Orders waiting[/bold]")
        for w in report.orders_waiting:
            why = f"{w['why']}: {w['message']}" if "message" in w else w["why"]
            console.print(f"   {w['mapping']} {w['key']}: {why}", markup=False)
    for note in report.notes:
        console.print(f"[dim]note: {note}[/dim]")
