"""`syncd reconcile clients` finds each kind of drift made behind syncd's back, through the sandboxes'
back doors: Salesforce records inserted, changed or purged without a trace, sheet cells typed over."""

from __future__ import annotations

from syncd.reconcile import ReconcileReport, reconcile

from .conftest import Stack, account


def synced(stack: Stack) -> dict[str, str]:
    ids = {n: account(stack, n, name) for n, name in (("ACC-1", "Northwind"), ("ACC-2", "Fabrikam"))}
    stack.write("clients")
    stack.run()
    return ids


def drift(stack: Stack) -> ReconcileReport:
    with stack.journal() as journal:
        return reconcile(stack.project(), journal, "clients")


def kinds(report: ReconcileReport) -> list[tuple[str, str | None]]:
    return sorted((d.kind, d.match_value or d.source_key or d.target_key) for d in report.drift)


def test_in_step_systems_show_no_drift(stack: Stack) -> None:
    synced(stack)
    assert drift(stack).drift == []


def test_a_field_changed_in_salesforce_shows_both_values(stack: Stack) -> None:
    ids = synced(stack)
    stack.org.update("Account", ids["ACC-1"], {"Phone": "020 1"})
    [d] = drift(stack).drift
    assert (d.kind, d.field, d.source_value, d.target_value) == ("differs", "Phone", "020 1", None)


def test_a_cell_typed_over_in_the_sheet_shows_both_values(stack: Stack) -> None:
    synced(stack)
    stack.edit("roster", "Clients", "ACC-2", "Client", "Fabrikam Inc")
    [d] = drift(stack).drift
    assert (d.kind, d.field, d.source_value, d.target_value) == (
        "differs",
        "Client",
        "Fabrikam",
        "Fabrikam Inc",
    )


def test_an_account_purged_without_a_trace_is_missing_in_source(stack: Stack) -> None:
    ids = synced(stack)
    stack.org.hard_delete("Account", ids["ACC-1"], tombstone=False)
    [d] = drift(stack).drift
    assert (d.kind, d.source_key) == ("missing-in-source", ids["ACC-1"])


def test_a_sheet_row_cleared_by_hand_leaves_a_dangling_link(stack: Stack) -> None:
    synced(stack)
    rows = stack.sheets.values(stack.books["roster"], "Clients")
    index = next(i for i, r in enumerate(rows) if r and r[0] == "ACC-2")
    stack.sheets.set_values(stack.books["roster"], "Clients", (index, 0), [[""] * len(rows[0])])
    assert [d.kind for d in drift(stack).drift] == ["dangling-link"]


def test_a_second_account_with_the_same_number_is_a_duplicate(stack: Stack) -> None:
    synced(stack)
    stack.org.insert("Account", {"Name": "Northwind (copy)", "AccountNumber": "ACC-1", "Type": "Customer"})
    assert ("duplicate", "ACC-1") in kinds(drift(stack))


def test_an_account_added_since_the_last_pass_is_missing_in_target(stack: Stack) -> None:
    synced(stack)
    new = stack.org.insert("Account", {"Name": "Contoso", "AccountNumber": "ACC-3", "Type": "Customer"})
    [d] = drift(stack).drift
    assert (d.kind, d.source_key) == ("missing-in-target", new)


def test_a_row_typed_for_an_account_syncd_never_linked_is_unlinked(stack: Stack) -> None:
    synced(stack)
    stack.org.insert("Account", {"Name": "Contoso", "AccountNumber": "ACC-3", "Type": "Customer"})
    rows = stack.sheets.values(stack.books["roster"], "Clients")
    stack.sheets.set_values(stack.books["roster"], "Clients", (len(rows), 0), [["ACC-3", "Contoso"]])
    assert [(d.kind, d.match_value) for d in drift(stack).drift] == [("unlinked", "ACC-3")]


def test_repair_writes_what_the_policies_allow_and_leaves_no_drift(stack: Stack) -> None:
    ids = synced(stack)
    stack.org.update("Account", ids["ACC-1"], {"Phone": "020 1"})
    stack.org.insert("Account", {"Name": "Contoso", "AccountNumber": "ACC-3", "Type": "Customer"})
    with stack.journal() as journal:
        reconcile(stack.project(), journal, "clients", repair=True)
    assert drift(stack).drift == []
    rows = {r["Account No"]: r for r in stack.book("roster", "Clients")}
    assert (rows["ACC-1"]["Phone"], rows["ACC-3"]["Client"]) == ("020 1", "Contoso")
