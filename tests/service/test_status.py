"""`syncd status` reads the journal: it works while the daemon runs, and shows lag and pending writes."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable

from tests.service.conftest import Company, DaemonProcess, wait_for


def status(company: Company, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "syncd", "--config", str(company.config), *args, "status"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_status_json_works_while_the_daemon_runs(
    company: Company, start_daemon: Callable[..., DaemonProcess]
) -> None:
    daemon = start_daemon()
    wait_for("the first pass", lambda: company.finished_runs("people"))
    shown = status(company, "--json")
    assert shown.returncode == 0, shown.stderr
    (row,) = json.loads(shown.stdout)
    assert row["mapping"] == "people" and row["outcome"] == "ok" and row["created"] == 2
    assert row["pending"] == 0 and row["dead_letters"] == 0 and row["conflicts"] == 0
    assert daemon.proc.poll() is None


def test_status_lag_is_the_pass_end_minus_the_newest_source_change(company: Company) -> None:
    # Rows last edited 2026-11-01T09:00Z; the pass ends now, so the lag is at least a few weeks.
    subprocess.run(
        [sys.executable, "-m", "syncd", "--config", str(company.config), "sync"], check=True, timeout=60
    )
    (row,) = json.loads(status(company, "--json").stdout)
    run = company.runs("people")[-1]
    assert run["newest_change"].startswith("2026-11-01T09:00:00")
    assert row["lag_seconds"] > 0


def test_status_table_has_lag_and_pending_columns(company: Company) -> None:
    subprocess.run(
        [sys.executable, "-m", "syncd", "--config", str(company.config), "sync"], check=True, timeout=60
    )
    text = status(company).stdout
    assert "lag" in text and "pending" in text and "people" in text
