"""Any value that reaches SOQL selects exactly that value, checked against the Salesforce stand-in.

Values from the data (match keys, lookup keys) reach SOQL through `SalesforceConnector.find`. For
random strings (quotes, backslashes, LIKE wildcards, SOQL keywords, any Unicode) the query it
builds must find the record holding that value and no other, so no data can change a query.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.salesforce import SalesforceConnector, SalesforceSettings
from syncd.sandbox.salesforce import SalesforceSandbox

SOQL_SPECIALS = "'\"\\%_*() ,=!<>\n\t\r"
values = st.text(
    st.one_of(st.sampled_from(SOQL_SPECIALS), st.characters(blacklist_categories=("Cs", "Cc"))),
    min_size=1,
    max_size=30,
).filter(lambda v: v.strip() == v)
_numbers = itertools.count()


def connector_for(org: SalesforceSandbox, workdir: Path, **extra: Any) -> SalesforceConnector:
    info = org.info()
    settings = SalesforceSettings(
        login_url=info["login_url"],
        username=info["username"],
        password=info["password"],
        security_token=info["security_token"],
        ca_file=info["ca_file"],
        objects=("Account",),
        backoff_seconds=0,
        **extra,
    )
    return SalesforceConnector("crm", settings, workdir)


@pytest.fixture(scope="module")
def crm(org: SalesforceSandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SalesforceConnector]:
    connector = connector_for(org, tmp_path_factory.mktemp("crm"))
    # Neighbours a broken query would also select: a blank, a wildcard-looking one, an ordinary one.
    for neighbour in ("%", "_", "x' OR Name != 'x", "ordinary"):
        org.insert("Account", {"Name": neighbour, "Ext__c": neighbour})
    try:
        yield connector
    finally:
        connector.close()


@given(value=values)
@settings(max_examples=60, deadline=None)
def test_find_with_any_value_selects_exactly_the_record_holding_it(
    value: str, org: SalesforceSandbox, crm: SalesforceConnector
) -> None:
    tag = f"{next(_numbers)}:"  # each example's own records, so earlier examples cannot match
    record_id = org.insert("Account", {"Name": "held", "Ext__c": tag + value})
    assert crm.find("Account", "Ext__c", [tag + value]) == {tag + value: record_id}
    assert crm.find("Account", "Ext__c", [tag + value + "~absent"]) == {}
