"""mappings/clients.yaml: Salesforce Accounts (+ primary Contact) <-> the Clients roster sheet, two-way."""

from __future__ import annotations

from .conftest import Stack, account


def roster(stack: Stack) -> dict[str, dict[str, str]]:
    return {row["Account No"]: row for row in stack.book("roster", "Clients")}


def test_every_customer_gets_a_row_with_its_owner_status_and_primary_contact(stack: Stack) -> None:
    account(stack, "ACC-1", "Northwind", Phone="020 7946 0001")
    account(stack, "ACC-2", "Fabrikam", Type="Prospect")
    stack.write("clients")
    stack.run()
    row = roster(stack)["ACC-1"]
    assert list(roster(stack)) == ["ACC-1"]
    assert (row["Client"], row["Email"], row["Tier"], row["Phone"]) == (
        "Northwind",
        "orders@northwind.example",
        "A",
        "020 7946 0001",
    )
    assert row["Owner"].startswith("Account Coordinator <")
    assert (row["Account Status"], row["Contact"], row["Contact Email"]) == (
        "Active", "Ann Northwind", "ann@northwind.example"
    )  # fmt: skip


def test_a_phone_or_email_corrected_in_the_sheet_updates_salesforce(stack: Stack) -> None:
    account_id = account(stack, "ACC-1", "Northwind")
    stack.write("clients")
    stack.run()
    stack.edit("roster", "Clients", "ACC-1", "Phone", "020 7946 5555")
    stack.edit("roster", "Clients", "ACC-1", "Email", "buyers@northwind.example")
    stack.run()
    [record] = [r for r in stack.org.records("Account") if r["Id"] == account_id]
    assert (record["Phone"], record["Email__c"]) == ("020 7946 5555", "buyers@northwind.example")


def test_a_status_change_in_salesforce_updates_the_sheet(stack: Stack) -> None:
    account_id = account(stack, "ACC-1", "Northwind")
    stack.write("clients")
    stack.run()
    stack.org.update("Account", account_id, {"Account_Status__c": "On hold"})
    stack.run()
    assert roster(stack)["ACC-1"]["Account Status"] == "On hold"


def test_edits_to_different_fields_on_both_sides_in_one_pass_are_both_kept(stack: Stack) -> None:
    account_id = account(stack, "ACC-1", "Northwind")
    stack.write("clients")
    stack.run()
    stack.org.update("Account", account_id, {"Tier__c": "Silver"})
    stack.edit("roster", "Clients", "ACC-1", "Phone", "020 9")
    result = stack.run()["clients"]
    [record] = [r for r in stack.org.records("Account") if r["Id"] == account_id]
    row = roster(stack)["ACC-1"]
    assert (record["Tier__c"], record["Phone"]) == ("Silver", "020 9")
    assert (row["Tier"], row["Phone"]) == ("B", "020 9")
    assert result.counts["conflicts"] == 0


def test_a_roster_row_typed_before_the_first_sync_is_matched_not_duplicated(stack: Stack) -> None:
    account(stack, "ACC-1", "Northwind")
    stack.write("clients", rows={"Clients": [["ACC-1", "Northwind (typed)", "orders@northwind.example"]]})
    stack.run()
    rows = stack.book("roster", "Clients")
    assert [(r["Account No"], r["Client"]) for r in rows] == [("ACC-1", "Northwind")]
    assert len(stack.org.records("Account")) == 1
