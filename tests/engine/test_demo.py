"""`syncd demo` runs on a fresh install against the sandboxes, and its summary is true to its journal."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path
from typing import Any

import pytest

from syncd.cli import main
from syncd.demo_company import SHIPPED_MAPPINGS
from syncd.journal import Journal

COUNTED = ("read", "created", "updated", "skipped", "failed", "conflicts")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """One `syncd --json demo` run shared by the tests that read its summary."""
    directory = tmp_path_factory.mktemp("demo") / "company"
    out = StringIO()
    with redirect_stdout(out):
        assert main(["--json", "demo", "--dir", str(directory)]) == 0
    return json.loads(out.getvalue()), directory


def test_every_pass_summary_matches_the_runs_in_the_journal(demo: tuple[dict[str, Any], Path]) -> None:
    summary, directory = demo
    with Journal(directory / "syncd.db") as journal:
        runs = journal.conn.execute(f"SELECT mapping, {', '.join(COUNTED)} FROM runs ORDER BY id").fetchall()
    printed = [
        (p["mapping"], *(p["counts"].get(c, 0) for c in COUNTED))
        for name in ("first", "second", "third")
        for p in summary["passes"][name]
    ]
    assert [tuple(r) for r in runs] == printed


def test_links_and_dead_letters_match_the_journal(demo: tuple[dict[str, Any], Path]) -> None:
    summary, directory = demo
    with Journal(directory / "syncd.db") as journal:
        assert summary["links"] == {name: journal.count_links(name) for name in SHIPPED_MAPPINGS}
        letters = journal.dead_letters()
    assert [(d["mapping"], d["key"], d["category"]) for d in summary["dead_letters"]] == [
        (d.mapping, d.record_key, d.category) for d in letters
    ]


def test_the_day_carries_every_workflow_and_settles_one_conflict(demo: tuple[dict[str, Any], Path]) -> None:
    summary, _ = demo
    totals = summary["totals"]
    assert summary["links"]["orders"] == 300 and totals["clients"]["conflicts"] == 1
    assert summary["conflict"] == {
        "client": "ACC-1006",
        "salesforce": "Litware Pharma Ltd",
        "sheet": "Litware Pharma Ltd",
    }
    second = {p["mapping"]: p["counts"] for p in summary["passes"]["second"]}
    assert second["low_stock"]["created"] == 2 and second["order_confirmations"]["created"] == 2
    assert second["helpdesk_log"]["updated"] == 3  # three cases closed in Salesforce
    assert {d["category"] for d in summary["dead_letters"]} == {"unresolved-reference"}
    assert summary["seconds"] < 120


def test_the_third_pass_has_nothing_left_to_write(demo: tuple[dict[str, Any], Path]) -> None:
    summary, _ = demo
    assert all(
        p["counts"].get("created", 0) == 0 and p["counts"].get("updated", 0) == 0
        for p in summary["passes"]["third"]
    )


def test_the_demo_wants_an_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    assert main(["demo", "--dir", str(tmp_path)]) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def wait_until_healthy(url: str, demo: subprocess.Popen[str]) -> None:
    """The daemon starts in its own process after the demo prints its address: poll /healthz."""
    for _ in range(300):
        assert demo.poll() is None, "the demo ended instead of keeping the daemon running"
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} never answered")


def scrape_until(url: str, wanted: str, demo: subprocess.Popen[str]) -> str:
    for _ in range(300):
        assert demo.poll() is None, "the demo ended instead of keeping the daemon running"
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                text = str(answer.read().decode())
        except OSError:
            text = ""
        if wanted in text:
            return text
        time.sleep(0.2)
    raise AssertionError(f"{wanted!r} never appeared in {url}")


def test_keep_running_serves_metrics_until_sigterm(tmp_path: Path) -> None:
    log = (tmp_path / "stderr.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "syncd", "demo", "--dir", str(tmp_path / "company"), "--keep-running"],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert proc.stdout is not None
    try:
        text = ""
        for line in proc.stdout:
            text += line
            if "Still running" in line:
                break
        assert "What needs a person" in text and "syncd --config" in text and "report" in text
        url = re.findall(r"http://127\.0\.0\.1:\d+/metrics", text)[-1]
        wait_until_healthy(url.replace("/metrics", "/healthz"), proc)
        text = scrape_until(
            url, "syncd_kpi_low_stock_items 2.0", proc
        )  # the KPIs, refreshed in the background
        promtool = shutil.which("promtool")
        if promtool:
            checked = subprocess.run(
                [promtool, "check", "metrics"], input=text, capture_output=True, text=True
            )
            assert checked.returncode == 0 and not checked.stdout.strip(), checked.stdout + checked.stderr
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, (tmp_path / "stderr.log").read_text()
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}\n--- demo and daemon log:\n{(tmp_path / 'stderr.log').read_text()[-3000:]}"
        ) from None
    finally:
        log.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
