"""SOQL-injection payloads into every value that reaches SOQL: none changes what a query selects.

Data reaches SOQL in two places: `find` (match keys before a create, and lookups) and the read
cursor (the last record Id, stored in the journal, which a damaged or edited journal could hold
anything in). Against the Salesforce stand-in, which parses and runs SOQL as Salesforce does, a
payload must select exactly the records holding that very text: none when none does, never others.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.salesforce import SalesforceConnector
from syncd.errors import SyncdError
from syncd.sandbox.salesforce import SalesforceSandbox
from tests.badinput.test_soql_values import connector_for
from tests.chaos.scenarios import SF_SEED

PAYLOADS = [
    "x' OR Name != 'x",
    "x' OR Ext__c LIKE '%",
    "%",
    "_",
    "' OR '1'='1",
    "\\' OR Name != \\'",
    "x\\",
    "x') OR (Name != 'x",
    "x' AND Id != null AND Name != 'x",
    "x'--",
    "x' LIMIT 1 OFFSET 0 --",
    "x'\nOR Name != 'x",
    "null",
    "' OR Ext__c = null OR Ext__c = '",
]
NEIGHBOURS = ["x", "ordinary", "another"]


@pytest.fixture(scope="module")
def org() -> Iterator[SalesforceSandbox]:
    sandbox = SalesforceSandbox(seed=SF_SEED).start()
    for value in NEIGHBOURS:
        sandbox.insert("Account", {"Name": value, "Ext__c": value})
    try:
        yield sandbox
    finally:
        sandbox.stop()


@pytest.fixture(scope="module")
def crm(org: SalesforceSandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SalesforceConnector]:
    connector = connector_for(org, tmp_path_factory.mktemp("crm"))
    try:
        yield connector
    finally:
        connector.close()


@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_payload_as_a_key_selects_nothing_when_no_record_holds_it(
    payload: str, crm: SalesforceConnector
) -> None:
    assert crm.find("Account", "Ext__c", [payload]) == {}


@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_payload_as_a_key_selects_exactly_the_record_holding_it(
    payload: str, org: SalesforceSandbox, crm: SalesforceConnector
) -> None:
    value = f"held:{payload}"[:40]
    record_id = org.insert("Account", {"Name": "held", "Ext__c": value})
    assert crm.find("Account", "Ext__c", [value, "ordinary"]) == {
        value: record_id,
        "ordinary": next(r["Id"] for r in org.records("Account") if r["Ext__c"] == "ordinary"),
    }


@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_payload_in_the_read_cursor_never_widens_the_read(
    payload: str, org: SalesforceSandbox, tmp_path: Path
) -> None:
    connector = connector_for(org, tmp_path, overlap_seconds=0)  # so the cursor's Id is in the query
    try:
        cursor = [batch.cursor for batch in connector.read("Account", None)][-1]
        assert isinstance(cursor, dict) and cursor.get("id")
        tampered = {**cursor, "id": payload}
        try:
            again = [r for batch in connector.read("Account", tampered) for r in batch.records]
        except SyncdError:  # refusing a damaged cursor is fine; reading what is not new is not
            return
    finally:
        connector.close()
    at_or_after = [r for r in org.records("Account") if r["SystemModstamp"] >= str(cursor["stamp"])]
    assert len(again) <= len(at_or_after)
