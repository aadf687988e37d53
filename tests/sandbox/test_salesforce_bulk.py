"""Bulk API 2.0 ingest and query jobs, driven by simple-salesforce's bulk2 client and by raw calls."""

from __future__ import annotations

import csv
import io

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceError

from syncd.sandbox.salesforce import SalesforceSandbox
from tests.sandbox.salesforce_clients import running_org


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_insert_job_round_trip_reports_successes_and_failures(
    sf: Salesforce, sandbox: SalesforceSandbox
) -> None:
    records = [{"LastName": f"L{i}", "Email": f"l{i}@example.com"} for i in range(450)]
    records[300]["LastName"] = ""
    [summary] = sf.bulk2.Contact.insert(records=records, wait=0)
    assert (summary["numberRecordsProcessed"], summary["numberRecordsFailed"]) == (450, 1)
    succeeded = rows(sf.bulk2.Contact.get_successful_records(summary["job_id"]))
    failed = rows(sf.bulk2.Contact.get_failed_records(summary["job_id"]))
    assert len(succeeded) == 449 and all(
        r["sf__Created"] == "true" and r["sf__Id"].startswith("003") for r in succeeded
    )
    assert [(r["Email"], r["sf__Error"]) for r in failed] == [
        ("l300@example.com", "REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --")
    ]
    assert len(sandbox.records("Contact")) == 449


def test_records_of_one_chunk_share_a_system_modstamp(sf: Salesforce, sandbox: SalesforceSandbox) -> None:
    sf.bulk2.Account.insert(records=[{"Name": f"A{i}"} for i in range(450)], wait=0)
    stamps = [r["SystemModstamp"] for r in sandbox.records("Account")]
    assert [stamps.count(s) for s in sorted(set(stamps))] == [200, 200, 50]


def test_bad_csv_values_fail_their_row_with_invalid_type(sf: Salesforce) -> None:
    [summary] = sf.bulk2.Account.insert(records=[{"Name": "ok", "NumberOfEmployees": "many"}], wait=0)
    [failure] = rows(sf.bulk2.Account.get_failed_records(summary["job_id"]))
    assert failure["sf__Error"].startswith("INVALID_TYPE_ON_FIELD_IN_RECORD:")


def test_upsert_update_and_delete_jobs() -> None:
    seed = {
        "objects": {
            "Product2": {"fields": {"Sku__c": {"type": "string", "externalId": True, "unique": True}}}
        }
    }
    with running_org(seed) as (org, sf):
        sf.bulk2.Product2.upsert(
            records=[{"Sku__c": "S1", "Name": "One"}, {"Sku__c": "S2", "Name": "Two"}],
            external_id_field="Sku__c",
            wait=0,
        )
        [summary] = sf.bulk2.Product2.upsert(
            records=[{"Sku__c": "S1", "Name": "Uno"}, {"Sku__c": "S3", "Name": "Three"}],
            external_id_field="Sku__c",
            wait=0,
        )
        created = {
            r["Sku__c"]: r["sf__Created"]
            for r in rows(sf.bulk2.Product2.get_successful_records(summary["job_id"]))
        }
        assert created == {"S1": "false", "S3": "true"}
        by_sku = {r["Sku__c"]: r for r in org.records("Product2")}
        assert {k: r["Name"] for k, r in by_sku.items()} == {"S1": "Uno", "S2": "Two", "S3": "Three"}
        sf.bulk2.Product2.update(records=[{"Id": by_sku["S2"]["Id"], "ProductCode": "P-2"}], wait=0)
        sf.bulk2.Product2.delete(records=[{"Id": by_sku["S3"]["Id"]}], wait=0)
        assert sorted((r["Sku__c"], r["ProductCode"]) for r in org.records("Product2")) == [
            ("S1", None),
            ("S2", "P-2"),
        ]


def test_query_job_pages_csv_with_a_locator(sf: Salesforce, sandbox: SalesforceSandbox) -> None:
    account = sandbox.insert("Account", {"Name": "Parent"})
    for i in range(5):
        sandbox.insert("Contact", {"LastName": f"L{i}", "AccountId": account if i % 2 == 0 else None})
    pages = list(
        sf.bulk2.Contact.query(
            "SELECT LastName, Account.Name FROM Contact ORDER BY LastName", max_records=2, wait=0
        )
    )
    assert len(pages) == 3
    all_rows = [row for page in pages for row in rows(page)]
    assert [(r["LastName"], r["Account.Name"]) for r in all_rows] == [
        ("L0", "Parent"),
        ("L1", ""),
        ("L2", "Parent"),
        ("L3", ""),
        ("L4", "Parent"),
    ]


def test_uploading_to_a_closed_job_is_refused(sf: Salesforce) -> None:
    job = sf.restful("jobs/ingest", method="POST", json={"object": "Account", "operation": "insert"})
    sf.restful(f"jobs/ingest/{job['id']}", method="PATCH", json={"state": "UploadComplete"})
    answer = sf.session.put(
        f"{sf.base_url}jobs/ingest/{job['id']}/batches",
        data="Name\nLate\n",
        headers={**sf.headers, "Content-Type": "text/csv"},
        timeout=10,
    )
    assert answer.status_code == 409
    assert answer.json()[0]["errorCode"] == "INVALIDJOBSTATE"


def test_ingest_job_for_an_unknown_operation_is_refused(sf: Salesforce) -> None:
    with pytest.raises(SalesforceError) as caught:
        sf.restful("jobs/ingest", method="POST", json={"object": "Account", "operation": "merge"})
    assert caught.value.content[0]["errorCode"] == "INVALIDJOB"
