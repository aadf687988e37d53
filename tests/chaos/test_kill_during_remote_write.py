"""`syncd` killed while the remote write is in flight: the server carries it out after the client died.

This is the one moment no fault point inside syncd can reach: the request has left, the answer has
not come back. The stand-in (Salesforce, or Sheets) holds the write call (its "timeout" fault stalls
a call and then carries it out, as a slow server does); the test kills syncd with SIGKILL as soon as
the call has arrived, lets the server finish it, and runs syncd again: the records that write
created must be found, not created twice, and every record must be there once.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from syncd.journal import Journal
from syncd.sandbox.knobs import FaultPlan
from syncd.sandbox.salesforce import SalesforceSandbox
from syncd.sandbox.sheets import SheetsSandbox

from .conftest import Syncd
from .figures import record_figures
from .scenarios import Expected, FilesToSalesforce, FilesToSheets, key, write_project

pytestmark = pytest.mark.slow
RECORDS = 30
PATIENCE = 60.0


def wait_for(condition: object, what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)


def test_kill_while_the_remote_write_is_in_flight_creates_nothing_twice(
    tmp_path: Path, org: SalesforceSandbox
) -> None:
    scenario = FilesToSalesforce(tmp_path, org)
    write_project(tmp_path, scenario)
    scenario.add(range(RECORDS), "v1")
    expected = Expected({key(n): "v1" for n in range(RECORDS)})
    org.knobs.stall_seconds = 1.5
    org.knobs.set_faults(FaultPlan(rate=1.0, kinds=["timeout"], only={"composite_sobjects"}))
    org.knobs.reset_counts()
    syncd = Syncd(tmp_path, scenario.env())
    process = syncd.start("sync")
    wait_for(lambda: org.knobs.calls["composite_sobjects"] >= 1, "the first write to reach the server")
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=PATIENCE) == -signal.SIGKILL
    org.knobs.clear_faults()
    wait_for(lambda: len(scenario.target()) > 0, "the server to carry out the orphaned write")
    landed_after_kill = len(scenario.target())
    rerun = syncd.run("sync")
    assert rerun.returncode == 0, rerun.stderr
    duplicates, problems = expected.check(scenario.target())
    with Journal(tmp_path / "syncd.db") as journal:
        pending = journal.pending_outbox("seq")
    record_figures(
        "kill during the remote write: files->salesforce",
        written_by_the_orphaned_call=landed_after_kill,
        records=RECORDS,
        duplicates_ever_created=duplicates,
        lost_or_wrong=len(problems),
    )
    assert 0 < landed_after_kill < RECORDS
    assert (duplicates, problems, pending) == (0, [], [])


def test_kill_while_a_sheets_append_is_in_flight_creates_no_row_twice(
    tmp_path: Path, sheets_server: SheetsSandbox
) -> None:
    scenario = FilesToSheets(tmp_path, sheets_server)
    write_project(tmp_path, scenario)
    scenario.add(range(RECORDS), "v1")
    expected = Expected({key(n): "v1" for n in range(RECORDS)})
    knobs = sheets_server.knobs
    knobs.stall_seconds = 1.5
    writes = {"values.append", "values.batchUpdate", "spreadsheets.batchUpdate"}
    knobs.set_faults(FaultPlan(rate=1.0, kinds=["timeout"], only=writes))
    knobs.reset_counts()
    syncd = Syncd(tmp_path, scenario.env())
    process = syncd.start("sync")
    wait_for(lambda: sum(knobs.calls[k] for k in writes) >= 1, "the first write to reach the server")
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=PATIENCE) == -signal.SIGKILL
    knobs.clear_faults()
    wait_for(lambda: len(scenario.target()) > 0, "the server to carry out the orphaned write")
    landed_after_kill = len(scenario.target())
    rerun = syncd.run("sync")
    assert rerun.returncode == 0, rerun.stderr
    duplicates, problems = expected.check(scenario.target())
    record_figures(
        "kill during the remote write: files->sheets",
        written_by_the_orphaned_call=landed_after_kill,
        records=RECORDS,
        duplicates_ever_created=duplicates,
        lost_or_wrong=len(problems),
    )
    assert 0 < landed_after_kill <= RECORDS
    assert (duplicates, problems) == (0, [])
