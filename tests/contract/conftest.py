"""The registry of connectors the conformance suite runs against.

Add a connector to the suite by writing a `Harness` subclass and listing it here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .file_harnesses import CsvHarness, XlsxHarness
from .harness import Harness
from .salesforce_harness import SalesforceHarness
from .sheets_harness import SheetsHarness

HARNESSES: dict[str, type[Harness]] = {
    "files-csv": CsvHarness,
    "files-xlsx": XlsxHarness,
    "sheets": SheetsHarness,
    "salesforce": SalesforceHarness,
}


@pytest.fixture(params=sorted(HARNESSES))
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    chosen = HARNESSES[request.param](tmp_path)
    yield chosen
    chosen.cleanup()
