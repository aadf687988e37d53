"""Stand-ins shared by the bad-input properties: one server per module, since hypothesis runs many
examples against it and each example names its own records (so examples never see each other's)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from syncd.sandbox.salesforce import SalesforceSandbox
from syncd.sandbox.sheets import SheetsSandbox
from tests.stand_ins import salesforce_org, sheets_without_quotas


@pytest.fixture(scope="module")
def org() -> Iterator[SalesforceSandbox]:
    yield from salesforce_org()


@pytest.fixture(scope="module")
def sheets_server() -> Iterator[SheetsSandbox]:
    yield from sheets_without_quotas()
