"""The `syncd` command: exit codes, --json output, and the inspection commands, run in-process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from syncd.cli import main
from tests.engine.conftest import Company, account


def setup_with_one_bad_client(company: Company) -> None:
    company.setup([account("ACC-1", "Northwind"), account("ACC-2", "Litware", Tier__c="Platinum")])


def test_sync_exits_0_when_everything_synced(company: Company) -> None:
    company.setup([account("ACC-1", "Northwind")])
    assert main(["sync", "clients"]) == 0


def test_sync_exits_1_when_failures_were_recorded(company: Company) -> None:
    setup_with_one_bad_client(company)
    assert main(["sync", "clients"]) == 1


def test_bad_config_exits_2(company: Company) -> None:
    company.setup([account("ACC-1", "Northwind")])
    (company.root / "mappings" / "clients.yaml").write_text("version: 1\nname: Bad Name\n")
    assert main(["sync"]) == 2


def test_sync_json_prints_one_line_per_mapping_with_counts(
    company: Company, capsys: pytest.CaptureFixture[str]
) -> None:
    company.setup([account("ACC-1", "Northwind")])
    main(["--json", "sync"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [d["mapping"] for d in lines] == ["clients", "orders"]  # lookup order: orders depends on clients
    assert lines[0]["counts"]["created"] == 1


def test_dry_run_prints_field_diffs_per_record(company: Company, capsys: pytest.CaptureFixture[str]) -> None:
    company.setup([account("ACC-1", "Northwind")])
    assert main(["sync", "clients", "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "create" in text and "Client: None -> 'Northwind'" in text
    assert len(company.rows("roster/Clients.csv")) == 0


def test_dead_letters_list_and_replay_after_the_cause_is_fixed(
    company: Company, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_with_one_bad_client(company)
    main(["sync", "clients"])
    capsys.readouterr()
    main(["--json", "dead-letters", "list"])
    [letter] = json.loads(capsys.readouterr().out)
    assert (letter["key"], letter["category"], letter["field"]) == ("ACC-2", "bad-input", "Tier")
    text = (company.root / "mappings" / "clients.yaml").read_text()
    (company.root / "mappings" / "clients.yaml").write_text(
        text.replace("Bronze: C}", "Bronze: C, Platinum: P}")
    )
    assert main(["dead-letters", "replay", str(letter["id"])]) == 0
    assert company.row("roster/Clients.csv", "Account No", "ACC-2")["Tier"] == "P"


def test_links_shows_the_identity_map(company: Company, capsys: pytest.CaptureFixture[str]) -> None:
    company.setup([account("ACC-1", "Northwind")])
    main(["sync", "clients"])
    capsys.readouterr()
    main(["--json", "links", "clients", "ACC-1"])
    [link] = json.loads(capsys.readouterr().out)
    assert (link["source_key"], link["target_key"], link["base"]["Client"]) == ("ACC-1", "ACC-1", "Northwind")


def test_fields_lists_the_live_columns_of_a_stream(
    company: Company, capsys: pytest.CaptureFixture[str]
) -> None:
    company.setup([account("ACC-1", "Northwind")])
    assert main(["--json", "fields", "roster", "Clients"]) == 0
    [stream] = json.loads(capsys.readouterr().out)
    assert stream["key_field"] == "Account No" and "Email" in [f["name"] for f in stream["fields"]]


def test_validate_online_reports_a_field_the_source_does_not_have(
    company: Company, capsys: pytest.CaptureFixture[str]
) -> None:
    company.setup([account("ACC-1", "Northwind")])
    text = (company.root / "mappings" / "clients.yaml").read_text()
    (company.root / "mappings" / "clients.yaml").write_text(text.replace("from: Tier__c", "from: Tier_c"))
    assert main(["validate"]) == 0
    assert main(["validate", "--online"]) == 2
    assert "mappings/clients.yaml:11:" in capsys.readouterr().err


def test_transforms_lists_every_transform_with_its_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--json", "transforms"]) == 0
    docs = json.loads(capsys.readouterr().out)
    assert {"strip", "lower", "date", "map", "phone", "email"} <= set(docs)
    assert all(doc.strip() for doc in docs.values())


def test_status_reports_each_mapping_from_the_journal(
    company: Company, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_with_one_bad_client(company)
    main(["sync"])
    capsys.readouterr()
    assert main(["--json", "status"]) == 1
    rows = {r["mapping"]: r for r in json.loads(capsys.readouterr().out)}
    assert (
        rows["clients"]["dead_letters"] == 1
        and rows["clients"]["created"] == 1
        and rows["clients"]["links"] == 1
    )


def test_python_dash_m_runs_the_same_command(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "syncd", "--version"], capture_output=True, text=True, check=True
    )
    assert done.stdout.startswith("syncd, version")


def test_sync_refuses_to_run_beside_a_daemon_on_the_same_journal(
    company: Company, capsys: pytest.CaptureFixture[str]
) -> None:
    from syncd.service import JournalLock

    company.setup([account("ACC-1", "Northwind")])
    daemon = JournalLock(company.root / "syncd.db")
    daemon.acquire()
    try:
        assert main(["sync", "clients"]) == 1
        assert "already running on this journal" in capsys.readouterr().err
        assert main(["sync", "clients", "--dry-run"]) == 0  # reading is fine
        assert main(["status"]) in (0, 1)
    finally:
        daemon.release()
    assert main(["sync", "clients"]) == 0
