"""The sandbox's test knobs: daily API limit, injected faults, call counts."""

from __future__ import annotations

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceError, SalesforceGeneralError, SalesforceRefusedRequest

from syncd.sandbox.knobs import FaultPlan
from syncd.sandbox.salesforce import SalesforceSandbox


def test_every_api_response_carries_the_usage_header(sf: Salesforce, sandbox: SalesforceSandbox) -> None:
    sandbox.set_daily_limit(500)
    sf.query("SELECT Id FROM Account")
    used = sf.api_usage["api-usage"].used  # type: ignore[union-attr]
    sf.query("SELECT Id FROM Account")
    assert sf.api_usage["api-usage"].used == used + 1  # type: ignore[union-attr]
    assert sf.api_usage["api-usage"].total == 500  # type: ignore[union-attr]


def test_limits_report_daily_api_requests(sf: Salesforce, sandbox: SalesforceSandbox) -> None:
    sandbox.set_daily_limit(1000)
    sandbox.reset_api_usage()
    assert sf.limits()["DailyApiRequests"] == {"Max": 1000, "Remaining": 999}


def test_calls_past_the_daily_limit_are_refused(sf: Salesforce, sandbox: SalesforceSandbox) -> None:
    sandbox.reset_api_usage()
    sandbox.set_daily_limit(2)
    sf.query("SELECT Id FROM Account")
    sf.query("SELECT Id FROM Account")
    with pytest.raises(SalesforceRefusedRequest) as caught:
        sf.query("SELECT Id FROM Account")
    assert caught.value.content == [
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
    ]


def test_a_503_on_the_second_call_only(sf: Salesforce, sandbox: SalesforceSandbox) -> None:
    sandbox.knobs.set_faults(FaultPlan(on_calls={2}, kinds=["503"]))
    sf.query("SELECT Id FROM Account")
    with pytest.raises(SalesforceGeneralError) as caught:
        sf.query("SELECT Id FROM Account")
    assert caught.value.status == 503
    assert sf.query("SELECT Id FROM Account")["totalSize"] == 0


def test_request_limit_fault_is_a_403_with_salesforce_code(
    sf: Salesforce, sandbox: SalesforceSandbox
) -> None:
    sandbox.knobs.set_faults(FaultPlan(on_calls={1}, kinds=["REQUEST_LIMIT_EXCEEDED"]))
    with pytest.raises(SalesforceRefusedRequest) as caught:
        sf.query("SELECT Id FROM Account")
    assert caught.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"


def test_a_500_fault(sf: Salesforce, sandbox: SalesforceSandbox) -> None:
    sandbox.knobs.set_faults(FaultPlan(on_calls={1}, kinds=["500"]))
    with pytest.raises(SalesforceGeneralError) as caught:
        sf.query("SELECT Id FROM Account")
    assert (caught.value.status, caught.value.content[0]["errorCode"]) == (500, "UNKNOWN_EXCEPTION")


def test_a_429_fault(sf: Salesforce, sandbox: SalesforceSandbox) -> None:
    sandbox.knobs.set_faults(FaultPlan(on_calls={1}, kinds=["429"]))
    with pytest.raises(SalesforceError) as caught:
        sf.query("SELECT Id FROM Account")
    assert caught.value.status == 429


def test_a_dropped_connection_gets_no_answer(sf: Salesforce, sandbox: SalesforceSandbox) -> None:
    sandbox.knobs.set_faults(FaultPlan(on_calls={1}, kinds=["drop"]))
    with pytest.raises(requests.exceptions.ConnectionError):
        sf.query("SELECT Id FROM Account")
    assert sf.query("SELECT Id FROM Account")["totalSize"] == 0


def test_unable_to_lock_row_fails_each_record_and_writes_nothing(
    sf: Salesforce, sandbox: SalesforceSandbox
) -> None:
    sandbox.knobs.set_faults(
        FaultPlan(on_calls={1}, kinds=["UNABLE_TO_LOCK_ROW"], only={"composite_sobjects"})
    )
    records = [{"attributes": {"type": "Account"}, "Name": f"A{i}"} for i in range(3)]
    results = sf.restful("composite/sobjects", method="POST", json={"allOrNone": False, "records": records})
    assert [r["errors"][0]["statusCode"] for r in results] == ["UNABLE_TO_LOCK_ROW"] * 3
    assert sandbox.records("Account") == []


def test_unable_to_lock_row_on_a_single_record_call(sf: Salesforce, sandbox: SalesforceSandbox) -> None:
    sandbox.knobs.set_faults(FaultPlan(on_calls={1}, kinds=["UNABLE_TO_LOCK_ROW"]))
    with pytest.raises(SalesforceError) as caught:
        sf.Account.create({"Name": "A"})
    assert caught.value.content[0]["errorCode"] == "UNABLE_TO_LOCK_ROW"


def test_calls_are_counted_by_kind(sf: Salesforce, sandbox: SalesforceSandbox) -> None:
    sandbox.knobs.reset_counts()
    sf.query("SELECT Id FROM Account")
    sf.Account.describe()
    sf.restful("composite/sobjects", method="POST", json={"allOrNone": False, "records": []})
    sf.Account.create({"Name": "A"})
    assert dict(sandbox.knobs.calls) == {
        "query": 1,
        "describe": 1,
        "composite_sobjects": 1,
        "sobject_create": 1,
    }
