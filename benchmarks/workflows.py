"""The jobs the benchmarks time: three workflows over the stand-ins, and the engine alone.

Each workflow is a project folder (syncd.yaml + one mapping) written against stand-ins started in
the benchmark's own process, so their call counters see everything the pass does while the pass
itself runs in a child process whose memory is measured alone (see harness.in_child).

- `sf-to-sheets`: Salesforce Accounts -> a roster worksheet (Salesforce queryAll, Sheets appends);
- `sheets-to-sf`: a worksheet of clients -> Salesforce Accounts, upserted on an external id;
  `-collections` forces sObject Collections; `sf-to-sheets-batch100k` sets `batch_size: 100000`
  (fewer appends, more memory);
- `files-to-files`: a CSV export -> a CSV roster;
- `engine`: an in-memory source and a target that accepts everything, so only map + plan + journal
  is timed, next to the raw SQLite ceiling for the same rows.
"""

from __future__ import annotations

import contextlib
import csv
import json
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from ruamel.yaml import YAML

from syncd.engine import Connections, SyncPass
from syncd.journal import Journal
from syncd.project import load_project
from syncd.records import Batch, Cursor, Op, Record, StreamInfo, WriteOp, WriteResult

WORKFLOWS = (
    "sf-to-sheets",
    "sf-to-sheets-batch100k",
    "sheets-to-sf",
    "sheets-to-sf-collections",
    "files-to-files",
    "engine",
)
API_WORKFLOWS = ("sf-to-sheets", "sheets-to-sf")
VARIANTS = ("-collections", "-batch100k")
"""Suffixes that run a workflow with one setting changed: Salesforce writes forced through sObject
Collections (no Bulk API), or the mapping's `batch_size: 100000` (one write batch per 100,000)."""


def base_of(workflow: str) -> str:
    """The workflow a variant runs ("sheets-to-sf-collections" -> "sheets-to-sf")."""
    for suffix in VARIANTS:
        workflow = workflow.removesuffix(suffix)
    return workflow


SF_SEED = {
    "objects": {
        "Account": {
            "fields": {
                "Client_No__c": {"type": "string", "length": 40, "externalId": True, "unique": True},
                "Email__c": {"type": "email", "length": 80},
                "Tier__c": {"type": "picklist", "length": 40, "values": ["Gold", "Silver", "Bronze"]},
            }
        }
    }
}
HEADER = ["Client No", "Client", "Email", "Tier", "Phone", "City"]
TIERS = ("Gold", "Silver", "Bronze")

MAPPING_TO_SHEET = """\
version: 1
name: clients
source: crm.Account
target: roster.Clients
direction: one-way
match: {source: Client_No__c, target: "Client No"}
fields:
  "Client No": Client_No__c
  "Client": Name
  "Email": {from: Email__c, transform: [strip, lower]}
  "Tier": {from: Tier__c, map: {Gold: A, Silver: B, Bronze: C}}
  "Phone": Phone
  "City": BillingCity
"""

MAPPING_TO_SF = """\
version: 1
name: clients
source: roster.Clients
target: crm.Account
direction: one-way
match: {source: "Client No", target: Client_No__c}
fields:
  Client_No__c: "Client No"
  Name: Client
  Email__c: {from: Email, transform: [strip, lower]}
  Tier__c: {from: Tier, map: {A: Gold, B: Silver, C: Bronze}}
  Phone: Phone
  BillingCity: City
"""

MAPPING_FILES = MAPPING_TO_SHEET  # the same fields, from a CSV export to a CSV roster


def account(i: int, version: int = 0) -> dict[str, Any]:
    """The i-th client as Salesforce holds it; `version` > 0 changes its name (an edit)."""
    return {
        "Client_No__c": f"C-{i:07}",
        "Name": f"Client {i}" + (f" v{version}" if version else ""),
        "Email__c": f"Info{i}@Example.com",
        "Tier__c": TIERS[i % 3],
        "Phone": f"+44 20 7946 {i % 10000:04}",
        "BillingCity": ("Leeds", "York", "Bristol", "Derby")[i % 4],
    }


def sheet_row(i: int, version: int = 0) -> list[Any]:
    a = account(i, version)
    return [a["Client_No__c"], a["Name"], a["Email__c"], "ABC"[i % 3], a["Phone"], a["BillingCity"]]


class Stand:
    """The stand-ins one run needs, started here (the parent); `info` is what the child connects with."""

    def __init__(self, workflow: str, size: int, latency_ms: int, root: Path) -> None:
        self.collections_only = workflow.endswith("-collections")
        self.one_batch = workflow.endswith("-batch100k")
        workflow = base_of(workflow)
        self.workflow, self.size, self.root = workflow, size, root
        self.versions: dict[int, int] = {}  # files-to-files: row -> the version it was last edited to
        # Imported here, not at the top: the child processes import this module too, and their
        # peak RSS should be the pass's, not the stand-ins' (werkzeug, lark, pymap).
        from syncd.sandbox.salesforce import SalesforceSandbox
        from syncd.sandbox.sheets import SheetsSandbox

        self.org: SalesforceSandbox | None = None
        self.sheets: SheetsSandbox | None = None
        self.spreadsheet = ""
        if workflow in API_WORKFLOWS:
            self.org = SalesforceSandbox(seed=SF_SEED).start()
            self.sheets = SheetsSandbox().start()
            rows: list[list[Any]] = [HEADER]
            if workflow == "sf-to-sheets":
                for i in range(size):
                    self.org.insert("Account", account(i))
            else:
                rows += [sheet_row(i) for i in range(size)]
            self.spreadsheet = self.sheets.create_spreadsheet("roster", {"Clients": rows})
            for knobs in (self.org.knobs, self.sheets.knobs):
                knobs.latency_s = latency_ms / 1000
                knobs.reset_counts()
        elif workflow == "files-to-files":
            write_csv(root / "crm" / "Account.csv", size)
            (root / "roster").mkdir(parents=True, exist_ok=True)

    def calls(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for prefix, server in (("sf", self.org), ("sheets", self.sheets)):
            if server is not None:
                out.update({f"{prefix}.{k}": v for k, v in server.knobs.calls.items() if v})
        return out

    def reset_counts(self) -> None:
        for server in (self.org, self.sheets):
            if server is not None:
                server.knobs.reset_counts()

    def edit(self, count: int, version: int) -> None:
        """Change `count` records spread over the source, as people do between passes."""
        step = max(self.size // max(count, 1), 1)
        picked = list(range(0, self.size, step))[:count]
        if self.workflow == "sf-to-sheets" and self.org is not None:
            ids = {r["Client_No__c"]: r["Id"] for r in self.org.records("Account")}
            for i in picked:
                self.org.update("Account", ids[f"C-{i:07}"], {"Name": f"Client {i} v{version}"})
        elif self.workflow == "sheets-to-sf" and self.sheets is not None:
            for i in picked:
                self.sheets.set_values(self.spreadsheet, "Clients", (i + 1, 1), [[f"Client {i} v{version}"]])
        elif self.workflow == "files-to-files":
            self.versions.update(dict.fromkeys(picked, version))  # earlier edits stay as they were
            write_csv(self.root / "crm" / "Account.csv", self.size, self.versions)

    def stop(self) -> None:
        for server in (self.org, self.sheets):
            if server is not None:
                server.stop()

    def project_dir(self) -> Path:
        """syncd.yaml and the mapping for this workflow (not for `engine`, which builds its own)."""
        (self.root / "mappings").mkdir(parents=True, exist_ok=True)
        conns: dict[str, Any] = {}
        if self.org is not None and self.sheets is not None:
            sf, sh = self.org.info(), self.sheets.info()
            conns["crm"] = {
                "kind": "salesforce",
                "login_url": sf["login_url"],
                "username": sf["username"],
                "password": sf["password"],
                "security_token": sf["security_token"],
                "ca_file": sf["ca_file"],
                "objects": ["Account"],
                "bulk_poll_seconds": 0.2,
                "bulk_threshold": 10**9 if self.collections_only else 2000,
            }
            conns["roster"] = {
                "kind": "sheets",
                "spreadsheet": self.spreadsheet,
                "endpoint": sh["base_url"],
                "ca_file": sh["ca_file"],
                "service_account_file": sh["service_account_file"],
                "keys": {"Clients": "Client No"},
            }
            mapping = MAPPING_TO_SHEET if self.workflow == "sf-to-sheets" else MAPPING_TO_SF
            if self.one_batch:
                mapping += "batch_size: 100000\n"
        else:
            conns["crm"] = {"kind": "files", "path": "crm", "keys": {"Account": "Client_No__c"}}
            conns["roster"] = {"kind": "files", "path": "roster", "keys": {"Clients": "Client No"}}
            mapping = MAPPING_FILES
        (self.root / "mappings" / "clients.yaml").write_text(mapping)
        config = {"version": 1, "journal": "syncd.db", "mappings": ["mappings/*.yaml"], "connections": conns}
        with (self.root / "syncd.yaml").open("w") as fh:
            YAML().dump(config, fh)
        return self.root


def write_csv(path: Path, n: int, versions: dict[int, int] | None = None) -> None:
    """The export of `n` clients; `versions` gives edited rows their version (0: as first written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["Client_No__c", "Name", "Email__c", "Tier__c", "Phone", "BillingCity"])
        for i in range(n):
            a = account(i, versions.get(i, 0) if versions else 0)
            out.writerow(
                [a["Client_No__c"], a["Name"], a["Email__c"], a["Tier__c"], a["Phone"], a["BillingCity"]]
            )


# --- in the child process ------------------------------------------------------------------------


class JournalWrites:
    """Counts the journal's row-writing statements by table (sqlite3's statement trace)."""

    def __init__(self, journal: Journal) -> None:
        self.by_table: dict[str, int] = {}
        journal.conn.set_trace_callback(self._seen)

    def _seen(self, statement: str) -> None:
        words = statement.replace("(", " ").split()
        verb = words[0].upper() if words else ""
        if verb == "UPDATE":
            table = words[1]
        elif verb in {"INSERT", "DELETE"}:
            table = words[words.index("INTO" if verb == "INSERT" else "FROM") + 1]
        else:
            return
        key = f"{verb.lower()} {table}"
        self.by_table[key] = self.by_table.get(key, 0) + 1


def run_passes(
    root: str, passes: int = 1, trace: bool = False, before_each: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """Run the project's `clients` mapping `passes` times on one set of open connections.

    The first pass is what `syncd sync` does from cold (login, describe); later passes are what the
    daemon does with its connections kept open. Returns seconds, counts and journal writes per pass.
    `before_each(i)` runs before pass i (in-process runs use it to read the stand-ins' counters).
    """
    project = load_project(Path(root) / "syncd.yaml")
    out: list[dict[str, Any]] = []
    with Journal(project.journal_path) as journal:
        conns = Connections(project)
        try:
            for index in range(passes):
                if before_each is not None:
                    before_each(index)
                writes = JournalWrites(journal) if trace else None
                started = time.perf_counter()
                result = SyncPass(project, journal, project.mappings["clients"], conns).run()
                seconds = time.perf_counter() - started
                journal.conn.set_trace_callback(None)
                out.append(
                    {
                        "seconds": seconds,
                        "outcome": result.outcome,
                        "message": result.message,
                        "counts": {k: v for k, v in result.counts.items() if v},
                        "journal_writes": writes.by_table if writes else None,
                    }
                )
        finally:
            conns.close()
    return {"passes": out}


class MemorySource:
    """`n` clients generated on the fly in pages of 2,000 (a Salesforce query's page), never held."""

    Settings: ClassVar[Any] = None

    def __init__(self, n: int) -> None:
        self.n = n

    def streams(self) -> list[StreamInfo]:
        return []

    def read(self, stream: str, cursor: Cursor | None) -> Iterator[Batch]:
        start = int(cursor) if isinstance(cursor, int) else 0
        for first in range(start, self.n, 2000):
            last = min(first + 2000, self.n)
            yield Batch([Record(f"A{i}", account(i)) for i in range(first, last)], last)

    def write(self, stream: str, ops: Sequence[WriteOp]) -> list[WriteResult]:
        raise AssertionError("one-way: the source is never written")

    def close(self) -> None:
        pass


class AcceptingTarget:
    """Takes every op at once, as a target with no cost would: what is left is the engine's own work."""

    Settings: ClassVar[Any] = None
    write_batch_size = 2000

    def streams(self) -> list[StreamInfo]:
        return []

    def read(self, stream: str, cursor: Cursor | None) -> Iterator[Batch]:
        yield Batch([], None)

    def write(self, stream: str, ops: Sequence[WriteOp]) -> list[WriteResult]:
        return [
            WriteResult(True, key=op.match[1] if op.match else op.key, created=op.op is Op.CREATE)
            for op in ops
        ]

    def close(self) -> None:
        pass


def engine_alone(root: str, n: int) -> dict[str, Any]:
    """A first pass of `n` records through map + plan + journal, with no connector cost."""
    base = Path(root)
    (base / "mappings").mkdir(parents=True, exist_ok=True)
    (base / "crm").mkdir(exist_ok=True)
    (base / "roster").mkdir(exist_ok=True)
    (base / "mappings" / "clients.yaml").write_text(MAPPING_FILES)
    config = {
        "version": 1,
        "journal": "syncd.db",
        "mappings": ["mappings/*.yaml"],
        "connections": {
            "crm": {"kind": "files", "path": "crm", "keys": {"Account": "Client_No__c"}},
            "roster": {"kind": "files", "path": "roster", "keys": {"Clients": "Client No"}},
        },
    }
    with (base / "syncd.yaml").open("w") as fh:
        YAML().dump(config, fh)
    project = load_project(base / "syncd.yaml")
    with Journal(project.journal_path) as journal:
        conns = Connections(project)
        conns._open.update({"crm": MemorySource(n), "roster": AcceptingTarget()})
        started = time.perf_counter()
        result = SyncPass(project, journal, project.mappings["clients"], conns).run()
        seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "counts": {k: v for k, v in result.counts.items() if v},
        "outcome": result.outcome,
    }


def sqlite_ceiling(root: str, n: int) -> dict[str, Any]:
    """The same rows upserted by one `executemany` in one transaction: what SQLite alone allows.

    Same pragmas as the journal (WAL, synchronous FULL), same row shape as a link (key, target key,
    the agreed values as canonical JSON, a hash), so the ratio to `engine_alone` is the engine's cost.
    """
    path = Path(root) / "ceiling.db"
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute(
            "CREATE TABLE links (mapping TEXT, source_key TEXT, target_key TEXT, base TEXT, base_hash TEXT, "
            "PRIMARY KEY (mapping, source_key))"
        )
        rows = [
            ("clients", f"A{i}", f"C-{i:07}", json.dumps(account(i), sort_keys=True), f"{i:032x}")
            for i in range(n)
        ]
        started = time.perf_counter()
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO links VALUES (?,?,?,?,?) ON CONFLICT (mapping, source_key) DO UPDATE SET "
            "target_key=excluded.target_key, base=excluded.base, base_hash=excluded.base_hash",
            rows,
        )
        db.execute("COMMIT")
        seconds = time.perf_counter() - started
    return {"seconds": seconds}


def fresh_dir(parent: Path, name: str) -> Path:
    path = parent / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path
