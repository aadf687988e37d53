"""The machine "loses power" mid-pass: the journal's files (db, -wal, -shm) as they were at that moment.

While a real `syncd sync` writes, the three files are copied again and again (each copy is what a disk
could hold after a power cut, the WAL possibly half-written). Each copy is then reopened the way a
restarted syncd would, against the target as the pass left it (remote systems keep what they got):
SQLite must accept it, and one more pass must leave every record exactly once with its value.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from syncd.journal import Journal

from .conftest import Syncd
from .figures import record_figures
from .scenarios import Expected, FilesToFiles, key, write_project

pytestmark = pytest.mark.slow

RECORDS = 600
REOPENED = 6
SUFFIXES = ("", "-wal", "-shm")


def snapshot(db: Path, into: Path) -> bool:
    """Copy the journal's files as they are now; False when the pass has not created them yet."""
    into.mkdir(parents=True)
    copied = False
    for suffix in SUFFIXES:
        try:
            shutil.copyfile(f"{db}{suffix}", into / f"syncd.db{suffix}")
            copied = True
        except FileNotFoundError:
            continue
    return copied


def test_journal_copied_mid_write_reopens_and_loses_nothing(tmp_path: Path) -> None:
    live = tmp_path / "live"
    live.mkdir()
    scenario = FilesToFiles(live)
    write_project(live, scenario)
    scenario.add(range(RECORDS), "v1")
    expected = Expected({key(n): "v1" for n in range(RECORDS)})
    syncd = Syncd(live, scenario.env())

    snapshots: list[Path] = []
    process = syncd.start("sync")
    while process.poll() is None:
        taken = tmp_path / "snapshots" / str(len(snapshots))
        if snapshot(live / "syncd.db", taken):
            snapshots.append(taken)
        else:
            shutil.rmtree(taken)
        time.sleep(0.01)
    assert process.wait() == 0, process.stderr.read() if process.stderr else ""
    assert len(snapshots) >= REOPENED, "the pass ended before enough mid-write copies were taken"

    picked = [snapshots[i * (len(snapshots) - 1) // (REOPENED - 1)] for i in range(REOPENED)]
    for number, taken in enumerate(picked):
        after = tmp_path / f"after-{number}"
        shutil.copytree(live, after, ignore=shutil.ignore_patterns("syncd.db*"))
        for suffix in SUFFIXES:
            if (taken / f"syncd.db{suffix}").exists():
                shutil.copyfile(taken / f"syncd.db{suffix}", after / f"syncd.db{suffix}")
        with sqlite3.connect(after / "syncd.db") as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        rerun = Syncd(after, {}).run("sync")
        assert rerun.returncode == 0, rerun.stderr
        duplicates, problems = expected.check(FilesToFiles(after).target())
        assert (duplicates, problems) == (0, [])
        with Journal(after / "syncd.db") as journal:
            assert journal.pending_outbox("seq") == []
            assert journal.count_links("seq") == RECORDS
    record_figures(
        "power loss: files->files", copies_taken=len(snapshots), copies_reopened=REOPENED, records=RECORDS
    )
