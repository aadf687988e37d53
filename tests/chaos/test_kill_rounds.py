"""A real `syncd` killed with SIGKILL round after round, for a source in each system; nothing lost or doubled.

Each round the source grows by a dozen records and (where records can change) five older ones get a
new value; then syncd is killed either at a named fault point of the engine (after the read, after
the outbox write, after the remote write, inside the journal commit — on the 1st to 3rd time it gets
there) or at a random moment of a running `syncd run` daemon. After the last round two clean passes
run, and the target must hold every record exactly once with its final value, the journal must have
no pending outbox and no dead letter, and `syncd status` must be clean.
"""

from __future__ import annotations

import json
import math
import random
import signal
import time
from pathlib import Path

import pytest

from syncd.journal import Journal
from syncd.sandbox.salesforce import SalesforceSandbox
from syncd.sandbox.sheets import SheetsSandbox
from tests.mail.dovecot import Account

from .conftest import FAULT_POINTS, KILLS, Syncd
from .figures import record_figures
from .scenarios import (
    Expected,
    FilesToSalesforce,
    ImapToFiles,
    SalesforceToFiles,
    Scenario,
    SheetsToFiles,
    key,
    write_project,
)

pytestmark = pytest.mark.slow

SOURCES = 4
PER_ROUND = 12


def kill_rounds(root: Path, scenario: Scenario, seed: int) -> None:
    """Grow, change and kill until this source's share of the kill budget is spent; then check the end."""
    write_project(root, scenario)
    syncd = Syncd(root, scenario.env())
    rng = random.Random(seed)
    wanted = math.ceil(KILLS / SOURCES)
    expected = Expected()
    kills = {"point": 0, "random": 0}
    rounds = total = 0
    while sum(kills.values()) < wanted and rounds < 4 * wanted:
        rounds += 1
        value = f"v{rounds}"
        fresh = range(total, total + PER_ROUND)
        scenario.add(fresh, value)
        expected.values.update({key(n): value for n in fresh})
        if scenario.mutable and total:
            older = rng.sample(range(total), min(5, total))
            scenario.change(older, value)
            expected.values.update({key(n): value for n in older})
        total += PER_ROUND
        if rounds % 2:
            point = FAULT_POINTS[(kills["point"] + seed) % len(FAULT_POINTS)]
            done = syncd.run("sync", fault=point, after=rng.randint(1, 3))
            assert done.returncode in (-signal.SIGKILL, 0), done.stderr
            kills["point"] += done.returncode == -signal.SIGKILL
        else:
            daemon = syncd.start("run")
            time.sleep(rng.uniform(0.6, 2.5))
            daemon.kill()
            daemon.wait(timeout=30)
            kills["random"] += 1
    for _ in range(2):
        final = syncd.run("sync")
        assert final.returncode == 0, final.stderr
    duplicates, problems = expected.check(scenario.target())
    status = syncd.run("--json", "status")
    with Journal(root / "syncd.db") as journal:
        pending, dead = journal.pending_outbox("seq"), journal.dead_letters("seq")
    record_figures(
        f"kill rounds: {scenario.name}",
        kills=sum(kills.values()),
        at_fault_points=kills["point"],
        at_random_moments=kills["random"],
        rounds=rounds,
        records=len(expected.values),
        duplicates_ever_created=duplicates,
        lost_or_wrong=len(problems),
    )
    assert problems == []
    assert duplicates == 0
    assert (pending, dead) == ([], [])
    assert status.returncode == 0, status.stdout + status.stderr
    assert json.loads(status.stdout)


def test_files_source_into_salesforce_survives_kills(tmp_path: Path, org: SalesforceSandbox) -> None:
    kill_rounds(tmp_path, FilesToSalesforce(tmp_path, org), seed=1)


def test_salesforce_source_survives_kills(tmp_path: Path, org: SalesforceSandbox) -> None:
    kill_rounds(tmp_path, SalesforceToFiles(tmp_path, org), seed=2)


def test_sheets_source_survives_kills(tmp_path: Path, sheets_server: SheetsSandbox) -> None:
    kill_rounds(tmp_path, SheetsToFiles(tmp_path, sheets_server), seed=3)


def test_imap_source_survives_kills(tmp_path: Path, mailbox: Account) -> None:
    kill_rounds(tmp_path, ImapToFiles(tmp_path, mailbox), seed=4)
