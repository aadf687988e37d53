"""A whole pass with one call in five failing (429, 5xx, row locks, dropped connections, timeouts): nothing lost.

A timeout is a call the stand-in stalls beyond the client's timeout and then carries out, as a slow
server does: the client retries a write that already happened, so idempotency is what is tested.

Retries with back-off carry the pass through; what it wrote it wrote once, and a following clean
pass finds nothing left to do: every record exactly once with its value.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.sandbox.knobs import FaultPlan
from syncd.sandbox.salesforce import SalesforceSandbox
from syncd.sandbox.sheets import SheetsSandbox
from tests.chaos.figures import record_figures
from tests.chaos.scenarios import (
    Expected,
    FilesToSalesforce,
    SalesforceToFiles,
    Scenario,
    SheetsToFiles,
    key,
)

from .conftest import one_pass

RECORDS = 120
SF_FAULTS = ["429", "500", "503", "drop", "timeout", "UNABLE_TO_LOCK_ROW"]
SHEETS_FAULTS = ["429", "500", "503", "drop", "timeout"]
STALL = 1.0  # a "timeout" call stalls this long (and then is carried out), beyond the client's timeout
SHORT: dict[str, object] = {"timeout_seconds": 0.5}  # the client gives up before the stall ends


def survive_a_flaky_pass(
    root: Path,
    scenario: Scenario,
    knobs_owner: SalesforceSandbox | SheetsSandbox,
    kinds: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scenario.add(range(RECORDS), "v1")
    expected = Expected({key(n): "v1" for n in range(RECORDS)})
    # One call in five fails, and the first two always do, so even a pass of few calls meets faults.
    knobs_owner.knobs.stall_seconds = STALL
    knobs_owner.knobs.set_faults(FaultPlan(rate=0.2, on_calls={1, 2}, kinds=kinds, seed=8))
    flaky = one_pass(root, scenario, monkeypatch)
    faults_served = knobs_owner.knobs.total_calls
    knobs_owner.knobs.clear_faults()
    after_flaky = Expected(dict(expected.values)).check(scenario.target())
    clean = one_pass(root, scenario, monkeypatch)
    duplicates, problems = expected.check(scenario.target())
    record_figures(
        f"20% faults: {scenario.name}",
        calls_in_flaky_pass=faults_served,
        flaky_outcome=flaky.outcome,
        flaky_message=flaky.message,
        flaky_created=flaky.counts["created"],
        flaky_failed=flaky.counts["failed"],
        missing_after_flaky=len(after_flaky[1]),
        clean_outcome=clean.outcome,
        duplicates=duplicates,
    )
    assert after_flaky[0] == 0, "the flaky pass created a record twice"
    assert flaky.outcome == "ok", flaky.message  # retries with back-off carried it through
    assert (duplicates, problems) == (0, [])
    assert clean.outcome == "ok", clean.message


def test_salesforce_target_with_one_call_in_five_failing_loses_nothing(
    tmp_path: Path, org: SalesforceSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    survive_a_flaky_pass(
        tmp_path, FilesToSalesforce(tmp_path, org, settings=SHORT), org, SF_FAULTS, monkeypatch
    )


def test_salesforce_source_with_one_call_in_five_failing_loses_nothing(
    tmp_path: Path, org: SalesforceSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    survive_a_flaky_pass(
        tmp_path, SalesforceToFiles(tmp_path, org, settings=SHORT), org, SF_FAULTS, monkeypatch
    )


def test_sheets_source_with_one_call_in_five_failing_loses_nothing(
    tmp_path: Path, sheets_server: SheetsSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = SheetsToFiles(tmp_path, sheets_server, settings=SHORT)
    survive_a_flaky_pass(tmp_path, scenario, sheets_server, SHEETS_FAULTS, monkeypatch)
