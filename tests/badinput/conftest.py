"""Stand-ins shared by the bad-input properties: one server per module, since hypothesis runs many
examples against it and each example names its own records (so examples never see each other's)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from syncd.sandbox.salesforce import SalesforceSandbox
from syncd.sandbox.sheets import SheetsSandbox
from tests.chaos.scenarios import SF_SEED


@pytest.fixture(scope="module")
def org() -> Iterator[SalesforceSandbox]:
    sandbox = SalesforceSandbox(seed=SF_SEED).start()
    try:
        yield sandbox
    finally:
        sandbox.stop()


@pytest.fixture(scope="module")
def sheets_server() -> Iterator[SheetsSandbox]:
    server = SheetsSandbox(tls=True).start()
    server.quotas.read_per_minute = server.quotas.write_per_minute = None
    try:
        yield server
    finally:
        server.stop()
