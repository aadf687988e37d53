"""Throughput, API economy, idle cost and memory of whole sync passes, per workflow and size.

For each workflow, size and stand-in latency it times, in fresh child processes (so peak RSS is
the pass's own):
1. the initial sync (every record created): records/s end to end, API calls by kind, peak RSS;
2. an idle pass on everything now linked, nothing changed, from cold (a new process: login,
   describe) and warm (the daemon's open connections): API calls, journal writes, wall time;
3. a pass after 1% of the source changed: API calls and time.
The `engine` workflow has no connector cost (map + plan + journal only) and is printed next to
the raw SQLite ceiling: one executemany upsert of the same rows in one transaction.

    .venv/bin/python benchmarks/bench_sync.py                      # 1k and 10k, latency 0 and 150 ms
    .venv/bin/python benchmarks/bench_sync.py --sizes 1k,10k,100k --latencies 0,150
    .venv/bin/python benchmarks/bench_sync.py --workflows files-to-files,engine --sizes 1k,10k,100k,1M

Writes benchmarks/results/sync.json (or --out). Asserts nothing: goals are printed beside figures.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from harness import REALISTIC_LATENCY_MS, Figure, Results, header, in_child, sizes
from workflows import (
    API_WORKFLOWS,
    WORKFLOWS,
    Stand,
    base_of,
    engine_alone,
    fresh_dir,
    run_passes,
    sqlite_ceiling,
)

OVERLAP_SECONDS = 5  # the Salesforce connector's default overlap_seconds

SIZE_LIMITS = dict.fromkeys(("sf-to-sheets", "sheets-to-sf"), 100_000)  # per base workflow
"""Largest size run per workflow: a 1M-row worksheet is past what people keep in Sheets (and its
10M-cell cap at 10 columns); 1M Salesforce writes cost 5,000 of a typical org's daily API calls."""


def per_thousand(calls: dict[str, int], kinds: tuple[str, ...], records: int) -> float:
    return 1000 * sum(v for k, v in calls.items() if k.split(".", 1)[1] in kinds) / max(records, 1)


SF_WRITES = (
    "composite_sobjects",
    "composite",
    "bulk2_ingest",
    "sobject",
    "sobject_create",
    "sobject_update",
    "sobject_upsert",
)
SF_READS = ("query", "bulk2_query")
SHEETS_READS = ("values.batchGet", "values.get")
SHEETS_WRITES = ("values.batchUpdate", "values.append", "batchUpdate", "values.update")


def economy(workflow: str, size: int, latency: int, calls: dict[str, int]) -> list[Figure]:
    """The per-1,000-record figures the goals are stated in, from one initial sync's calls."""
    out = []
    base = base_of(workflow)
    if base == "sheets-to-sf":
        bulk = calls.get("sf.bulk2_ingest", 0) > 0
        out.append(
            Figure(
                "sync",
                f"{workflow}: SF write calls per 1,000 written",
                size,
                latency,
                value=per_thousand(calls, SF_WRITES, size),
                goal="fewer than 5 (Bulk API 2.0)" if bulk else "<= 5 (sObject Collections)",
                met=per_thousand(calls, SF_WRITES, size) <= (4.99 if bulk else 5.0),
                calls={k: v for k, v in calls.items() if k.startswith("sf.")},
            )
        )
        sheet_reads = sum(v for k, v in calls.items() if k.split(".", 1)[1] in SHEETS_READS)
        out.append(
            Figure(
                "sync",
                f"{workflow}: Sheets reads in the pass",
                size,
                latency,
                value=sheet_reads,
                goal="1",
                met=sheet_reads == 1,
            )
        )
    if base == "sf-to-sheets":
        reads = per_thousand(calls, SF_READS, size)
        out.append(
            Figure(
                "sync",
                f"{workflow}: SF query calls per 1,000 read",
                size,
                latency,
                value=reads,
                goal="<= 1",
                met=reads <= 1,
            )
        )
        writes = sum(v for k, v in calls.items() if k.split(".", 1)[1] in SHEETS_WRITES)
        reads_sh = sum(v for k, v in calls.items() if k.split(".", 1)[1] in SHEETS_READS)
        out.append(
            Figure(
                "sync",
                f"{workflow}: Sheets reads / writes in the pass",
                size,
                latency,
                value=float(writes),
                unit=f"writes, {reads_sh} reads",
                goal="1 read, <= 2 writes",
                met=reads_sh <= 1 and writes <= 2,
            )
        )
    return out


def run_one(results: Results, workflow: str, size: int, latency: int, work: Path) -> None:
    root = fresh_dir(work, f"{workflow}-{size}-{latency}")
    if workflow == "engine":
        ceiling = in_child(sqlite_ceiling, str(root), size)
        out = in_child(engine_alone, str(root), size)
        rate = size / out["seconds"]
        results.add(
            Figure(
                "sync",
                "engine alone: first pass (map+plan+journal)",
                size,
                0,
                out["seconds"],
                rate,
                rss_mb=out["rss_mb"],
            )
        )
        results.add(
            Figure(
                "sync",
                "SQLite ceiling: executemany upsert, one tx",
                size,
                0,
                ceiling["seconds"],
                size / ceiling["seconds"],
                value=ceiling["seconds"] and out["seconds"] / ceiling["seconds"],
                unit="x engine/ceiling",
            )
        )
        return
    stand = Stand(workflow, size, latency, root)
    try:
        project = str(stand.project_dir())
        first = in_child(run_passes, project, 1)
        calls = stand.calls()
        p = first["passes"][0]
        results.add(
            Figure(
                "sync",
                f"{workflow}: initial sync",
                size,
                latency,
                p["seconds"],
                size / p["seconds"],
                calls,
                first["rss_mb"],
                notes=f"{p['outcome']} {p['counts']}" + (f" {p['message']}" if p["message"] else ""),
            )
        )
        for fig in economy(workflow, size, latency, calls):
            results.add(fig)
        # The idle passes run here, beside the stand-ins, so each pass's calls can be read apart.
        per_pass: list[dict[str, int]] = []

        def snapshot(index: int) -> None:
            if index:
                per_pass.append(stand.calls())
            stand.reset_counts()

        if base_of(workflow) == "sf-to-sheets":
            # Steady state: the daemon's next pass comes minutes later, when the read's overlap
            # window (5 s, for late commits) no longer covers the burst the initial sync read.
            time.sleep(OVERLAP_SECONDS + 1)
        idle = run_passes(project, 2, True, snapshot)
        per_pass.append(stand.calls())
        for label, q, idle_calls in zip(
            ("idle pass, cold (new process)", "idle pass, warm (daemon)"),
            idle["passes"],
            per_pass,
            strict=True,
        ):
            warm = label.endswith("(daemon)")
            writes = q["journal_writes"] or {}
            only_run = set(writes) <= {"insert runs", "update runs", "delete events"}
            streams = 1  # one-way: only the source is read
            results.add(
                Figure(
                    "sync",
                    f"{workflow}: {label}",
                    size,
                    latency,
                    q["seconds"],
                    calls=idle_calls,
                    value=float(sum(writes.values())),
                    unit="journal writes",
                    goal="<= 1 call/stream, run writes only, < 1 s" if warm else "",
                    met=(q["seconds"] < 1 and only_run and sum(idle_calls.values()) <= streams)
                    if warm
                    else None,
                    notes=", ".join(f"{k}: {v}" for k, v in sorted(writes.items())),
                )
            )
        results.add(changed_pass(stand, project, workflow, "1%", max(size // 100, 1), 1, latency))
        if workflow == "files-to-files":
            # The same 100 rows changed at every size: what grows here grows with the data, where
            # the 1% pass also grows with the change (its write batches fill up to 2,000 records).
            results.add(changed_pass(stand, project, workflow, "100 rows", 100, 2, latency))
    finally:
        stand.stop()


def changed_pass(
    stand: Stand, project: str, workflow: str, label: str, count: int, version: int, latency: int
) -> Figure:
    """Edit `count` source records, then time one pass in a fresh child: calls, seconds, peak RSS."""
    stand.edit(count, version=version)
    stand.reset_counts()
    changed = in_child(run_passes, project, 1)
    c = changed["passes"][0]
    return Figure(
        "sync",
        f"{workflow}: pass after {label} changed",
        stand.size,
        latency,
        c["seconds"],
        calls=stand.calls(),
        rss_mb=changed["rss_mb"],
        notes=f"{c['outcome']} {c['counts']}",
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workflows", default=",".join(WORKFLOWS))
    parser.add_argument("--sizes", default="1k,10k")
    parser.add_argument(
        "--latencies", default=f"0,{REALISTIC_LATENCY_MS}", help="stand-in latency per call, ms"
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    results = Results("sync")
    header()
    with tempfile.TemporaryDirectory(prefix="syncd-bench-") as tmp:
        for workflow in args.workflows.split(","):
            for size in sizes(args.sizes):
                if size > SIZE_LIMITS.get(base_of(workflow), 10**9):
                    continue
                latencies = (
                    [int(x) for x in args.latencies.split(",")] if base_of(workflow) in API_WORKFLOWS else [0]
                )
                for latency in latencies:
                    run_one(results, workflow, size, latency, Path(tmp))
        memory_flatness(results)
    results.write(args.out)


def memory_flatness(results: Results) -> None:
    """Peak RSS of the largest run over the 10k run's, per workflow: the goal is at most 1.5."""
    first = [
        f
        for f in results.figures
        if f.rss_mb
        and f.case.endswith(
            ("initial sync", "(map+plan+journal)", "pass after 1% changed", "100 rows changed")
        )
    ]
    for case in dict.fromkeys(f.case for f in first):
        runs = {f.size: f for f in first if f.case == case and f.latency_ms == 0}
        if 10_000 not in runs or max(runs) <= 10_000:
            continue
        big, small = runs[max(runs)], runs[10_000]
        assert big.rss_mb and small.rss_mb
        ratio = big.rss_mb / small.rss_mb
        results.add(
            Figure(
                "sync",
                f"{case.split(':')[0]}: peak RSS {max(runs):,} / 10,000 ({case.split(': ')[-1]})",
                max(runs),
                value=ratio,
                unit="x",
                goal="<= 1.5 (flat)",
                met=ratio <= 1.5,
                notes=f"{big.rss_mb:.0f} MB / {small.rss_mb:.0f} MB",
            )
        )


if __name__ == "__main__":
    main()
