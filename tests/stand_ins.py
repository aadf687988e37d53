"""The Salesforce and Sheets stand-ins as the crash, fault and bad-input suites start them.

One place for "an org seeded with the sequence scenario's fields" and "a sheet server without
per-minute quotas" (quotas are what tests/faults tests on purpose; elsewhere they only slow a run).
"""

from __future__ import annotations

from collections.abc import Iterator

from syncd.sandbox.salesforce import SalesforceSandbox
from syncd.sandbox.sheets import SheetsSandbox
from tests.chaos.scenarios import SF_SEED


def salesforce_org() -> Iterator[SalesforceSandbox]:
    sandbox = SalesforceSandbox(seed=SF_SEED).start()
    try:
        yield sandbox
    finally:
        sandbox.stop()


def sheets_without_quotas() -> Iterator[SheetsSandbox]:
    server = SheetsSandbox(tls=True).start()
    server.quotas.read_per_minute = server.quotas.write_per_minute = None
    try:
        yield server
    finally:
        server.stop()
