"""Fixtures for the Salesforce sandbox tests: a fresh org per test, reached by simple-salesforce over HTTPS."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from simple_salesforce import Salesforce

from syncd.sandbox.salesforce import SalesforceSandbox
from tests.sandbox.salesforce_clients import API_VERSION, client


@pytest.fixture
def sandbox() -> Iterator[SalesforceSandbox]:
    org = SalesforceSandbox(api_version=API_VERSION).start()
    yield org
    org.stop()


@pytest.fixture
def sf(sandbox: SalesforceSandbox) -> Salesforce:
    return client(sandbox)
