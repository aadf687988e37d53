"""Engine throughput on CSV files: a first pass that creates everything, a pass with nothing to do,
and a pass where 1% of the source changed. Prints figures; asserts nothing (machines here are shared).

    .venv/bin/python benchmarks/bench_engine.py [--records 20000] [--two-way]
"""

from __future__ import annotations

import argparse
import csv
import resource
import tempfile
import time
from pathlib import Path

from syncd.engine import run_pass
from syncd.journal import Journal
from syncd.project import load_project

CONFIG = """\
version: 1
journal: syncd.db
mappings: ["mappings/*.yaml"]
connections:
  crm: {kind: files, path: crm, keys: {Account: AccountNumber}, batch_size: 2000}
  roster: {kind: files, path: roster, keys: {Clients: "Account No"}, batch_size: 2000}
"""

MAPPING = """\
version: 1
name: clients
source: crm.Account
target: roster.Clients
direction: %s
match: {source: AccountNumber, target: "Account No"}
fields:
  "Account No": AccountNumber
  "Client": Name
  "Email": {from: Email__c, transform: [strip, lower]}
  "Tier": {from: Tier__c, map: {Gold: A, Silver: B, Bronze: C}}
  "Owner": {template: "{{ Owner }} <owner@example.com>", readonly: true}
  "Region": {value: EMEA}
batch_size: 500
"""


def write_accounts(path: Path, n: int, changed_every: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["AccountNumber", "Name", "Email__c", "Tier__c", "Owner"])
        for i in range(n):
            name = f"Client {i}" + (" Ltd" if changed_every and i % changed_every == 0 else "")
            w.writerow(
                [f"ACC-{i:07}", name, f" Info{i}@Example.com ", ("Gold", "Silver", "Bronze")[i % 3], "Dana"]
            )


def timed_pass(root: Path, label: str, n: int) -> None:
    project = load_project(root / "syncd.yaml")
    journal = Journal(project.journal_path)
    start = time.perf_counter()
    result = run_pass(project, journal, "clients")
    seconds = time.perf_counter() - start
    journal.close()
    counts = {k: v for k, v in result.counts.items() if v}
    print(f"{label:<28} {seconds:7.2f} s  {n / seconds:9.0f} source records/s  {counts}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--two-way", action="store_true")
    args = parser.parse_args()
    n = args.records
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "syncd.yaml").write_text(CONFIG)
        (root / "mappings").mkdir()
        (root / "mappings" / "clients.yaml").write_text(MAPPING % ("two-way" if args.two_way else "one-way"))
        (root / "roster").mkdir()
        write_accounts(root / "crm" / "Account.csv", n)
        print(f"{n} records, {'two' if args.two_way else 'one'}-way, CSV -> CSV, mapping batch 500")
        timed_pass(root, "first pass (all creates)", n)
        timed_pass(root, "second pass (nothing new)", n)
        write_accounts(root / "crm" / "Account.csv", n, changed_every=100)
        timed_pass(root, "1% of the source changed", n)
        timed_pass(root, "echo pass", n)
        print(f"journal size: {(root / 'syncd.db').stat().st_size / 1e6:.1f} MB")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
