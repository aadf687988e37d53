"""Reconcile finds each kind of drift injected behind syncd's back, and repairs through the engine."""

from __future__ import annotations

import json

import pytest

from syncd.cli import main
from syncd.reconcile import reconcile
from tests.engine.conftest import Company, account


def synced(company: Company, deletes: str = "ignore") -> None:
    company.deletes = deletes
    company.setup([account("ACC-1", "Northwind"), account("ACC-2", "Contoso"), account("ACC-3", "Fabrikam")])
    company.sync("clients")


def drift_of(company: Company, **kwargs: bool) -> list[tuple[str, str | None, str | None, str | None]]:
    with company.journal() as j:
        report = reconcile(company.project(), j, "clients", **kwargs)
    return [(d.kind, d.source_key, d.target_key, d.field) for d in report.drift]


def test_in_agreement_reports_no_drift(company: Company) -> None:
    synced(company)
    assert drift_of(company) == []


def test_target_row_deleted_by_hand_is_a_dangling_link_and_repair_recreates_it(company: Company) -> None:
    synced(company)
    company.delete_row("roster/Clients.csv", "Account No", "ACC-2")
    assert drift_of(company) == [("dangling-link", "ACC-2", "ACC-2", None)]
    drift_of(company, repair=True)
    assert company.row("roster/Clients.csv", "Account No", "ACC-2")["Client"] == "Contoso"
    assert drift_of(company) == []


def test_field_edited_behind_syncds_back_differs_and_repair_follows_the_conflict_policy(
    company: Company,
) -> None:
    synced(company)
    company.edit("roster/Clients.csv", "Account No", "ACC-3", Owner="Nobody")
    assert drift_of(company) == [("differs", "ACC-3", "ACC-3", "Owner")]
    drift_of(company, repair=True)
    assert (
        company.row("roster/Clients.csv", "Account No", "ACC-3")["Owner"] == "Dana Reyes <dana@ourco.example>"
    )


def test_hard_delete_in_the_source_is_found_and_repaired_by_the_delete_policy(company: Company) -> None:
    synced(company, deletes="propagate")
    company.delete_row("crm/Account.csv", "AccountNumber", "ACC-1")
    # The next read of the CSV would report it too; reconcile finds it without a change feed.
    assert drift_of(company) == [("missing-in-source", "ACC-1", "ACC-1", None)]
    drift_of(company, repair=True)
    assert [r["Account No"] for r in company.rows("roster/Clients.csv")] == ["ACC-2", "ACC-3"]


def test_records_never_linked_on_both_sides_are_reported_and_repair_links_them(company: Company) -> None:
    company.setup(
        [account("ACC-1", "Northwind")],
        clients_rows=[{"Account No": "ACC-1", "Client": "Northwind", "Email": "x@y.example", "Tier": "A"}],
    )
    assert drift_of(company) == [("unlinked", "ACC-1", "ACC-1", None)]
    drift_of(company, repair=True)
    with company.journal() as j:
        assert [lk.target_key for lk in j.links("clients")] == ["ACC-1"]


def test_source_record_missing_from_the_target_is_reported(company: Company) -> None:
    synced(company)
    company.append("crm/Account.csv", account("ACC-4", "Litware"))
    assert drift_of(company) == [("missing-in-target", "ACC-4", None, None)]


def test_target_row_without_a_source_is_reported(company: Company) -> None:
    synced(company)
    company.append("roster/Clients.csv", {"Account No": "ACC-8", "Client": "Stray"})
    assert drift_of(company) == [("missing-in-source", None, "ACC-8", None)]


def test_two_source_records_with_one_match_value_are_duplicates(company: Company) -> None:
    synced(company)
    config = (company.root / "syncd.yaml").read_text().replace("Account: AccountNumber", "Account: Name")
    (company.root / "syncd.yaml").write_text(config)
    company.append("crm/Account.csv", account("ACC-1", "Northwind Two"))
    kinds = [kind for kind, *_ in drift_of(company)]
    assert "duplicate" in kinds


def test_repair_dry_run_writes_nothing(company: Company) -> None:
    synced(company)
    company.delete_row("roster/Clients.csv", "Account No", "ACC-2")
    drift_of(company, repair=True, dry_run=True)
    assert [r["Account No"] for r in company.rows("roster/Clients.csv")] == ["ACC-1", "ACC-3"]


def test_reconcile_command_exits_1_on_drift_and_writes_csv(
    company: Company, capsys: pytest.CaptureFixture[str]
) -> None:
    synced(company)
    capsys.readouterr()
    assert main(["reconcile", "clients"]) == 0
    company.delete_row("roster/Clients.csv", "Account No", "ACC-2")
    capsys.readouterr()
    assert main(["reconcile", "clients", "--format", "csv"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("kind,source_key") and lines[1].startswith("dangling-link,ACC-2,ACC-2")
    assert main(["reconcile", "clients", "--format", "json"]) == 1
    assert json.loads(capsys.readouterr().out)["counts"]["dangling-link"] == 1
