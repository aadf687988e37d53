"""`syncd demo` runs on a fresh install and its summary is true to the journal it leaves behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from syncd.cli import main
from syncd.journal import Journal


def test_demo_exits_0_and_its_summary_matches_the_journal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--json", "demo", "--dir", str(tmp_path / "demo")]) == 0
    summary = json.loads(capsys.readouterr().out)
    journal = Journal(tmp_path / "demo" / "syncd.db")
    try:
        assert summary["links"] == {
            "clients": journal.count_links("clients"),
            "orders": journal.count_links("orders"),
        }
        open_letters = journal.dead_letters()
        assert [(d["mapping"], d["key"]) for d in summary["dead_letters"]] == [
            (d.mapping, d.record_key) for d in open_letters
        ]
        runs = journal.conn.execute("SELECT mapping, created, updated FROM runs ORDER BY id").fetchall()
    finally:
        journal.close()
    first = {p["mapping"]: p["counts"] for p in summary["passes"]["first"]}
    assert first["clients"]["created"] == runs[0][1]
    assert all(
        p["counts"].get("created", 0) == 0 and p["counts"].get("updated", 0) == 0
        for p in summary["passes"]["third"]
    )
    assert summary["links"]["orders"] == 7


def test_demo_prints_where_to_look(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--dir", str(tmp_path / "demo")]) == 0
    text = capsys.readouterr().out
    assert "What needs a person" in text and "syncd --config" in text and "status" in text
