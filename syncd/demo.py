"""`syncd demo`: the shipped mappings running on a small example company, with no accounts needed.

CSV files stand in for Salesforce (`crm/`), the client roster sheet (`roster/`) and the order-entry
sheet (`orders/`), with the same stream and field names as the real systems, so the mapping files
are the very ones in `mappings/`. The demo plays a coordinator's morning: a first sync, edits on
both sides, a second sync that merges them, and a third that has nothing left to do.
"""

from __future__ import annotations

import csv
import shutil
import sys
import tempfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from syncd.engine import Connections, PassResult, run_pass
from syncd.journal import Journal
from syncd.project import Project, load_project


def shipped_mappings_dir() -> Path:
    """The `mappings/` folder of a source checkout, or the copy a wheel installs under share/syncd."""
    here = Path(__file__).resolve().parent.parent / "mappings"
    if here.is_dir():
        return here
    installed = Path(sys.prefix) / "share" / "syncd" / "mappings"
    if installed.is_dir():
        return installed
    raise FileNotFoundError(
        "the shipped mapping files are not installed (looked in the checkout and share/syncd)"
    )


def prepare(directory: Path) -> Path:
    """Copy the example company and the shipped clients/orders mappings into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    data = resources.files("syncd") / "demo_data"
    with resources.as_file(data) as source:
        shutil.copytree(source, directory, dirs_exist_ok=True)
    (directory / "mappings").mkdir(exist_ok=True)
    for name in ("clients.yaml", "orders.yaml"):
        shutil.copy2(shipped_mappings_dir() / name, directory / "mappings" / name)
    return directory / "syncd.yaml"


def edit_csv(path: Path, key_column: str, key: str, changes: dict[str, str]) -> None:
    """Change cells of one row the way a person would in a spreadsheet (other cells untouched)."""
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    header = rows[0]
    for row in rows[1:]:
        if row and row[header.index(key_column)] == key:
            row.extend([""] * (len(header) - len(row)))
            for column, value in changes.items():
                row[header.index(column)] = value
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)


def append_csv(path: Path, values: dict[str, str]) -> None:
    with path.open(newline="", encoding="utf-8") as fh:
        header = next(csv.reader(fh))
    with path.open("a", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerow([values.get(h, "") for h in header])


def coordinators_morning(workdir: Path) -> list[str]:
    """Edits on both sides between passes; returns what was done, in words."""
    crm, roster, orders = (
        workdir / "crm" / "Account.csv",
        workdir / "roster" / "Clients.csv",
        workdir / "orders" / "Orders.csv",
    )
    edit_csv(crm, "AccountNumber", "ACC-1001", {"Tier__c": "Silver"})
    edit_csv(roster, "Account No", "ACC-1001", {"Email": "purchasing@northwind.example"})
    edit_csv(roster, "Account No", "ACC-1003", {"Email": "accounts@fabrikam.example"})
    edit_csv(crm, "AccountNumber", "ACC-1005", {"Name": "Tailspin Toys GmbH"})
    edit_csv(roster, "Account No", "ACC-1005", {"Client": "Tailspin Toys Ltd"})
    append_csv(
        crm,
        {
            "Id": "0015g00000AbCdMAAV",
            "AccountNumber": "ACC-1009",
            "Name": "Proseware",
            "Type": "Customer",
            "Email__c": "buyers@proseware.example",
            "Tier__c": "Bronze",
            "Owner.Name": "Sam Okoro",
            "Owner.Email": "sam@ourco.example",
        },
    )
    edit_csv(orders, "PO Number", "PO-7004", {"Order Date": "30/11/2026"})
    append_csv(
        orders,
        {
            "PO Number": "PO-7007",
            "Account No": "ACC-1006",
            "Price Book": "Wholesale",
            "Order Date": "21/11/2026",
            "Notes": "Quarterly restock",
        },
    )
    return [
        "Salesforce: Northwind's tier Gold -> Silver; the sheet: Northwind's email corrected (same client, different fields)",
        "the sheet: Fabrikam's email corrected (flows back to Salesforce)",
        "both sides renamed Tailspin Toys differently (a conflict: newest-wins; CSV has no edit times, so Salesforce wins)",
        "Salesforce: new account ACC-1009 Proseware (order PO-7005 was waiting for it)",
        "the orders sheet: PO-7004's impossible date fixed; new order PO-7007",
    ]


def run_all(project: Project, journal: Journal) -> list[PassResult]:
    conns = Connections(project)
    try:
        return [run_pass(project, journal, name, connections=conns) for name in project.lookup_order()]
    finally:
        conns.close()


def results_table(title: str, results: list[PassResult]) -> Table:
    table = Table(title=title, title_justify="left")
    cols = ("read", "created", "updated", "skipped", "failed", "conflicts")
    table.add_column("mapping")
    for col in cols:
        table.add_column(col, justify="right")
    table.add_column("outcome")
    for r in results:
        table.add_row(r.mapping, *(str(r.counts.get(c, 0)) for c in cols), r.outcome)
    return table


def run_demo(directory: Path | None, console: Console, as_json: bool = False) -> int:
    workdir = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="syncd-demo-"))
    config = prepare(workdir)
    project = load_project(config)
    say: Callable[[Any], None] = (lambda _: None) if as_json else console.print
    say(f"[bold]syncd demo[/bold]: an example company in {workdir}")
    say("  crm/ stands in for Salesforce, roster/ for the Clients sheet, orders/ for the Orders sheet\n")
    journal = Journal(project.journal_path)
    passes: dict[str, list[PassResult]] = {}
    try:
        passes["first"] = run_all(project, journal)
        say(
            results_table(
                "1. First sync: clients matched or created in the sheet, orders into Salesforce",
                passes["first"],
            )
        )
        edits = coordinators_morning(workdir)
        say("\n2. A coordinator's morning, edits on both sides:")
        for line in edits:
            say(f"   - {line}")
        passes["second"] = run_all(project, journal)
        say(
            results_table(
                "\n3. Second sync: edits merged field by field, waiting orders retried", passes["second"]
            )
        )
        passes["third"] = run_all(project, journal)
        say(
            results_table(
                "\n4. Third sync: nothing left to do (our own writes are recognised, not echoed)",
                passes["third"],
            )
        )
        letters = journal.dead_letters()
        links = {name: journal.count_links(name) for name in project.mappings}
    finally:
        journal.close()
    if as_json:
        import json

        print(
            json.dumps(
                {
                    "directory": str(workdir),
                    "passes": {
                        k: [{"mapping": r.mapping, "outcome": r.outcome, "counts": dict(r.counts)} for r in v]
                        for k, v in passes.items()
                    },
                    "dead_letters": [
                        {
                            "mapping": d.mapping,
                            "key": d.record_key,
                            "category": d.category,
                            "message": d.message,
                        }
                        for d in letters
                    ],
                    "links": links,
                }
            )
        )
        return 0
    say("\n[bold]What needs a person[/bold] (dead letters: the rest of each batch went through):")
    for d in letters:
        say(f"   - {d.mapping} {d.record_key}: {d.category}: {d.message}")
    if not letters:
        say("   nothing")
    say("\n[bold]Where to look[/bold]")
    cfg = f"--config {config}"
    say(f"   syncd {cfg} status              per-mapping outcome, dead letters, conflicts")
    say(f"   syncd {cfg} dead-letters list   why each waiting record waits")
    say(f"   syncd {cfg} links clients       which Salesforce account is which sheet row")
    say(f"   syncd {cfg} sync --dry-run      what the next pass would do")
    say(f"   the files themselves: {workdir}/roster/Clients.csv, {workdir}/crm/Order.csv")
    return 0
