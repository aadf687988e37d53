"""The journal's own failures: a full disk and a damaged file.

A full disk is made two ways. With root (CI runs as root here) a 16 MB tmpfs holds the journal and a
filler file takes the rest of it, so SQLite meets a real ENOSPC. Without root the same condition is
simulated with SQLite's `PRAGMA max_page_count` on the journal's connection (SQLite then answers
SQLITE_FULL exactly as for a full disk). In both, the pass stops writing and says why, and once
space returns the next pass completes with nothing lost or doubled.

A damaged journal is never replaced silently: syncd stops with an error naming the file and the
README's recovery section, and the recovery that section describes works.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.engine import run_pass
from syncd.journal import Journal, JournalError
from syncd.project import load_project
from tests.chaos.conftest import Syncd
from tests.chaos.scenarios import Expected, FilesToFiles, key, write_project

RECORDS = 400
PATIENCE = 60.0


def project(root: Path, journal: Path | None = None, records: int = RECORDS) -> FilesToFiles:
    scenario = FilesToFiles(root)
    write_project(root, scenario)
    if journal is not None:
        text = (root / "syncd.yaml").read_text().replace("journal: syncd.db", f"journal: {journal}")
        (root / "syncd.yaml").write_text(text)
    scenario.add(range(records), "v" * 200)
    return scenario


def expected() -> Expected:
    return Expected({key(n): "v" * 200 for n in range(RECORDS)})


def said(text: str, output: str) -> bool:
    """`text` in `output` however the terminal wrapped it."""
    return "".join(text.split()) in "".join(output.split())


def wait_for(condition: object, what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.1)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MB tmpfs (needs root: mount; larger than the 4 MB a WAL grows to before SQLite checkpoints it); skipped elsewhere, where the max_page_count test stands in."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({made.stderr.strip()}); max_page_count test covers it")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_daemon_on_a_full_disk_stops_writing_reports_and_resumes_when_space_returns(
    tmp_path: Path, small_disk: Path
) -> None:
    root = tmp_path / "company"
    root.mkdir()
    scenario = project(root, journal=small_disk / "syncd.db", records=1)
    log = tmp_path / "daemon.log"
    syncd = Syncd(root, {})
    with log.open("wb") as out:
        daemon = subprocess.Popen(syncd.argv("run"), env=syncd.env, cwd=root, stdout=out, stderr=out)
    try:
        wait_for(lambda: len(scenario.target()) == 1, "the daemon's first pass")
        free = os.statvfs(small_disk)
        filler = small_disk / "filler"
        filler.write_bytes(b"\0" * (free.f_bavail * free.f_frsize - 32 * 1024))
        scenario.add(range(1, RECORDS), "v" * 200)
        wait_for(lambda: "disk holding the journal is full" in log.read_text(), "the daemon to report it")
        assert daemon.poll() is None, "the daemon stopped instead of waiting for space"
        filler.unlink()
        wait_for(lambda: expected().check(scenario.target()) == (0, []), "the daemon to catch up")
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=PATIENCE)
    with Journal(small_disk / "syncd.db") as journal:
        assert journal.pending_outbox("seq") == []
        assert journal.count_links("seq") == RECORDS
    assert "Traceback" not in log.read_text()


def test_full_journal_fails_the_pass_with_a_reason_and_the_next_pass_loses_nothing(
    tmp_path: Path,
) -> None:
    """The max_page_count stand-in for a full disk: runs without root, in this process."""
    scenario = project(tmp_path)
    loaded = load_project(tmp_path / "syncd.yaml")
    with Journal(loaded.journal_path) as journal:
        pages = journal.conn.execute("PRAGMA page_count").fetchone()[0]
        journal.conn.execute(f"PRAGMA max_page_count = {pages + 8}")
        try:  # the pass reports it in its result, or (when even that cannot be written) raises it
            result = run_pass(loaded, journal, "seq")
            assert result.outcome == "failed"
            reason = result.message
        except JournalError as exc:
            reason = str(exc)
        assert "disk holding the journal is full" in reason
        journal.conn.execute("PRAGMA max_page_count = 1073741823")
        again = run_pass(loaded, journal, "seq")
        assert again.outcome == "ok", again.message
        assert journal.pending_outbox("seq") == []
        assert journal.count_links("seq") == RECORDS
    assert expected().check(scenario.target()) == (0, [])


def test_a_journal_that_is_not_a_database_stops_syncd_with_the_file_named_and_is_kept(tmp_path: Path) -> None:
    project(tmp_path)
    damaged = tmp_path / "syncd.db"
    damaged.write_bytes(b"this was a journal once\n" * 200)
    before = damaged.read_bytes()
    for command in (["sync"], ["status"]):
        done = Syncd(tmp_path, {}).run(*command)
        assert done.returncode == 2, done.stderr
        assert said(str(damaged), done.stderr)
        assert said("Recovering a damaged journal", done.stderr)
        assert "Traceback" not in done.stderr
    assert damaged.read_bytes() == before, "the damaged journal was touched"
    assert not (tmp_path / "dst" / "Seq.csv").exists(), "syncd wrote with a journal it cannot read"


def corrupt_pages(db: Path) -> None:
    """Scribble over the pages after the first, as a bad disk block or a stray write would."""
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = db.stat().st_size
    with db.open("r+b") as fh:
        fh.seek(4096)
        fh.write(os.urandom(size - 4096))


def test_a_journal_with_damaged_pages_stops_syncd_with_the_file_named(tmp_path: Path) -> None:
    project(tmp_path)
    syncd = Syncd(tmp_path, {})
    assert syncd.run("sync").returncode == 0
    corrupt_pages(tmp_path / "syncd.db")
    before = (tmp_path / "syncd.db").read_bytes()
    done = syncd.run("sync")
    assert done.returncode == 2, done.stderr
    assert said(str(tmp_path / "syncd.db"), done.stderr)
    assert "Traceback" not in done.stderr
    assert (tmp_path / "syncd.db").read_bytes() == before


def test_documented_recovery_with_an_empty_journal_relinks_and_creates_nothing_twice(tmp_path: Path) -> None:
    scenario = project(tmp_path)
    syncd = Syncd(tmp_path, {})
    assert syncd.run("sync").returncode == 0
    corrupt_pages(tmp_path / "syncd.db")
    # README: keep the damaged file aside; if nothing can be recovered, start with an empty journal.
    aside = tmp_path / "damaged"
    aside.mkdir()
    for path in tmp_path.glob("syncd.db*"):
        shutil.move(path, aside / path.name)
    scenario.change([3], "changed")
    rerun = syncd.run("sync")
    assert rerun.returncode == 0, rerun.stderr
    want = expected()
    want.values[key(3)] = "changed"
    assert want.check(scenario.target()) == (0, [])
    with Journal(tmp_path / "syncd.db") as journal:
        assert journal.count_links("seq") == RECORDS


@pytest.mark.skipif(shutil.which("sqlite3") is None, reason="the sqlite3 command-line shell is not installed")
def test_documented_recovery_with_sqlite_recover_keeps_the_links(tmp_path: Path) -> None:
    scenario = project(tmp_path)
    syncd = Syncd(tmp_path, {})
    assert syncd.run("sync").returncode == 0
    with sqlite3.connect(tmp_path / "syncd.db") as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    # README: sqlite3 syncd.db ".recover" | sqlite3 recovered.db (".dump" where .recover is broken),
    # then point journal: at it.
    dump = subprocess.run(["sqlite3", "syncd.db", ".recover"], cwd=tmp_path, capture_output=True)
    if dump.returncode != 0:
        assert b"SQL logic error" in dump.stderr
        dump = subprocess.run(["sqlite3", "syncd.db", ".dump"], cwd=tmp_path, capture_output=True, check=True)
    subprocess.run(["sqlite3", "recovered.db"], cwd=tmp_path, input=dump.stdout, check=True)
    config = tmp_path / "syncd.yaml"
    config.write_text(config.read_text().replace("journal: syncd.db", "journal: recovered.db"))
    scenario.add(range(RECORDS, RECORDS + 5), "late")
    rerun = syncd.run("--json", "sync")
    assert rerun.returncode == 0, rerun.stderr
    want = expected()
    want.values.update({key(n): "late" for n in range(RECORDS, RECORDS + 5)})
    assert want.check(scenario.target()) == (0, [])
    with Journal(tmp_path / "recovered.db") as journal:
        assert journal.count_links("seq") == RECORDS + 5
