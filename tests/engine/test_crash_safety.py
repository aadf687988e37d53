"""A real `syncd` process killed with SIGKILL at each step of a pass, then run again.

The fault point is chosen with SYNCD_FAULT_POINT (and SYNCD_FAULT_AFTER for the how-many-th time it
is reached), so each test kills the process at an exact place: the re-run must create no duplicate
and lose nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter

import pytest

from tests.engine.conftest import CLIENTS, Company, account

pytestmark = pytest.mark.slow


def run_syncd(
    company: Company, *args: str, fault: str | None = None, after: int = 1
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    if fault:
        env.update(SYNCD_FAULT_POINT=fault, SYNCD_FAULT_AFTER=str(after))
    return subprocess.run(
        [sys.executable, "-m", "syncd", "--config", str(company.root / "syncd.yaml"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=company.root,
    )


def forty_clients(company: Company) -> None:
    company.setup([account(f"ACC-{n:03}", f"Client {n}") for n in range(40)])
    text = CLIENTS % {"conflict": "source-wins", "deletes": "ignore"}
    company.write_mappings(clients=text.replace("schedule: 5m", "schedule: 5m\nbatch_size: 10"))


@pytest.mark.parametrize("point", ["after-read", "after-outbox", "after-write", "during-commit"])
def test_killed_pass_rerun_creates_no_duplicate_and_loses_nothing(company: Company, point: str) -> None:
    forty_clients(company)
    killed = run_syncd(company, "sync", "clients", fault=point, after=2)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    rerun = run_syncd(company, "sync", "clients")
    assert rerun.returncode == 0, rerun.stderr
    keys = Counter(r["Account No"] for r in company.rows("roster/Clients.csv"))
    assert keys == Counter({f"ACC-{n:03}": 1 for n in range(40)})
    assert company.row("roster/Clients.csv", "Account No", "ACC-017")["Client"] == "Client 17"
    with company.journal() as j:
        assert j.count_links("clients") == 40
        assert j.pending_outbox("clients") == []
        assert j.dead_letters("clients") == []


def test_kill_between_remote_write_and_commit_of_an_update_is_repeated_once(company: Company) -> None:
    forty_clients(company)
    assert run_syncd(company, "sync", "clients").returncode == 0
    company.edit("crm/Account.csv", "AccountNumber", "ACC-005", Name="Client 5 Ltd")
    killed = run_syncd(company, "sync", "clients", fault="after-write")
    assert killed.returncode == -signal.SIGKILL
    rerun = run_syncd(company, "--json", "sync", "clients")
    assert rerun.returncode == 0, rerun.stderr
    assert company.row("roster/Clients.csv", "Account No", "ACC-005")["Client"] == "Client 5 Ltd"
    assert len(company.rows("roster/Clients.csv")) == 40
    assert run_syncd(company, "--json", "sync", "clients").stdout.count('"updated"') == 0
