"""Single-record REST calls against the sandbox, driven by simple-salesforce over HTTPS."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceMalformedRequest,
    SalesforceMoreThanOneRecord,
    SalesforceResourceNotFound,
)

from syncd.sandbox.salesforce import SalesforceSandbox
from syncd.sandbox.salesforce_ids import checksum_suffix, normalize_id
from tests.sandbox.salesforce_clients import running_org

SF_STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000$")


def error_of(excinfo: pytest.ExceptionInfo[SalesforceError]) -> dict[str, Any]:
    content = excinfo.value.content
    assert isinstance(content, list) and len(content) == 1
    return dict(content[0])


def test_create_answers_201_with_an_18_char_id_of_the_object_key_prefix(sf: Salesforce) -> None:
    created = sf.Account.create({"Name": "Acme"})
    assert created["success"] is True and created["errors"] == []
    record_id = created["id"]
    assert record_id.startswith("001") and len(record_id) == 18
    assert record_id[15:] == checksum_suffix(record_id[:15])


def test_key_prefixes_follow_salesforce(sandbox: SalesforceSandbox) -> None:
    account = sandbox.insert("Account", {"Name": "A"})
    product = sandbox.insert("Product2", {"Name": "Widget"})
    book = sandbox.insert("Pricebook2", {"Name": "Standard"})
    entry = sandbox.insert("PricebookEntry", {"Pricebook2Id": book, "Product2Id": product, "UnitPrice": 5})
    order = sandbox.insert(
        "Order", {"AccountId": account, "EffectiveDate": "2024-01-01", "Pricebook2Id": book}
    )
    item = sandbox.insert(
        "OrderItem", {"OrderId": order, "PricebookEntryId": entry, "Quantity": 2, "UnitPrice": 5}
    )
    case = sandbox.insert("Case", {"Subject": "Broken"})
    ids = [
        account,
        sandbox.insert("Contact", {"LastName": "L"}),
        order,
        item,
        product,
        book,
        entry,
        case,
        sandbox.insert("EmailMessage", {"ParentId": case}),
        sandbox.insert("Task", {"Subject": "Call"}),
    ]
    assert [i[:3] for i in ids] == ["001", "003", "801", "802", "01t", "01s", "01u", "500", "02s", "00T"]


def test_fifteen_char_ids_are_accepted_and_a_wrong_checksum_is_not() -> None:
    full = "001Sb0000000001IAA"
    assert normalize_id(full[:15]) == full
    assert normalize_id(full[:15] + "AAA") is None


def test_get_returns_every_field_with_attributes(sf: Salesforce) -> None:
    record_id = sf.Contact.create({"LastName": "Bluth", "FirstName": "Lindsay"})["id"]
    record = sf.Contact.get(record_id)
    assert record["attributes"] == {
        "type": "Contact",
        "url": f"/services/data/v62.0/sobjects/Contact/{record_id}",
    }
    assert record["Name"] == "Lindsay Bluth"
    assert record["IsDeleted"] is False
    assert SF_STAMP.match(record["SystemModstamp"])
    assert record["CreatedDate"] == record["LastModifiedDate"] == record["SystemModstamp"]


def test_autonumber_fields_are_filled_and_not_createable(sf: Salesforce, sandbox: SalesforceSandbox) -> None:
    account = sandbox.insert("Account", {"Name": "A"})
    order = sf.Order.get(sf.Order.create({"AccountId": account, "EffectiveDate": "2024-05-01"})["id"])
    assert order["OrderNumber"] == "00000001" and order["Status"] == "Draft"
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Order.create({"AccountId": account, "EffectiveDate": "2024-05-01", "OrderNumber": "X"})
    assert error_of(caught)["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert error_of(caught)["fields"] == ["OrderNumber"]


def test_update_answers_204_and_advances_system_modstamp(sf: Salesforce) -> None:
    record_id = sf.Account.create({"Name": "Acme"})["id"]
    before = sf.Account.get(record_id)["SystemModstamp"]
    assert sf.Account.update(record_id, {"Phone": "+1 555 0100"}) == 204
    after = sf.Account.get(record_id)
    assert after["Phone"] == "+1 555 0100"
    assert after["SystemModstamp"] > before


def test_system_modstamps_never_go_back_and_never_run_ahead_of_the_clock(sandbox: SalesforceSandbox) -> None:
    ids = [sandbox.insert("Account", {"Name": f"A{i}"}) for i in range(2000)]
    stamps = [r["SystemModstamp"] for r in sandbox.records("Account")]
    newest = datetime.strptime(max(stamps), "%Y-%m-%dT%H:%M:%S.%f%z")
    assert len(ids) == 2000 and stamps == sorted(stamps)
    assert newest <= datetime.now(UTC)  # 2,000 writes in under 2 s share milliseconds, as in Salesforce


EXTERNAL_ID = {"type": "string", "length": 40, "externalId": True, "unique": True}


def test_upsert_by_external_id_creates_then_updates() -> None:
    with running_org({"objects": {"Account": {"fields": {"Ext__c": EXTERNAL_ID}}}}) as (org, sf):
        assert sf.Account.upsert("Ext__c/A-1", {"Name": "First"}) == 201
        assert sf.Account.upsert("Ext__c/A-1", {"Name": "Second"}) == 200
        assert [(r["Ext__c"], r["Name"]) for r in org.records("Account")] == [("A-1", "Second")]


def test_upsert_matching_two_records_answers_300_with_their_urls(
    sf: Salesforce, sandbox: SalesforceSandbox
) -> None:
    first = sandbox.insert("Contact", {"LastName": "A", "Email": "twin@example.com"})
    second = sandbox.insert("Contact", {"LastName": "B", "Email": "TWIN@example.com"})
    with pytest.raises(SalesforceMoreThanOneRecord) as caught:
        sf.Contact.upsert("Email/twin@example.com", {"LastName": "C"})
    assert caught.value.content == [
        f"/services/data/v62.0/sobjects/Contact/{first}",
        f"/services/data/v62.0/sobjects/Contact/{second}",
    ]


def test_upsert_on_a_field_that_is_not_an_external_id_is_refused(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Account.upsert("Name/Acme", {"Phone": "1"})
    assert error_of(caught)["errorCode"] == "INVALID_FIELD"


def test_get_of_an_unknown_id_is_404(sf: Salesforce) -> None:
    with pytest.raises(SalesforceResourceNotFound) as caught:
        sf.Account.get("001Sb0000000999IAA")
    assert error_of(caught)["errorCode"] == "NOT_FOUND"


def test_delete_is_soft_and_visible_to_query_all(sf: Salesforce) -> None:
    record_id = sf.Account.create({"Name": "Gone"})["id"]
    assert sf.Account.delete(record_id) == 204
    assert sf.query("SELECT Id FROM Account")["totalSize"] == 0
    everything = sf.query_all("SELECT Id, IsDeleted FROM Account", include_deleted=True)["records"]
    assert [(r["Id"], r["IsDeleted"]) for r in everything] == [(record_id, True)]


def test_updating_a_deleted_record_is_entity_is_deleted(sf: Salesforce) -> None:
    record_id = sf.Account.create({"Name": "Gone"})["id"]
    sf.Account.delete(record_id)
    with pytest.raises(SalesforceError) as caught:
        sf.Account.update(record_id, {"Name": "Back"})
    assert error_of(caught)["errorCode"] == "ENTITY_IS_DELETED"


def test_updated_and_deleted_windows(sf: Salesforce, sandbox: SalesforceSandbox) -> None:
    start = datetime.now(UTC) - timedelta(minutes=1)
    kept = sf.Account.create({"Name": "Kept"})["id"]
    gone = sf.Account.create({"Name": "Gone"})["id"]
    vanished = sf.Account.create({"Name": "Vanished"})["id"]
    sf.Account.delete(gone)
    sandbox.hard_delete("Account", vanished)
    end = datetime.now(UTC) + timedelta(minutes=1)
    assert sf.Account.updated(start, end)["ids"] == [kept]
    deleted = sf.Account.deleted(start, end)["deletedRecords"]
    assert sorted(d["id"] for d in deleted) == sorted([gone, vanished])
    assert all(SF_STAMP.match(d["deletedDate"]) for d in deleted)


def test_updated_window_further_back_than_30_days_is_refused(sf: Salesforce) -> None:
    now = datetime.now(UTC)
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Account.updated(now - timedelta(days=31), now)
    assert error_of(caught)["errorCode"] == "INVALID_REPLICATION_DATE"


# --- validation, each error as Salesforce reports it ----------------------------------------------


def test_missing_required_field(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Contact.create({"FirstName": "No last name"})
    assert error_of(caught) == {
        "message": "Required fields are missing: [LastName]",
        "errorCode": "REQUIRED_FIELD_MISSING",
        "fields": ["LastName"],
    }


def test_string_too_long(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Account.create({"Name": "A", "AccountNumber": "9" * 41})
    error = error_of(caught)
    assert error["errorCode"] == "STRING_TOO_LONG" and error["fields"] == ["AccountNumber"]
    assert error["message"].endswith("(max length=40)")


def test_unknown_field_in_body(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Account.create({"Name": "A", "Colour__c": "red"})
    assert error_of(caught)["errorCode"] == "INVALID_FIELD"
    assert error_of(caught)["message"] == "No such column 'Colour__c' on sobject of type Account"


def test_wrong_json_type_is_a_parser_error(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Account.create({"Name": "A", "NumberOfEmployees": "many"})
    assert error_of(caught)["errorCode"] == "JSON_PARSER_ERROR"


def test_numeric_strings_are_accepted_for_number_fields(sf: Salesforce) -> None:
    record_id = sf.Account.create({"Name": "A", "NumberOfEmployees": "10000"})["id"]
    assert sf.Account.get(record_id)["NumberOfEmployees"] == 10000


def test_non_createable_field(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Account.create({"Name": "A", "CreatedDate": "2024-01-01T00:00:00.000+0000"})
    assert error_of(caught)["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"


def test_malformed_reference_id(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Contact.create({"LastName": "L", "AccountId": "not-an-id"})
    assert error_of(caught)["errorCode"] == "MALFORMED_ID" and error_of(caught)["fields"] == ["AccountId"]


def test_invalid_email(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Contact.create({"LastName": "L", "Email": "not an email"})
    assert error_of(caught)["errorCode"] == "INVALID_EMAIL_ADDRESS"


def test_duplicate_value_on_unique_external_id() -> None:
    with running_org({"objects": {"Product2": {"fields": {"Sku__c": EXTERNAL_ID}}}}) as (_org, sf):
        first = sf.Product2.create({"Name": "A", "Sku__c": "S-1"})["id"]
        with pytest.raises(SalesforceMalformedRequest) as caught:
            sf.Product2.create({"Name": "B", "Sku__c": "S-1"})
        assert error_of(caught)["errorCode"] == "DUPLICATE_VALUE"
        assert error_of(caught)["message"].endswith(f"duplicates value on record with id: {first}")


def test_seeded_validation_rule_fails_its_record() -> None:
    seed = {
        "objects": {
            "Account": {
                "validationRules": [
                    {
                        "name": "NoBad",
                        "field": "AccountNumber",
                        "equals": "BAD",
                        "message": "Account number is bad",
                    }
                ]
            }
        }
    }
    with running_org(seed) as (_org, sf), pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Account.create({"Name": "A", "AccountNumber": "BAD"})
    assert error_of(caught) == {
        "message": "Account number is bad",
        "errorCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
        "fields": [],
    }


def test_seed_file_declares_a_custom_object_with_records(tmp_path: Any) -> None:
    seed = tmp_path / "seed.yaml"
    seed.write_text(
        "objects:\n"
        "  Warehouse__c:\n"
        "    fields:\n"
        "      Code__c: {type: string, length: 10, externalId: true, unique: true, required: true}\n"
        "    records:\n"
        "      - {Name: Main, Code__c: W1}\n",
        encoding="utf-8",
    )
    org = SalesforceSandbox(seed=seed)
    try:
        rows = org.records("Warehouse__c")
        assert [(r["Name"], r["Code__c"], r["Id"][:3]) for r in rows] == [("Main", "W1", "a00")]
    finally:
        org.stop()


def test_state_survives_a_restart_with_a_data_dir(tmp_path: Any) -> None:
    first = SalesforceSandbox(data_dir=tmp_path)
    record_id = first.insert("Account", {"Name": "Durable"})
    first.stop()
    second = SalesforceSandbox(data_dir=tmp_path)
    try:
        assert [r["Id"] for r in second.records("Account")] == [record_id]
        assert second.insert("Account", {"Name": "Next"}) != record_id
    finally:
        second.stop()


def test_number_beyond_its_precision_is_out_of_range(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Account.create({"Name": "A", "NumberOfEmployees": 123456789})
    assert error_of(caught)["errorCode"] == "NUMBER_OUTSIDE_VALID_RANGE"


def test_reference_to_a_missing_record_is_an_invalid_cross_reference(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Contact.create({"LastName": "L", "AccountId": "001Sb0000000999IAA"})
    assert error_of(caught)["errorCode"] == "INVALID_CROSS_REFERENCE_KEY"


def test_fifteen_char_references_are_stored_in_18_char_form(
    sf: Salesforce, sandbox: SalesforceSandbox
) -> None:
    account = sandbox.insert("Account", {"Name": "A"})
    contact = sf.Contact.create({"LastName": "L", "AccountId": account[:15]})["id"]
    assert sf.Contact.get(contact)["AccountId"] == account
