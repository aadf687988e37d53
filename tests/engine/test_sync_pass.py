"""The sync pass, specified through what a coordinator sees in the files after each pass."""

from __future__ import annotations

from tests.engine.conftest import ACCOUNT_HEADER, CLIENTS, Company, account


def three_clients(company: Company) -> None:
    company.setup(
        [
            account("ACC-1", "Northwind Traders"),
            account("ACC-2", "Contoso Pharmacy"),
            account("ACC-3", "Fabrikam Tools"),
        ]
    )


def test_first_pass_creates_every_source_record_in_the_target(company: Company) -> None:
    three_clients(company)
    result = company.sync("clients")
    assert result.counts["created"] == 3
    assert company.row("roster/Clients.csv", "Account No", "ACC-2")["Client"] == "Contoso Pharmacy"
    assert (
        company.row("roster/Clients.csv", "Account No", "ACC-2")["Owner"] == "Dana Reyes <dana@ourco.example>"
    )


def test_transforms_maps_and_constants_shape_the_target_values(company: Company) -> None:
    company.setup([account("ACC-1", "Northwind", Email__c="  Orders@NorthWind.example ", Tier__c="Silver")])
    company.sync("clients")
    row = company.row("roster/Clients.csv", "Account No", "ACC-1")
    assert (row["Email"], row["Tier"], row["Region"]) == ("orders@northwind.example", "B", "EMEA")


def test_filter_keeps_records_that_do_not_match_out_of_the_target(company: Company) -> None:
    company.setup([account("ACC-1", "Northwind"), account("ACC-2", "Blue Yonder", Type="Prospect")])
    company.sync("clients")
    assert [r["Account No"] for r in company.rows("roster/Clients.csv")] == ["ACC-1"]


def test_pass_after_our_own_write_plans_nothing(company: Company) -> None:
    three_clients(company)
    company.sync("clients")
    second = company.sync("clients")
    assert second.counts["created"] == second.counts["updated"] == 0
    third = company.sync("clients")
    assert third.counts["read"] == 0 and not [c for c in third.changes if c.action != "dead-letter"]


def test_existing_target_row_is_matched_and_linked_not_duplicated(company: Company) -> None:
    company.setup(
        [account("ACC-1", "Northwind")],
        clients_rows=[
            {
                "Account No": "ACC-1",
                "Client": "Northwind",
                "Email": "info@northwind.example",
                "Tier": "A",
                "Owner": "Dana Reyes <dana@ourco.example>",
                "Region": "EMEA",
            }
        ],
    )
    result = company.sync("clients")
    assert result.counts["created"] == 0
    assert len(company.rows("roster/Clients.csv")) == 1
    with company.journal() as j:
        assert [lk.target_key for lk in j.links("clients")] == ["ACC-1"]


def test_source_edit_updates_only_the_changed_field_in_the_target(company: Company) -> None:
    three_clients(company)
    company.sync("clients")
    company.edit("roster/Clients.csv", "Account No", "ACC-2", Status="hand note")
    company.edit("crm/Account.csv", "AccountNumber", "ACC-2", Name="Contoso Pharmacy Ltd")
    result = company.sync("clients")
    assert result.counts["updated"] == 1
    row = company.row("roster/Clients.csv", "Account No", "ACC-2")
    assert row["Client"] == "Contoso Pharmacy Ltd"
    assert row["Status"] == "hand note"  # an unmapped column a person typed in is kept


def test_two_way_edits_to_different_fields_of_one_record_are_both_kept(company: Company) -> None:
    three_clients(company)
    company.sync("clients")
    company.edit("crm/Account.csv", "AccountNumber", "ACC-1", Tier__c="Bronze")
    company.edit("roster/Clients.csv", "Account No", "ACC-1", Email="buyers@northwind.example")
    result = company.sync("clients")
    assert result.counts["conflicts"] == 0
    assert company.row("roster/Clients.csv", "Account No", "ACC-1")["Tier"] == "C"
    crm = company.row("crm/Account.csv", "AccountNumber", "ACC-1")
    assert (crm["Email__c"], crm["Tier__c"]) == ("buyers@northwind.example", "Bronze")


def test_target_edit_of_a_mapped_value_is_written_back_through_the_inverse_map(company: Company) -> None:
    three_clients(company)
    company.sync("clients")
    company.edit("roster/Clients.csv", "Account No", "ACC-3", Tier="B")
    company.sync("clients")
    assert company.row("crm/Account.csv", "AccountNumber", "ACC-3")["Tier__c"] == "Silver"


def test_target_edit_of_a_readonly_field_is_put_back_from_the_source(company: Company) -> None:
    three_clients(company)
    company.sync("clients")
    company.edit("roster/Clients.csv", "Account No", "ACC-1", Owner="someone else", Client="Northwind Co")
    company.sync("clients")
    row = company.row("roster/Clients.csv", "Account No", "ACC-1")
    assert row["Owner"] == "Dana Reyes <dana@ourco.example>"
    assert company.row("crm/Account.csv", "AccountNumber", "ACC-1")["Name"] == "Northwind Co"


def test_new_row_in_a_two_way_target_is_created_in_the_source(company: Company) -> None:
    three_clients(company)
    company.sync("clients")
    company.append(
        "roster/Clients.csv",
        {"Account No": "ACC-9", "Client": "Proseware", "Email": "a@proseware.example", "Tier": "A"},
    )
    result = company.sync("clients")
    crm = company.row("crm/Account.csv", "AccountNumber", "ACC-9")
    assert (crm["Name"], crm["Tier__c"], crm["Email__c"]) == ("Proseware", "Gold", "a@proseware.example")
    assert result.counts["created"] == 1
    assert company.sync("clients").counts["created"] == 0


def test_bad_row_goes_to_dead_letters_while_the_rest_of_the_batch_lands(company: Company) -> None:
    company.setup(
        [
            account("ACC-1", "Northwind"),
            account("ACC-2", "Litware", Tier__c="Platinum"),
            account("ACC-3", "Fabrikam"),
        ]
    )
    result = company.sync("clients")
    assert result.counts["created"] == 2 and result.counts["failed"] == 1
    assert result.outcome == "failures"
    with company.journal() as j:
        [letter] = j.dead_letters("clients")
    assert (letter.record_key, letter.category, letter.field) == ("ACC-2", "bad-input", "Tier")
    assert "'Platinum' is not in the map" in letter.message
    assert letter.record is not None and letter.record["Name"] == "Litware"


def test_fixed_source_record_resolves_its_dead_letter(company: Company) -> None:
    company.setup([account("ACC-1", "Northwind"), account("ACC-2", "Litware", Tier__c="Platinum")])
    company.sync("clients")
    company.edit("crm/Account.csv", "AccountNumber", "ACC-2", Tier__c="Gold")
    company.sync("clients")
    with company.journal() as j:
        assert j.dead_letters("clients") == []
    assert company.row("roster/Clients.csv", "Account No", "ACC-2")["Tier"] == "A"


def test_unresolved_reference_waits_and_is_retried_when_the_parent_syncs(company: Company) -> None:
    company.setup([account("ACC-1", "Northwind")])
    company.append(
        "orders/Orders.csv",
        {
            "PO Number": "PO-1",
            "Account No": "ACC-1",
            "Price Book": "Standard Price Book",
            "Order Date": "03/11/2026",
        },
    )
    company.append(
        "orders/Orders.csv",
        {
            "PO Number": "PO-2",
            "Account No": "ACC-2",
            "Price Book": "Standard Price Book",
            "Order Date": "04/11/2026",
        },
    )
    company.sync("clients")
    first = company.sync("orders")
    assert first.counts["created"] == 1
    with company.journal() as j:
        [letter] = j.dead_letters("orders")
    assert letter.category == "unresolved-reference" and "'ACC-2'" in letter.message
    company.append("crm/Account.csv", account("ACC-2", "Contoso"))
    company.sync("clients")
    company.sync("orders")
    order = company.row("crm/Order.csv", "PO_Number__c", "PO-2")
    assert (order["AccountId"], order["Pricebook2Id"], order["EffectiveDate"]) == (
        "ACC-2",
        "01sSTD",
        "2026-11-04",
    )
    with company.journal() as j:
        assert j.dead_letters("orders") == []


def test_lookup_by_stream_field_is_one_batched_find(company: Company) -> None:
    company.setup([account("ACC-1", "Northwind")])
    for n in range(5):
        company.append(
            "orders/Orders.csv",
            {
                "PO Number": f"PO-{n}",
                "Account No": "ACC-1",
                "Price Book": "Missing Book" if n == 4 else "Standard Price Book",
                "Order Date": "03/11/2026",
            },
        )
    company.sync("clients")
    result = company.sync("orders")
    assert result.counts["created"] == 4
    with company.journal() as j:
        [letter] = j.dead_letters("orders")
    assert letter.record_key == "PO-4" and letter.field == "Pricebook2Id"


def test_adding_a_field_backfills_linked_records_without_recreating_them(company: Company) -> None:
    three_clients(company)
    company.sync("clients")
    text = CLIENTS % {"conflict": "source-wins", "deletes": "ignore"}
    company.write_mappings(clients=text.replace("filter:", '  "Kind": Type\nfilter:'))
    result = company.sync("clients")
    assert (result.counts["created"], result.counts["updated"]) == (0, 3)
    assert [r["Kind"] for r in company.rows("roster/Clients.csv")] == ["Customer"] * 3
    assert company.sync("clients").counts["updated"] == 0


def test_reordered_csv_header_still_maps_by_column_name(company: Company) -> None:
    three_clients(company)
    company.sync("clients")
    rows = company.rows("crm/Account.csv")
    reordered = list(reversed(ACCOUNT_HEADER))
    for r in rows:
        if r["AccountNumber"] == "ACC-1":
            r["Name"] = "Northwind Renamed"
    company.write_csv("crm/Account.csv", reordered, rows)
    result = company.sync("clients")
    assert result.counts["updated"] == 1 and result.counts["failed"] == 0
    assert company.row("roster/Clients.csv", "Account No", "ACC-1")["Client"] == "Northwind Renamed"


def test_dry_run_reports_the_plan_and_writes_nothing(company: Company) -> None:
    three_clients(company)
    before = (company.root / "roster" / "Clients.csv").read_bytes()
    result = company.sync("clients", dry_run=True)
    assert [c.action for c in result.changes] == ["create"] * 3
    assert result.changes[0].diff["Client"] == (None, "Northwind Traders")
    assert (company.root / "roster" / "Clients.csv").read_bytes() == before
    with company.journal() as j:
        assert j.links("clients") == [] and j.last_runs() == {}


def test_a_value_typed_in_the_target_is_normalised_on_both_sides_in_one_pass(company: Company) -> None:
    three_clients(company)
    company.sync("clients")
    company.edit("roster/Clients.csv", "Account No", "ACC-1", Email="  Buyers@NorthWind.EXAMPLE ")
    company.sync("clients")
    assert company.row("crm/Account.csv", "AccountNumber", "ACC-1")["Email__c"] == "buyers@northwind.example"
    assert company.row("roster/Clients.csv", "Account No", "ACC-1")["Email"] == "buyers@northwind.example"
    after = company.sync("clients")
    assert after.counts["updated"] == 0


def test_a_target_edit_that_normalises_to_the_agreed_value_changes_only_the_target(company: Company) -> None:
    three_clients(company)
    company.sync("clients")
    before = (company.root / "crm" / "Account.csv").read_bytes()
    company.edit("roster/Clients.csv", "Account No", "ACC-2", Email="INFO@CONTOSO.EXAMPLE")
    company.sync("clients")
    assert company.row("roster/Clients.csv", "Account No", "ACC-2")["Email"] == "info@contoso.example"
    assert (company.root / "crm" / "Account.csv").read_bytes() == before
