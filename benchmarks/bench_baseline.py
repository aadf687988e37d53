"""The same jobs done the way a user writes them without syncd, timed and counted beside syncd's.

3. Salesforce: a simple-salesforce loop, `sf.Account.create({...})` per new record and then
   `sf.Account.update(id, {...})` per change, against a files -> Salesforce mapping pass over the same
   records (one pass that creates them all, one that carries a change to every one).
4. Google Sheets: a gspread loop, `worksheet.update_cell(row, col, value)` per changed cell, against one
   `write()` of syncd's Sheets connector with the same updates. The stand-in's per-minute quotas are off
   for timing; the time Google's default quota (60 write and 60 read requests per minute per user)
   would impose on each is printed beside it.

Every job runs in a fresh child process (its own peak RSS) while the stand-ins stay in this process and
count the calls it makes; each pair runs at the same size and stand-in latency, so the ratio rows
(loop / syncd) compare like with like. Prints a table, writes benchmarks/results/baseline.json, asserts
nothing. At the realistic latency a loop of 1k calls takes 150 s or more: --quick runs 100 records.

    .venv/bin/python benchmarks/bench_baseline.py                 # 1k records, latency 0 and 150 ms (~11 min)
    .venv/bin/python benchmarks/bench_baseline.py --quick         # 100 records
    .venv/bin/python benchmarks/bench_baseline.py --sizes 1k,10k --latencies 0
    .venv/bin/python benchmarks/bench_baseline.py --only sheets
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gspread
import requests
from harness import REALISTIC_LATENCY_MS, Figure, Results, Stopwatch, header, in_child, sizes
from requests.adapters import HTTPAdapter
from simple_salesforce.api import Salesforce

from connectors.sheets import SheetsConnector, SheetsSettings
from syncd.engine import run_pass
from syncd.journal import Journal
from syncd.project import load_project
from syncd.records import Op, WriteOp
from syncd.sandbox.salesforce import SalesforceSandbox
from syncd.sandbox.sheets import SheetsSandbox, sandbox_session

BENCH = "baseline"
SEED = {
    "objects": {
        "Account": {
            "fields": {"Ext__c": {"type": "string", "length": 40, "externalId": True, "unique": True}}
        }
    }
}
SHEET_HEADER = ["Id", "Name", "Email", "City", "Tier", "Notes"]
CITY = SHEET_HEADER.index("City")
SHEETS_READS = {"spreadsheets.get", "values.get", "values.batchGet"}
"""Sheets API calls Google charges to the read quota; every other Sheets call is a write (Drive has its own)."""
GOOGLE_PER_MINUTE = 60


# --- 3. Salesforce: simple-salesforce loop vs a mapping pass ----------------------------------------


class LoginHostAdapter(HTTPAdapter):
    """simple-salesforce logs in at the hard-coded https://login.salesforce.com: send that to the stand-in."""

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        if request.url:
            request.url = request.url.replace("https://login.salesforce.com", self.target, 1)
        return super().send(request, *args, **kwargs)


def simple_salesforce_loop(info: dict[str, Any], n: int) -> dict[str, Any]:
    """In a child: the script a user writes, one create per new record, then one update per change."""
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify
    session.verify = info["ca_file"]
    session.mount("https://login.salesforce.com", LoginHostAdapter(info["login_url"]))
    with Stopwatch() as create:
        sf: Any = Salesforce(  # Any: its sObject attributes are made up on access
            username=info["username"],
            password=info["password"],
            security_token=info["security_token"],
            session=session,
            version=info["api_version"],
        )
        ids = [
            sf.Account.create({"Ext__c": f"L-{i}", "Name": f"Client {i}", "BillingCity": "Leeds"})["id"]
            for i in range(n)
        ]
    with Stopwatch() as update:
        for record_id in ids:
            sf.Account.update(record_id, {"BillingCity": "York"})
    return {"create_seconds": create.seconds, "update_seconds": update.seconds}


def write_accounts_csv(path: Path, n: int, city: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["Ext", "Name", "City"])
        writer.writerows([f"S-{i}", f"Client {i}", city] for i in range(n))


def syncd_project(root: Path, info: dict[str, Any]) -> Path:
    """A files -> Salesforce project: the CSV a user keeps, upserted on an external id, defaults elsewhere."""
    (root / "mappings").mkdir(parents=True, exist_ok=True)
    crm = {"kind": "salesforce", "objects": ["Account"]}
    crm |= {k: info[k] for k in ("login_url", "username", "password", "security_token", "ca_file")}
    src = {"kind": "files", "path": "src", "keys": {"Accounts": "Ext"}}
    (root / "syncd.yaml").write_text(
        f"version: 1\njournal: syncd.db\nconnections:\n  src: {json.dumps(src)}\n  crm: {json.dumps(crm)}\n",
        encoding="utf-8",
    )
    (root / "mappings" / "accounts.yaml").write_text(
        "version: 1\nname: accounts\nsource: src.Accounts\ntarget: crm.Account\n"
        "match: {source: Ext, target: Ext__c}\n"
        "fields: {Ext__c: Ext, Name: Name, BillingCity: City}\n",
        encoding="utf-8",
    )
    return root / "syncd.yaml"


def syncd_pass(config: str) -> dict[str, Any]:
    """In a child: one pass of the mapping, as `syncd sync accounts` runs it."""
    project = load_project(Path(config))
    with Stopwatch() as sw:
        journal = Journal(project.journal_path)
        try:
            result = run_pass(project, journal, "accounts")
        finally:
            journal.close()
    return {"seconds": sw.seconds, "outcome": result.outcome, "counts": dict(result.counts)}


def salesforce(results: Results, n: int, latency_ms: int) -> None:
    org = SalesforceSandbox(seed=SEED).start()
    try:
        org.knobs.latency_s = latency_ms / 1000
        info = org.info()
        org.knobs.reset_counts()
        loop = in_child(simple_salesforce_loop, info, n)
        loop_calls = dict(org.knobs.calls)
        create_calls = {k: v for k, v in loop_calls.items() if k != "sobject_update"}
        update_calls = {k: v for k, v in loop_calls.items() if k == "sobject_update"}
        results.add(
            figure(
                "simple-salesforce loop: create",
                n,
                latency_ms,
                loop["create_seconds"],
                create_calls,
                loop["rss_mb"],
                "Account.create per record; the login counted here",
            )
        )
        results.add(
            figure(
                "simple-salesforce loop: update",
                n,
                latency_ms,
                loop["update_seconds"],
                update_calls,
                loop["rss_mb"],
                "Account.update per record",
            )
        )
        with tempfile.TemporaryDirectory(prefix="syncd-bench-baseline-") as tmp:
            root = Path(tmp)
            config = syncd_project(root, info)
            runs = {}
            for phase, city in (("create", "Leeds"), ("update", "York")):
                write_accounts_csv(root / "src" / "Accounts.csv", n, city)
                org.knobs.reset_counts()
                out = in_child(syncd_pass, str(config))
                calls = dict(org.knobs.calls)
                counts = {k: v for k, v in out["counts"].items() if v}
                results.add(
                    figure(
                        f"syncd files -> Salesforce pass: {phase}",
                        n,
                        latency_ms,
                        out["seconds"],
                        calls,
                        out["rss_mb"],
                        f"{out['outcome']}: {counts}",
                    )
                )
                runs[phase] = (out["seconds"], sum(calls.values()))
        for phase, (loop_seconds, loop_total) in (
            ("create", (loop["create_seconds"], sum(create_calls.values()))),
            ("update", (loop["update_seconds"], sum(update_calls.values()))),
        ):
            ratios(results, f"Salesforce {phase}", n, latency_ms, (loop_seconds, loop_total), runs[phase])
    finally:
        org.stop()


# --- 4. Google Sheets: gspread update_cell loop vs the connector's write ----------------------------


def gspread_loop(info: dict[str, Any], spreadsheet: str, rows: list[int]) -> dict[str, Any]:
    """In a child: the script a user writes, one update_cell per changed cell (rows are 1-based)."""
    session = sandbox_session(info["base_url"], Path(info["ca_file"]), info["token"])
    with Stopwatch() as sw:
        client = gspread.Client(auth=None, session=session)  # type: ignore[arg-type]  # sandbox: no auth
        worksheet = client.open_by_key(spreadsheet).worksheet("Clients")
        for row in rows:
            worksheet.update_cell(row, CITY + 1, "York")
    return {"seconds": sw.seconds}


def connector_write(info: dict[str, Any], spreadsheet: str, keys: list[str]) -> dict[str, Any]:
    """In a child: the same changes as one write() of syncd's Sheets connector, as a pass hands them over."""
    settings = SheetsSettings(
        spreadsheet=spreadsheet,
        service_account_file=Path(info["service_account_file"]),
        endpoint=info["base_url"],
        ca_file=Path(info["ca_file"]),
        keys={"Clients": "Id"},
    )
    with Stopwatch() as sw:
        conn = SheetsConnector("roster", settings, Path("."))
        written = conn.write("Clients", [WriteOp(Op.UPDATE, {"City": "York"}, key=key) for key in keys])
        conn.close()
    return {"seconds": sw.seconds, "failed": sum(1 for r in written if not r.ok)}


def sheets(results: Results, n: int, latency_ms: int) -> None:
    """N changed cells in a sheet of N rows (every row's City), both ways, each on a fresh copy."""
    server = SheetsSandbox().start()
    try:
        server.quotas.read_per_minute = server.quotas.write_per_minute = None
        server.knobs.latency_s = latency_ms / 1000
        info = server.info()
        data = [SHEET_HEADER] + [
            [f"C-{i}", f"Client {i}", f"c{i}@example.com", "Leeds", "A", ""] for i in range(n)
        ]

        server.knobs.reset_counts()
        loop = in_child(
            gspread_loop, info, server.create_spreadsheet("loop", {"Clients": data}), list(range(2, n + 2))
        )
        loop_calls = dict(server.knobs.calls)
        results.add(
            figure(
                "gspread loop: update_cell",
                n,
                latency_ms,
                loop["seconds"],
                loop_calls,
                loop["rss_mb"],
                "one values.update per cell, USER_ENTERED",
            )
        )
        results.add(quota_figure("gspread loop", n, latency_ms, loop_calls))

        server.knobs.reset_counts()
        keys = [f"C-{i}" for i in range(n)]
        out = in_child(connector_write, info, server.create_spreadsheet("syncd", {"Clients": data}), keys)
        calls = dict(server.knobs.calls)
        note = "the Sheets connector's write(), one batchUpdate" + (
            f"; {out['failed']} failed" if out["failed"] else ""
        )
        results.add(
            figure("syncd Sheets connector: write", n, latency_ms, out["seconds"], calls, out["rss_mb"], note)
        )
        results.add(quota_figure("syncd Sheets connector", n, latency_ms, calls))
        ratios(
            results,
            "Sheets update",
            n,
            latency_ms,
            (loop["seconds"], sum(loop_calls.values())),
            (out["seconds"], sum(calls.values())),
        )
    finally:
        server.stop()


def quota_figure(who: str, n: int, latency_ms: int, calls: dict[str, int]) -> Figure:
    """Minutes Google's per-user quotas would stretch these calls over (the binding one of reads and writes)."""
    reads = sum(v for k, v in calls.items() if k in SHEETS_READS)
    writes = sum(v for k, v in calls.items() if k not in SHEETS_READS and not k.startswith("drive"))
    minutes = max(reads, writes) / GOOGLE_PER_MINUTE
    return Figure(
        BENCH,
        f"{who}: time at Google's quota",
        n,
        latency_ms,
        value=minutes,
        unit="min",
        notes=f"{writes} writes, {reads} reads at {GOOGLE_PER_MINUTE}/min/user each (NOTES.md)",
    )


# --- figures ---------------------------------------------------------------------------------------


def figure(
    case: str, n: int, latency_ms: int, seconds: float, calls: dict[str, int], rss: float, notes: str
) -> Figure:
    return Figure(
        BENCH,
        case,
        n,
        latency_ms,
        seconds=seconds,
        per_second=n / seconds if seconds else None,
        calls=dict(sorted(calls.items())),
        rss_mb=rss,
        notes=notes,
    )


def ratios(
    results: Results, what: str, n: int, latency_ms: int, loop: tuple[float, int], syncd: tuple[float, int]
) -> None:
    """How many times the loop's calls and seconds syncd's are (loop / syncd)."""
    (loop_s, loop_calls), (syncd_s, syncd_calls) = loop, syncd
    results.add(
        Figure(
            BENCH,
            f"{what}: calls, loop / syncd",
            n,
            latency_ms,
            value=ratio(loop_calls, syncd_calls),
            unit="x",
            notes=f"{loop_calls} vs {syncd_calls} calls",
        )
    )
    results.add(
        Figure(
            BENCH,
            f"{what}: seconds, loop / syncd",
            n,
            latency_ms,
            value=ratio(loop_s, syncd_s),
            unit="x",
            notes=f"{loop_s:.2f} s vs {syncd_s:.2f} s",
        )
    )


def ratio(a: float, b: float) -> float:
    return a / b if b else math.inf


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes", default="1k", help="records (changed cells) per run, e.g. 1k,10k (default 1k)"
    )
    parser.add_argument(
        "--latencies",
        default=f"0,{REALISTIC_LATENCY_MS}",
        help=f"stand-in latencies in ms, comma-separated (default 0,{REALISTIC_LATENCY_MS})",
    )
    parser.add_argument("--only", choices=("salesforce", "sheets"), help="run one of the two comparisons")
    parser.add_argument("--quick", action="store_true", help="100 records instead of --sizes")
    args = parser.parse_args()
    counts = [100] if args.quick else sizes(args.sizes)
    latencies = [int(x) for x in args.latencies.split(",")]
    jobs: list[Callable[[Results, int, int], None]] = []
    if args.only in (None, "salesforce"):
        jobs.append(salesforce)
    if args.only in (None, "sheets"):
        jobs.append(sheets)
    results = Results(BENCH)
    header()
    for job in jobs:
        for n in counts:
            for latency in latencies:
                job(results, n, latency)
    results.write()


if __name__ == "__main__":
    main()
