"""sObject Collections and /composite: per-record results, allOrNone, the 200-record cap."""

from __future__ import annotations

from typing import Any

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from syncd.sandbox.salesforce import SalesforceSandbox
from tests.sandbox.salesforce_clients import running_org


def contacts(count: int, bad_at: int | None = None) -> list[dict[str, Any]]:
    """`count` Contact records; the one at `bad_at` lacks its required LastName."""
    records: list[dict[str, Any]] = []
    for i in range(count):
        record: dict[str, Any] = {
            "attributes": {"type": "Contact"},
            "LastName": f"L{i}",
            "Email": f"c{i}@example.com",
        }
        if i == bad_at:
            del record["LastName"]
        records.append(record)
    return records


def collection(sf: Salesforce, method: str, records: list[dict[str, Any]], all_or_none: bool = False) -> Any:
    return sf.restful(
        "composite/sobjects", method=method, json={"allOrNone": all_or_none, "records": records}
    )


def test_one_bad_record_in_200_fails_alone(sf: Salesforce, sandbox: SalesforceSandbox) -> None:
    results = collection(sf, "POST", contacts(200, bad_at=137))
    assert len(results) == 200
    assert results[137] == {
        "id": None,
        "success": False,
        "errors": [
            {
                "statusCode": "REQUIRED_FIELD_MISSING",
                "message": "Required fields are missing: [LastName]",
                "fields": ["LastName"],
            }
        ],
    }
    good = [r for i, r in enumerate(results) if i != 137]
    assert all(r["success"] and r["errors"] == [] and r["id"].startswith("003") for r in good)
    assert len(sandbox.records("Contact")) == 199


def test_all_or_none_rolls_every_record_back(sf: Salesforce, sandbox: SalesforceSandbox) -> None:
    results = collection(sf, "POST", contacts(3, bad_at=1), all_or_none=True)
    assert results[1]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert [r["errors"][0]["statusCode"] for r in (results[0], results[2])] == [
        "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    ] * 2
    assert not any(r["success"] for r in results)
    assert sandbox.records("Contact") == []


def test_more_than_200_records_is_refused_whole(sf: Salesforce, sandbox: SalesforceSandbox) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        collection(sf, "POST", contacts(201))
    assert caught.value.content[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
    assert sandbox.records("Contact") == []


def test_update_reports_each_record(sf: Salesforce, sandbox: SalesforceSandbox) -> None:
    live = sandbox.insert("Contact", {"LastName": "Live"})
    deleted = sandbox.insert("Contact", {"LastName": "Deleted"})
    sandbox.delete("Contact", deleted)
    results = collection(
        sf,
        "PATCH",
        [
            {"attributes": {"type": "Contact"}, "Id": live, "Title": "CEO"},
            {"attributes": {"type": "Contact"}, "Id": deleted, "Title": "CFO"},
            {"attributes": {"type": "Contact"}, "Title": "No id"},
        ],
    )
    assert results[0] == {"id": live, "success": True, "errors": []}
    assert results[1]["errors"][0]["statusCode"] == "ENTITY_IS_DELETED"
    assert results[2]["errors"][0]["statusCode"] == "MISSING_ARGUMENT"
    assert [r["Title"] for r in sandbox.records("Contact")] == ["CEO"]


def test_upsert_by_id_lookup_field_reports_created(sf: Salesforce, sandbox: SalesforceSandbox) -> None:
    existing = sandbox.insert("Contact", {"LastName": "Old", "Email": "lindsay@example.com"})
    records = [
        {"attributes": {"type": "Contact"}, "LastName": "Bluth", "Email": "Lindsay@Example.com"},
        {"attributes": {"type": "Contact"}, "LastName": "New", "Email": "new@example.com"},
    ]
    results = sf.restful(
        "composite/sobjects/Contact/Email", method="PATCH", json={"allOrNone": False, "records": records}
    )
    assert results[0] == {"id": existing, "success": True, "errors": [], "created": False}
    assert results[1]["created"] is True and results[1]["success"] is True
    assert sorted(r["LastName"] for r in sandbox.records("Contact")) == ["Bluth", "New"]


def test_repeated_upsert_creates_no_duplicate() -> None:
    seed = {
        "objects": {"Account": {"fields": {"Ext__c": {"type": "string", "externalId": True, "unique": True}}}}
    }
    with running_org(seed) as (org, sf):
        batch = [{"attributes": {"type": "Account"}, "Name": f"A{i}", "Ext__c": f"E{i}"} for i in range(5)]
        body = {"allOrNone": False, "records": batch}
        first = sf.restful("composite/sobjects/Account/Ext__c", method="PATCH", json=body)
        again = sf.restful("composite/sobjects/Account/Ext__c", method="PATCH", json=body)
        assert [r["created"] for r in first] == [True] * 5
        assert [r["created"] for r in again] == [False] * 5
        assert [r["id"] for r in first] == [r["id"] for r in again]
        assert len(org.records("Account")) == 5


def test_delete_by_ids_reports_each(sf: Salesforce, sandbox: SalesforceSandbox) -> None:
    first = sandbox.insert("Account", {"Name": "A"})
    gone = sandbox.insert("Account", {"Name": "B"})
    sandbox.delete("Account", gone)
    results = sf.restful(
        "composite/sobjects", method="DELETE", params={"ids": f"{first},{gone}", "allOrNone": "false"}
    )
    assert results[0] == {"id": first, "success": True, "errors": []}
    assert results[1]["errors"][0]["statusCode"] == "ENTITY_IS_DELETED"


def test_validation_rule_fails_one_record_of_a_batch() -> None:
    rule = {
        "name": "NoTest",
        "field": "LastName",
        "equals": "Test",
        "message": "Test contacts are not allowed",
    }
    with running_org({"objects": {"Contact": {"validationRules": [rule]}}}) as (org, sf):
        records = contacts(200)
        records[42]["LastName"] = "Test"
        results = collection(sf, "POST", records)
        assert [i for i, r in enumerate(results) if not r["success"]] == [42]
        assert results[42]["errors"] == [
            {
                "statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                "message": "Test contacts are not allowed",
                "fields": [],
            }
        ]
        assert len(org.records("Contact")) == 199


def test_composite_runs_subrequests_in_order(sf: Salesforce, sandbox: SalesforceSandbox) -> None:
    account = sandbox.insert("Account", {"Name": "Smith Corp."})
    answer = sf.restful(
        "composite",
        method="POST",
        json={
            "compositeRequest": [
                {
                    "referenceId": "q",
                    "method": "GET",
                    "url": "/services/data/v62.0/query?q=SELECT Name FROM Account",
                },
                {
                    "referenceId": "g",
                    "method": "GET",
                    "url": f"/services/data/v62.0/sobjects/Account/{account}",
                },
            ]
        },
    )
    first, second = answer["compositeResponse"]
    assert (first["referenceId"], first["httpStatusCode"], first["body"]["records"][0]["Name"]) == (
        "q",
        200,
        "Smith Corp.",
    )
    assert (second["referenceId"], second["httpStatusCode"], second["body"]["Id"]) == ("g", 200, account)
