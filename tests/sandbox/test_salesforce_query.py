"""SOQL over /query and /queryAll: filtering, ordering, paging and errors, as simple-salesforce sees them."""

from __future__ import annotations

from typing import Any

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceError, SalesforceMalformedRequest
from simple_salesforce.format import format_soql

from syncd.sandbox.salesforce import SalesforceSandbox


def names(result: dict[str, Any]) -> list[str]:
    return [r["Name"] for r in result["records"]]


def create_accounts(sf: Salesforce, count: int, prefix: str = "Acct") -> list[str]:
    """Accounts written 200 per sObject Collections call, so each call's records share one SystemModstamp."""
    ids: list[str] = []
    for start in range(0, count, 200):
        records = [
            {"attributes": {"type": "Account"}, "Name": f"{prefix} {i:05d}"}
            for i in range(start, min(count, start + 200))
        ]
        results = sf.restful(
            "composite/sobjects", method="POST", json={"allOrNone": True, "records": records}
        )
        ids += [r["id"] for r in results]
    return ids


def refusal(sf: Salesforce, query: str) -> dict[str, Any]:
    with pytest.raises(SalesforceError) as caught:
        sf.query(query)
    content = caught.value.content
    assert isinstance(content, list)
    return dict(content[0])


def test_results_page_at_2000_records_through_next_records_url(sf: Salesforce) -> None:
    create_accounts(sf, 2300)
    first = sf.query("SELECT Id, Name FROM Account ORDER BY Name")
    assert (first["totalSize"], first["done"], len(first["records"])) == (2300, False, 2000)
    assert first["nextRecordsUrl"].startswith("/services/data/v62.0/query/")
    second = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert (second["done"], len(second["records"])) == (True, 300)
    assert names(first) + names(second) == [f"Acct {i:05d}" for i in range(2300)]


def test_one_collection_call_shares_a_system_modstamp_and_id_breaks_the_tie(sf: Salesforce) -> None:
    create_accounts(sf, 400)
    rows = sf.query_all("SELECT Id, SystemModstamp FROM Account ORDER BY SystemModstamp, Id")["records"]
    stamps = [r["SystemModstamp"] for r in rows]
    assert len(set(stamps)) == 2 and stamps == sorted(stamps)
    ids = [r["Id"] for r in rows]
    assert ids[:200] == sorted(ids[:200])


def test_cursor_query_resumes_exactly_after_a_record_among_equal_stamps(sf: Salesforce) -> None:
    create_accounts(sf, 2300)
    rows = sf.query_all("SELECT Id, SystemModstamp FROM Account ORDER BY SystemModstamp, Id")["records"]
    last = rows[2049]
    rest = sf.query_all(
        format_soql(
            "SELECT Id FROM Account WHERE SystemModstamp > {ts:literal} OR (SystemModstamp = {ts:literal} "
            "AND Id > {id}) ORDER BY SystemModstamp, Id",
            ts=last["SystemModstamp"].replace(".000+0000", "Z").replace("+0000", "Z"),
            id=last["Id"],
        )
    )["records"]
    assert [r["Id"] for r in rest] == [r["Id"] for r in rows[2050:]]


def test_a_value_full_of_quotes_and_backslashes_selects_exactly_itself(sf: Salesforce) -> None:
    tricky = "O'Brien \\\"Ltd\\\" \\' 100% _x_ \n"
    create_ids = [sf.Account.create({"Name": n})["id"] for n in (tricky, "O'Brien", "OBrien \\ Ltd")]
    found = sf.query(format_soql("SELECT Id, Name FROM Account WHERE Name = {}", tricky))
    assert [r["Id"] for r in found["records"]] == [create_ids[0]]
    assert names(found) == [tricky]


def test_like_wildcards_can_be_escaped(sf: Salesforce) -> None:
    for name in ("50% off", "500 off", "5_ deal", "55 deal"):
        sf.Account.create({"Name": name})
    assert names(sf.query(format_soql("SELECT Name FROM Account WHERE Name LIKE '{:like}%'", "50%"))) == [
        "50% off"
    ]
    assert names(sf.query(format_soql("SELECT Name FROM Account WHERE Name LIKE '{:like}%'", "5_"))) == [
        "5_ deal"
    ]
    assert set(names(sf.query("SELECT Name FROM Account WHERE Name LIKE '5_ %'"))) == {"5_ deal", "55 deal"}


def test_string_comparison_is_case_insensitive(sf: Salesforce) -> None:
    sf.Account.create({"Name": "ACME"})
    assert names(sf.query("SELECT Name FROM Account WHERE Name = 'acme'")) == ["ACME"]


def test_relationship_paths_return_nested_parents(sf: Salesforce, sandbox: SalesforceSandbox) -> None:
    account = sandbox.insert("Account", {"Name": "Parent", "AccountNumber": "AN-1"})
    sandbox.insert("Contact", {"LastName": "Child", "AccountId": account})
    sandbox.insert("Contact", {"LastName": "Orphan"})
    rows = sf.query(
        "SELECT LastName, Account.AccountNumber, Owner.Name FROM Contact WHERE Account.AccountNumber = 'AN-1'"
    )["records"]
    assert len(rows) == 1
    assert rows[0]["Account"]["AccountNumber"] == "AN-1"
    assert rows[0]["Account"]["attributes"] == {
        "type": "Account",
        "url": f"/services/data/v62.0/sobjects/Account/{account}",
    }
    assert rows[0]["Owner"]["Name"] == "Account Coordinator"
    orphan = sf.query("SELECT Account.Name FROM Contact WHERE LastName = 'Orphan'")["records"][0]
    assert orphan["Account"] is None


def test_filters_by_in_not_in_null_and_numbers(sf: Salesforce, sandbox: SalesforceSandbox) -> None:
    sandbox.insert("Account", {"Name": "A", "Type": "Customer - Direct", "NumberOfEmployees": 10})
    sandbox.insert("Account", {"Name": "B", "Type": "Prospect", "NumberOfEmployees": 500})
    sandbox.insert("Account", {"Name": "C"})
    assert names(sf.query("SELECT Name FROM Account WHERE Type IN ('Prospect', 'Other')")) == ["B"]
    assert names(sf.query("SELECT Name FROM Account WHERE Type NOT IN ('Prospect') ORDER BY Name")) == [
        "A",
        "C",
    ]
    assert names(sf.query("SELECT Name FROM Account WHERE Type = null")) == ["C"]
    assert names(sf.query("SELECT Name FROM Account WHERE Type != 'Prospect' ORDER BY Name")) == ["A", "C"]
    assert names(sf.query("SELECT Name FROM Account WHERE NumberOfEmployees > 10.5")) == ["B"]
    assert names(sf.query("SELECT Name FROM Account WHERE NOT (Name = 'A' OR Name = 'B')")) == ["C"]


def test_date_and_datetime_literals(sf: Salesforce, sandbox: SalesforceSandbox) -> None:
    account = sandbox.insert("Account", {"Name": "A"})
    sandbox.insert("Order", {"AccountId": account, "EffectiveDate": "2024-01-15", "Name": "old"})
    sandbox.insert("Order", {"AccountId": account, "EffectiveDate": "2099-01-01", "Name": "future"})
    assert names(sf.query("SELECT Name FROM Order WHERE EffectiveDate < 2024-02-01")) == ["old"]
    assert names(sf.query("SELECT Name FROM Order WHERE EffectiveDate > TODAY")) == ["future"]
    assert sf.query("SELECT Id FROM Order WHERE CreatedDate = LAST_N_DAYS:1")["totalSize"] == 2
    assert sf.query("SELECT Id FROM Order WHERE CreatedDate < 2000-01-01T00:00:00Z")["totalSize"] == 0
    assert sf.query("SELECT Id FROM Order WHERE CreatedDate = YESTERDAY")["totalSize"] == 0


def test_order_by_with_nulls_first_and_last(sf: Salesforce, sandbox: SalesforceSandbox) -> None:
    for name, phone in (("A", "2"), ("B", None), ("C", "1")):
        sandbox.insert("Account", {"Name": name, "Phone": phone})
    assert names(sf.query("SELECT Name FROM Account ORDER BY Phone")) == ["B", "C", "A"]
    assert names(sf.query("SELECT Name FROM Account ORDER BY Phone DESC")) == ["A", "C", "B"]
    assert names(sf.query("SELECT Name FROM Account ORDER BY Phone ASC NULLS LAST")) == ["C", "A", "B"]


def test_limit_and_offset(sf: Salesforce, sandbox: SalesforceSandbox) -> None:
    for i in range(5):
        sandbox.insert("Account", {"Name": f"N{i}"})
    result = sf.query("SELECT Name FROM Account ORDER BY Name LIMIT 2 OFFSET 1")
    assert (result["totalSize"], names(result)) == (2, ["N1", "N2"])


def test_count_forms(sf: Salesforce, sandbox: SalesforceSandbox) -> None:
    for i in range(3):
        sandbox.insert("Account", {"Name": f"N{i}"})
    bare = sf.query("SELECT COUNT() FROM Account")
    assert (bare["totalSize"], bare["records"]) == (3, [])
    grouped = sf.query("select count(Id) from Account")
    assert grouped["records"] == [{"attributes": {"type": "AggregateResult"}, "expr0": 3}]


def test_query_all_includes_soft_deleted_rows_and_query_does_not(
    sf: Salesforce, sandbox: SalesforceSandbox
) -> None:
    record_id = sandbox.insert("Account", {"Name": "Deleted"})
    sandbox.delete("Account", record_id)
    assert sf.query("SELECT Id FROM Account")["totalSize"] == 0
    assert (
        sf.query_all("SELECT Id FROM Account WHERE IsDeleted = true", include_deleted=True)["totalSize"] == 1
    )


def test_malformed_query(sf: Salesforce) -> None:
    error = refusal(sf, "SELECT Id FROM Account WHERE")
    assert error == {
        "message": "\nSELECT Id FROM Account WHERE\n" + " " * 28 + "^\nERROR at Row:1:Column:29\n"
        "unexpected token: '<EOF>'",
        "errorCode": "MALFORMED_QUERY",
    }


def test_unknown_field(sf: Salesforce) -> None:
    error = refusal(sf, "SELECT Id, Colour__c FROM Account")
    assert error["errorCode"] == "INVALID_FIELD"
    assert "No such column 'Colour__c' on entity 'Account'" in error["message"]


def test_unknown_object(sf: Salesforce) -> None:
    error = refusal(sf, "SELECT Id FROM Invoice__c")
    assert error["errorCode"] == "INVALID_TYPE"
    assert "sObject type 'Invoice__c' is not supported" in error["message"]


def test_quoted_date_is_refused(sf: Salesforce) -> None:
    error = refusal(sf, "SELECT Id FROM Order WHERE EffectiveDate = '2024-01-01'")
    assert error["errorCode"] == "INVALID_FIELD"
    assert error["message"].endswith(
        "value of filter criterion for field 'EffectiveDate' must be of type date and should not be enclosed in quotes"
    )


def test_mixing_and_or_without_parentheses_is_refused(sf: Salesforce) -> None:
    assert refusal(sf, "SELECT Id FROM Account WHERE Name = 'a' AND Phone = 'b' OR Fax = 'c'")[
        "errorCode"
    ] == ("MALFORMED_QUERY")


def test_invalid_locator_is_refused(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query_more("01gNOPE-2000")
    assert caught.value.content[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_only_ten_query_cursors_stay_open(sf: Salesforce) -> None:
    create_accounts(sf, 2001)
    oldest = sf.query("SELECT Id FROM Account")["nextRecordsUrl"]
    for _ in range(10):
        sf.query("SELECT Id FROM Account")
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query_more(oldest, identifier_is_url=True)
    assert caught.value.content[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_child_subquery_nests_children_or_null(sf: Salesforce, sandbox: SalesforceSandbox) -> None:
    parent = sandbox.insert("Account", {"Name": "Parent"})
    sandbox.insert("Account", {"Name": "Childless"})
    for name in ("Ann", "Bob"):
        sandbox.insert("Contact", {"LastName": name, "AccountId": parent})
    rows = sf.query("SELECT Name, (SELECT LastName FROM Contacts) FROM Account ORDER BY Name")["records"]
    assert rows[0]["Contacts"] is None
    assert rows[1]["Contacts"]["totalSize"] == 2
    assert [c["LastName"] for c in rows[1]["Contacts"]["records"]] == ["Ann", "Bob"]
