"""Conflict policies (a field changed on both sides since the base) and delete policies."""

from __future__ import annotations

import pytest

from syncd.cli import main
from tests.engine.conftest import Company, account


def conflicting_rename(company: Company, conflict: str, deletes: str = "ignore") -> None:
    company.conflict, company.deletes = conflict, deletes
    company.setup([account("ACC-1", "Tailspin Toys"), account("ACC-2", "Contoso")])
    company.sync("clients")
    company.edit("crm/Account.csv", "AccountNumber", "ACC-1", Name="Tailspin Toys GmbH")
    company.edit("roster/Clients.csv", "Account No", "ACC-1", Client="Tailspin Toys Ltd")


def names(company: Company) -> tuple[str, str]:
    return (
        company.row("crm/Account.csv", "AccountNumber", "ACC-1")["Name"],
        company.row("roster/Clients.csv", "Account No", "ACC-1")["Client"],
    )


def test_source_wins_writes_the_source_value_to_the_target(company: Company) -> None:
    conflicting_rename(company, "source-wins")
    result = company.sync("clients")
    assert result.counts["conflicts"] == 1
    assert names(company) == ("Tailspin Toys GmbH", "Tailspin Toys GmbH")


def test_target_wins_writes_the_target_value_back_to_the_source(company: Company) -> None:
    conflicting_rename(company, "target-wins")
    company.sync("clients")
    assert names(company) == ("Tailspin Toys Ltd", "Tailspin Toys Ltd")


def test_newest_wins_takes_the_side_edited_last(company: Company) -> None:
    conflicting_rename(company, "newest-wins")
    company.edit("crm/Account.csv", "AccountNumber", "ACC-1", LastModifiedDate="2026-11-20T08:00:00+00:00")
    company.edit("roster/Clients.csv", "Account No", "ACC-1", Updated="2026-11-20T09:30:00+00:00")
    company.sync("clients")
    assert names(company) == ("Tailspin Toys Ltd", "Tailspin Toys Ltd")


def test_newest_wins_without_edit_times_falls_back_to_the_source(company: Company) -> None:
    conflicting_rename(company, "newest-wins")
    company.sync("clients")
    assert names(company) == ("Tailspin Toys GmbH", "Tailspin Toys GmbH")


def test_conflict_on_one_field_does_not_hold_back_other_fields(company: Company) -> None:
    conflicting_rename(company, "source-wins")
    company.edit("roster/Clients.csv", "Account No", "ACC-1", Email="new@tailspin.example")
    company.sync("clients")
    assert company.row("crm/Account.csv", "AccountNumber", "ACC-1")["Email__c"] == "new@tailspin.example"


def test_same_change_on_both_sides_is_not_a_conflict(company: Company) -> None:
    company.setup([account("ACC-1", "Tailspin Toys")])
    company.sync("clients")
    company.edit("crm/Account.csv", "AccountNumber", "ACC-1", Name="Tailspin Toys Ltd")
    company.edit("roster/Clients.csv", "Account No", "ACC-1", Client="Tailspin Toys Ltd")
    assert company.sync("clients").counts["conflicts"] == 0


def test_manual_conflict_is_recorded_and_nothing_is_written_for_that_record(company: Company) -> None:
    conflicting_rename(company, "manual")
    company.edit("crm/Account.csv", "AccountNumber", "ACC-2", Name="Contoso Ltd")
    result = company.sync("clients")
    assert names(company) == ("Tailspin Toys GmbH", "Tailspin Toys Ltd")
    assert company.row("roster/Clients.csv", "Account No", "ACC-2")["Client"] == "Contoso Ltd"
    with company.journal() as j:
        [conflict] = j.conflicts("clients")
    assert conflict.fields["Client"] == {
        "base": "Tailspin Toys",
        "source": "Tailspin Toys GmbH",
        "target": "Tailspin Toys Ltd",
    }
    assert result.counts["conflicts"] == 1


def test_resolving_a_manual_conflict_writes_the_chosen_side_and_settles_the_base(
    company: Company, capsys: pytest.CaptureFixture[str]
) -> None:
    conflicting_rename(company, "manual")
    company.sync("clients")
    with company.journal() as j:
        [conflict] = j.conflicts("clients")
    assert main(["conflicts", "resolve", str(conflict.id), "--take", "target"]) == 0
    assert names(company) == ("Tailspin Toys Ltd", "Tailspin Toys Ltd")
    after = company.sync("clients")
    assert after.counts["conflicts"] == 0 and after.counts["updated"] == 0
    with company.journal() as j:
        assert j.conflicts("clients") == []


def test_delete_propagate_removes_the_target_row(company: Company) -> None:
    company.deletes = "propagate"
    company.setup([account("ACC-1", "Northwind"), account("ACC-2", "Contoso")])
    company.sync("clients")
    company.delete_row("crm/Account.csv", "AccountNumber", "ACC-1")
    result = company.sync("clients")
    assert result.counts["deleted"] == 1
    assert [r["Account No"] for r in company.rows("roster/Clients.csv")] == ["ACC-2"]


def test_delete_flag_marks_the_target_row_and_keeps_it(company: Company) -> None:
    company.deletes = "flag"
    company.setup([account("ACC-1", "Northwind"), account("ACC-2", "Contoso")])
    company.sync("clients")
    company.delete_row("crm/Account.csv", "AccountNumber", "ACC-1")
    company.sync("clients")
    assert company.row("roster/Clients.csv", "Account No", "ACC-1")["Status"] == "Deleted"
    assert company.sync("clients").counts["updated"] == 0


def test_delete_ignore_leaves_the_target_alone(company: Company) -> None:
    company.setup([account("ACC-1", "Northwind"), account("ACC-2", "Contoso")])
    company.sync("clients")
    company.delete_row("crm/Account.csv", "AccountNumber", "ACC-1")
    company.sync("clients")
    assert company.row("roster/Clients.csv", "Account No", "ACC-1")["Client"] == "Northwind"
    with company.journal() as j:
        assert [lk.state for lk in j.links("clients", "ACC-1")] == ["source-deleted"]


def test_row_deleted_in_a_two_way_target_deletes_the_source_under_propagate(company: Company) -> None:
    company.deletes = "propagate"
    company.setup([account("ACC-1", "Northwind"), account("ACC-2", "Contoso")])
    company.sync("clients")
    company.sync("clients")  # a row-hash cursor learns rows syncd created on the pass after it wrote them
    company.delete_row("roster/Clients.csv", "Account No", "ACC-2")
    company.sync("clients")
    assert [r["AccountNumber"] for r in company.rows("crm/Account.csv")] == ["ACC-1"]
