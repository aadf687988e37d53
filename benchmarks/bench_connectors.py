"""Connector throughput and API calls against the local stand-ins (HTTPS on loopback).

Prints seconds and the number of API calls by kind for the operations a pass makes; asserts
nothing (these machines are shared and noisy). The call counts are the figures that matter for
real quotas: they are what Salesforce's daily limit and Google's per-minute quotas charge.

    .venv/bin/python benchmarks/bench_connectors.py [--records 5000] [--rows 10000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from connectors.salesforce import SalesforceConnector, SalesforceSettings
from connectors.sheets import SheetsConnector, SheetsSettings
from syncd.records import Op, WriteOp
from syncd.sandbox.knobs import Knobs
from syncd.sandbox.salesforce import SalesforceSandbox
from syncd.sandbox.sheets import SheetsSandbox

SEED = {"objects": {"Account": {"fields": {"Ext__c": {"type": "string", "length": 40, "externalId": True}}}}}


def measure(label: str, knobs: Knobs, action: Callable[[], Any]) -> Any:
    knobs.reset_counts()
    start = time.perf_counter()
    result = action()
    seconds = time.perf_counter() - start
    calls = dict(sorted(knobs.calls.items()))
    print(f"  {label:<44} {seconds:7.2f} s   calls: {calls}")
    return result


def salesforce(n: int) -> None:
    print(f"Salesforce stand-in, {n} Accounts")
    with tempfile.TemporaryDirectory() as tmp:
        org = SalesforceSandbox(seed=SEED).start()
        try:
            info = org.info()
            settings = SalesforceSettings(
                login_url=info["login_url"],
                username=info["username"],
                password=info["password"],
                security_token=info["security_token"],
                ca_file=info["ca_file"],
                objects=("Account",),
                bulk_threshold=10**9,
                bulk_poll_seconds=0.05,
            )
            conn = SalesforceConnector("crm", settings, Path(tmp))
            ops = [
                WriteOp(Op.UPSERT, {"Ext__c": f"E-{i}", "Name": f"Client {i}"}, match=("Ext__c", f"E-{i}"))
                for i in range(n)
            ]
            measure("upsert (sObject Collections, 200 a call)", org.knobs, lambda: conn.write("Account", ops))
            measure("repeat the same upserts (idempotent)", org.knobs, lambda: conn.write("Account", ops))
            batches = measure(
                "read everything (queryAll, 2,000 a page)",
                org.knobs,
                lambda: list(conn.read("Account", None)),
            )
            cursor = batches[-1].cursor
            measure(
                "read again after the cursor (nothing new)",
                org.knobs,
                lambda: list(conn.read("Account", cursor)),
            )
            bulk = SalesforceConnector("crm", settings.model_copy(update={"bulk_threshold": 1000}), Path(tmp))
            updates = [
                WriteOp(Op.UPSERT, {"Ext__c": f"E-{i}", "Name": f"Client {i} v2"}, match=("Ext__c", f"E-{i}"))
                for i in range(n)
            ]
            measure("same upserts through Bulk API 2.0", org.knobs, lambda: bulk.write("Account", updates))
            conn.close()
            bulk.close()
        finally:
            org.stop()


def sheets(rows: int) -> None:
    print(f"Sheets stand-in, {rows} rows x 6 columns")
    server = SheetsSandbox().start()
    try:
        server.quotas.read_per_minute = server.quotas.write_per_minute = None
        header = ["Id", "Name", "Email", "City", "Tier", "Notes"]
        data = [header] + [
            [f"C-{i}", f"Client {i}", f"c{i}@example.com", "Leeds", "A", ""] for i in range(rows)
        ]
        key = server.create_spreadsheet("bench", {"Clients": data})
        info = server.info()
        settings = SheetsSettings(
            spreadsheet=key,
            service_account_file=Path(info["service_account_file"]),
            endpoint=info["base_url"],
            ca_file=Path(info["ca_file"]),
            keys={"Clients": "Id"},
        )
        conn = SheetsConnector("roster", settings, Path("."))
        batches = measure("read everything", server.knobs, lambda: list(conn.read("Clients", None)))
        cursor = batches[-1].cursor
        measure("read again (nothing changed)", server.knobs, lambda: list(conn.read("Clients", cursor)))
        updates = [
            WriteOp(Op.UPDATE, {"City": "York"}, key=f"C-{i}") for i in range(0, rows, max(rows // 1000, 1))
        ]
        measure(
            f"update {len(updates)} rows spread over the sheet",
            server.knobs,
            lambda: conn.write("Clients", updates),
        )
        creates = [
            WriteOp(Op.CREATE, {"Id": f"N-{i}", "Name": f"New {i}"}, match=("Id", f"N-{i}"))
            for i in range(1000)
        ]
        measure("append 1000 new rows", server.knobs, lambda: conn.write("Clients", creates))
        conn.close()
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--rows", type=int, default=10000)
    args = parser.parse_args()
    salesforce(args.records)
    sheets(args.rows)


if __name__ == "__main__":
    main()
