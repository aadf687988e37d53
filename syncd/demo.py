"""`syncd demo`: the shipped mappings running a small company's day against local stand-ins, no accounts.

It starts the sandboxes (Salesforce, Google Sheets, IMAP, SMTP on loopback), seeds a company
(syncd/demo_company.py), writes a project whose mappings are the shipped ones unchanged, and runs
passes around a coordinator's day: a first sync, edits on both sides and new mail, a second sync that
carries them, a third that finds nothing left. Every figure it prints is read back from the journal
the passes wrote, so the summary cannot tell a better story than what happened.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from syncd.demo_company import (
    HEADERS,
    SHIPPED_MAPPINGS,
    Company,
    free_port_block,
    mail,
    seed_company,
    start_sandboxes,
    write_project,
)
from syncd.engine import Connections, PassResult, run_pass
from syncd.journal import Journal
from syncd.project import Project, load_project
from syncd.report import build_report, print_report
from syncd.sandbox.serve import Sandboxes

COUNTS = ("read", "created", "updated", "skipped", "failed", "conflicts")


@dataclass
class Day:
    """What the demo did, pass by pass, for the printed story and the --json summary."""

    passes: dict[str, list[PassResult]] = field(default_factory=dict)
    edits: list[str] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_all(project: Project, journal: Journal, progress: Progress | None, title: str) -> list[PassResult]:
    """One pass of every mapping, with a progress bar when someone is watching.

    The shipped mappings run in the order data flows through them (cases before the acknowledgements
    that read them), so one pass shows a change go all the way; any other mapping follows in lookup order.
    """
    names = [n for n in SHIPPED_MAPPINGS if n in project.mappings]
    names += [n for n in project.lookup_order() if n not in names]
    task = progress.add_task(title, total=len(names)) if progress else None
    conns = Connections(project)
    results = []
    try:
        for name in names:
            if progress is not None and task is not None:
                progress.update(task, description=f"{title}: {name}")
            results.append(run_pass(project, journal, name, connections=conns))
            if progress is not None and task is not None:
                progress.advance(task)
    finally:
        conns.close()
    if progress is not None and task is not None:
        progress.update(task, description=title)
    return results


def _row(sandboxes: Sandboxes, book: str, sheet: str, key: str) -> int:
    assert sandboxes.sheets is not None
    rows = sandboxes.sheets.values(book, sheet)
    return next(i for i, row in enumerate(rows) if row and row[0] == key)


def _set_cell(sandboxes: Sandboxes, book: str, sheet: str, key: str, column: str, value: Any) -> None:
    """A person typing into one cell of the row whose key column holds `key`."""
    assert sandboxes.sheets is not None
    rows = sandboxes.sheets.values(book, sheet)
    col = rows[0].index(column)
    sandboxes.sheets.set_values(book, sheet, (_row(sandboxes, book, sheet, key), col), [[value]])


def _append_row(sandboxes: Sandboxes, book: str, sheet: str, values: dict[str, Any]) -> None:
    assert sandboxes.sheets is not None
    rows = sandboxes.sheets.values(book, sheet)
    line = [values.get(h, "") for h in HEADERS[sheet]]
    sandboxes.sheets.set_values(book, sheet, (len(rows), 0), [line])


def coordinators_day(sandboxes: Sandboxes, company: Company) -> list[str]:
    """Edits on both sides and new mail between two passes; what was done, in words."""
    org, mailbox = sandboxes.salesforce, sandboxes.mail
    assert org is not None and mailbox is not None
    books = company.spreadsheets
    accounts = company.accounts
    done = []

    _set_cell(sandboxes, books["roster"], "Clients", "ACC-1003", "Phone", "+44 20 7946 5555")
    org.update("Account", accounts["ACC-1003"], {"Account_Status__c": "On hold"})
    done.append("ACC-1003: the sheet gets a corrected phone, Salesforce puts the account on hold (merged)")
    _set_cell(sandboxes, books["roster"], "Clients", "ACC-1006", "Client", "Litware Pharma (UK)")
    org.update("Account", accounts["ACC-1006"], {"Name": "Litware Pharma Ltd"})
    done.append("ACC-1006: renamed differently on both sides (a conflict, settled by newest-wins)")

    _set_cell(sandboxes, books["orders_sheet"], "Lines", "PO-7300/3", "Product Code", "P-2004")
    _append_row(sandboxes, books["orders_sheet"], "Orders",
                {"PO Number": "PO-7301", "Account No": "ACC-1002", "Price Book": "Wholesale",
                 "Order Date": "23/11/2026", "Notes": "Rush order"})  # fmt: skip
    _append_row(sandboxes, books["orders_sheet"], "Lines",
                {"Line": "PO-7301/1", "PO Number": "PO-7301", "Product Code": "P-2010", "Quantity": 12,
                 "Unit Price": 4})  # fmt: skip
    done.append("Orders sheet: PO-7300's unknown product code corrected; new order PO-7301 typed in")

    for code, counted in (("P-2001", 2), ("P-2002", 1)):
        _set_cell(sandboxes, books["warehouse"], "Inventory", code, "On Hand", counted)
    done.append("Inventory sheet: P-2001 and P-2002 counted under their reorder level")

    orders = {r["PO_Number__c"]: r["Id"] for r in org.records("Order")}
    for po in ("PO-7001", "PO-7002"):
        org.update("Order", orders[po], {"Status": "Activated"})
    done.append("Salesforce: orders PO-7001 and PO-7002 activated")

    cases = sorted(org.records("Case"), key=lambda c: str(c["CaseNumber"]))
    for case in cases[:3]:
        org.update("Case", case["Id"], {"Status": "Closed"})
    done.append(f"Salesforce: cases {', '.join(str(c['CaseNumber']) for c in cases[:3])} closed")

    when = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    for n, thread in enumerate(company.threads[:6]):
        reply = mail(("Account Coordinator", "help@ourco.example"), "Re: your question", "Answered.",
                     when=when + timedelta(hours=2 + n), to="client@client.example", reply_to=thread,
                     domain="ourco.example")  # fmt: skip
        mailbox.deliver("Sent", reply[1], flags=["\\Seen"])
    first = company.threads[0]
    contact = next(iter(company.contacts))
    mailbox.deliver("INBOX", mail(("Client", contact), "Re: follow-up", "One more thing.",
                                  when=when + timedelta(days=1), reply_to=first)[1])  # fmt: skip
    mailbox.deliver("INBOX", mail(("Client", contact), "New catalogue?", "Is there a new catalogue?",
                                  when=when + timedelta(days=1, hours=1))[1])  # fmt: skip
    done.append("Mail: the coordinator answered 6 threads by hand; a follow-up and a new question arrive")
    return done


def results_table(title: str, results: list[PassResult]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("mapping")
    for col in COUNTS:
        table.add_column(col, justify="right")
    table.add_column("outcome")
    for r in results:
        table.add_row(r.mapping, *(str(r.counts.get(c, 0)) for c in COUNTS), r.outcome)
    return table


def settled_conflict(sandboxes: Sandboxes, company: Company, number: str) -> dict[str, str]:
    """The client renamed on both sides: what each system holds now that the passes are done."""
    assert sandboxes.salesforce is not None and sandboxes.sheets is not None
    [account] = [a for a in sandboxes.salesforce.records("Account") if a["AccountNumber"] == number]
    rows = sandboxes.sheets.values(company.spreadsheets["roster"], "Clients")
    [row] = [r for r in rows[1:] if r and r[0] == number]
    return {"client": number, "salesforce": str(account["Name"]), "sheet": row[rows[0].index("Client")]}


def summary(project: Project, journal: Journal, directory: Path, day: Day, info_file: Path) -> dict[str, Any]:
    """What happened, from the journal: per-mapping totals of every pass, links, dead letters, conflicts."""
    names = sorted(project.mappings)
    rows = journal.conn.execute(
        "SELECT mapping, SUM(read), SUM(created), SUM(updated), SUM(skipped), SUM(failed), SUM(conflicts)"
        " FROM runs GROUP BY mapping"
    ).fetchall()
    totals = {r[0]: dict(zip(COUNTS, (int(v or 0) for v in r[1:]), strict=True)) for r in rows}
    return {
        "directory": str(directory),
        "sandbox": str(info_file),
        "passes": {
            k: [{"mapping": r.mapping, "outcome": r.outcome, "counts": dict(r.counts)} for r in v]
            for k, v in day.passes.items()
        },
        "totals": {name: totals.get(name, dict.fromkeys(COUNTS, 0)) for name in names},
        "links": {name: journal.count_links(name) for name in names},
        "dead_letters": [
            {"mapping": d.mapping, "key": d.record_key, "category": d.category, "message": d.message}
            for d in journal.dead_letters()
        ],
        "edits": day.edits,
    }


def run_demo(
    directory: Path | None, console: Console, as_json: bool = False, keep_running: bool = False
) -> int:
    workdir = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="syncd-demo-"))
    if workdir.exists() and any(workdir.iterdir()):
        console.print(f"{workdir} is not empty: give the demo a new or empty folder", markup=False)
        return 2
    say: Callable[[Any], None] = (lambda _: None) if as_json else console.print
    started = time.monotonic()
    say(f"[bold]syncd demo[/bold]: a small company in {workdir}")
    port_base = free_port_block()
    sandboxes = start_sandboxes(workdir / "sandbox", port_base)
    try:
        assert sandboxes.sheets is not None
        sandboxes.sheets.quotas.read_per_minute = sandboxes.sheets.quotas.write_per_minute = None
        company = seed_company(sandboxes)
        say(
            "  sandboxes up on 127.0.0.1 (Salesforce, Google Sheets, IMAP, SMTP), seeded with "
            f"{len(company.accounts)} clients, {len(company.products)} products, 300 purchase orders "
            "and 30 helpdesk mails (a few of them broken on purpose)\n"
        )
        metrics = f"127.0.0.1:{free_port()}"
        config = write_project(workdir, sandboxes.info(), company.spreadsheets, metrics=metrics)
        project = load_project(config)
        day = Day()
        journal = Journal(project.journal_path)
        try:
            with Progress(console=console, transient=True, disable=as_json) as progress:
                day.passes["first"] = run_all(project, journal, progress, "1. first sync")
            say(
                results_table(
                    "1. First sync: rosters matched, orders, stock and helpdesk mail in", day.passes["first"]
                )
            )
            day.edits = coordinators_day(sandboxes, company)
            say("\n2. The coordinator's day, on both sides:")
            for line in day.edits:
                say(f"   - {line}")
            with Progress(console=console, transient=True, disable=as_json) as progress:
                day.passes["second"] = run_all(project, journal, progress, "3. second sync")
            say(
                results_table("\n3. Second sync: the day's edits carried, notices sent", day.passes["second"])
            )
            with Progress(console=console, transient=True, disable=as_json) as progress:
                day.passes["third"] = run_all(project, journal, progress, "4. third sync")
            say(
                results_table(
                    "\n4. Third sync: nothing new; waiting dead letters are retried", day.passes["third"]
                )
            )
            result = summary(project, journal, workdir, day, sandboxes.info_file)
            result["conflict"] = settled_conflict(sandboxes, company, "ACC-1006")
            kpis = build_report(project, journal)
        finally:
            journal.close()
        result["seconds"] = round(time.monotonic() - started, 1)
        if as_json:
            result["report"] = kpis.to_json()
            print(json.dumps(result))
        else:
            _print_summary(console, result, config, metrics, workdir, port_base)
            console.print("\n[bold]The coordinator's KPIs[/bold] (syncd report)")
            print_report(kpis, console)
            console.print(f"\n(demo took {result['seconds']} s)")
        if keep_running:
            return _keep_running(console, config, metrics)
        return 0
    finally:
        sandboxes.stop()


def _print_summary(
    console: Console, result: dict[str, Any], config: Path, metrics: str, workdir: Path, port_base: int
) -> None:
    table = Table(title="\nWhat happened, per mapping (all passes, from the journal)", title_justify="left")
    table.add_column("mapping")
    for col in ("created", "updated", "skipped", "failed", "conflicts"):
        table.add_column(col, justify="right")
    table.add_column("links", justify="right")
    for name, counts in result["totals"].items():
        table.add_row(name, *(str(counts[c]) for c in ("created", "updated", "skipped", "failed", "conflicts")),
                      str(result["links"][name]))  # fmt: skip
    console.print(table)
    c = result["conflict"]
    console.print(
        f"\nThe conflict: {c['client']} was renamed on both sides; newest-wins settled it (the sheet keeps no "
        f"edit times, so Salesforce's name won): Salesforce has {c['salesforce']!r}, the sheet {c['sheet']!r}.",
        markup=False,
    )
    console.print("\n[bold]What needs a person[/bold] (dead letters: the rest of each batch went through):")
    for d in result["dead_letters"]:
        console.print(f"   - {d['mapping']} {d['key']}: {d['category']}: {d['message']}", markup=False)
    if not result["dead_letters"]:
        console.print("   nothing")
    cfg = f"--config {config}"
    console.print("\n[bold]Where to look[/bold]")
    console.print(
        f"   syncd {cfg} status              per-mapping outcome, dead letters, conflicts", markup=False
    )
    console.print(f"   syncd {cfg} dead-letters list   why each waiting record waits", markup=False)
    console.print(f"   syncd {cfg} report              the KPIs below, also --format csv|json", markup=False)
    console.print(f"   syncd {cfg} reconcile clients   both sides compared in full", markup=False)
    console.print(
        f"   http://{metrics}/metrics         the daemon's metrics (with --keep-running)", markup=False
    )
    console.print(
        f"   the sandboxes' data: {workdir / 'sandbox'} (how to reach them: sandbox.json)", markup=False
    )
    console.print(
        f"   bring the sandboxes back later: syncd sandbox --data {workdir / 'sandbox'} --port-base {port_base}",
        markup=False,
    )


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
"""Loopback needs no proxy, whatever http_proxy says."""


def _wait_until_serving(url: str, daemon: subprocess.Popen[bytes], seconds: float = 60) -> bool:
    """True once the daemon answers on its health URL, so the address we print already works."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and daemon.poll() is None:
        try:
            with _DIRECT.open(url, timeout=2) as answer:
                if answer.status == 200:
                    return True
        except OSError:
            time.sleep(0.2)
    return False


def _keep_running(console: Console, config: Path, metrics: str) -> int:
    """`syncd run` on the demo's project beside the sandboxes, until Ctrl-C or SIGTERM."""
    daemon = subprocess.Popen(
        [sys.executable, "-m", "syncd", "--config", str(config), "--log-format", "text", "run"],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        serving = _wait_until_serving(f"http://{metrics}/healthz", daemon)
    except BaseException:  # Ctrl-C while it starts: never leave the daemon behind, orphaned
        _stop_daemon(daemon)
        raise
    if not serving:
        _stop_daemon(daemon)
        console.print(f"`syncd run` did not start (exit {daemon.poll()}): see its log above", markup=False)
        return 1
    console.print(
        f"\n[bold]Still running[/bold]: the sandboxes and `syncd run` (pid {daemon.pid}); "
        f"metrics at http://{metrics}/metrics. Ctrl-C stops both."
    )
    stop = {"asked": False}

    def ask(signum: int, frame: object) -> None:
        stop["asked"] = True

    # Ctrl-C sets the flag like SIGTERM instead of raising KeyboardInterrupt wherever the main thread
    # happens to be: raised inside Popen.poll(), it can leave the Popen's wait lock taken, and the
    # wait for the daemon in _stop_daemon then never returns.
    previous = {sig: signal.signal(sig, ask) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while daemon.poll() is None and not stop["asked"]:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _stop_daemon(daemon)
    if not stop["asked"] and daemon.returncode not in (0, -signal.SIGTERM):
        console.print(
            f"`syncd run` stopped by itself (exit {daemon.returncode}): see its log above", markup=False
        )
        return 1
    return 0


def _stop_daemon(daemon: subprocess.Popen[bytes]) -> None:
    """SIGTERM and the daemon's grace period; SIGKILL only if it does not end within it."""
    if daemon.poll() is None:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=45)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
