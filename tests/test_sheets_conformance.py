"""The connector conformance suite (tests/contract) run against the Sheets connector and sandbox.

The harness seeds and inspects the worksheet through the sandbox's back door, never through the
connector. It lives here until the lead registers `SheetsHarness` in tests/contract/conftest.py.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from connectors.sheets import SheetsConnector, SheetsSettings
from syncd.records import Connector
from syncd.sandbox.sheets import SheetsSandbox
from tests.contract.harness import Harness
from tests.contract.test_conformance import *  # noqa: F403  (the suite's tests run here, on this harness)

logging.getLogger("werkzeug").setLevel(logging.WARNING)

COLUMNS = ["Id", "Name", "City"]


class SheetsHarness(Harness):
    stream: ClassVar[str] = "Clients"
    match_field: ClassVar[str] = "Id"

    def __init__(self, workdir: Path, server: SheetsSandbox | None = None) -> None:
        super().__init__(workdir)
        self._own = server is None
        self.server = server or SheetsSandbox(tls=True).start()
        self.key = self.server.create_spreadsheet("roster", {self.stream: [COLUMNS]})

    def connector(self, batch_size: int = 500) -> Connector:
        info = self.server.info()
        settings = SheetsSettings(
            spreadsheet=self.key,
            service_account_file=Path(info["service_account_file"]),
            endpoint=info["base_url"],
            ca_file=Path(info["ca_file"]),
            keys={self.stream: "Id"},
            batch_size=batch_size,
        )
        return SheetsConnector("roster", settings, self.workdir)

    def seed(self, count: int) -> list[str]:
        rows = self.server.values(self.key, self.stream)
        keys = [self.ident(len(rows) - 1 + i) for i in range(count)]
        fresh = [[str(self.fields_for(k)[c]) for c in COLUMNS] for k in keys]
        self.server.set_values(self.key, self.stream, (len(rows), 0), fresh, raw=True)
        return keys

    def mutate(self, key: str) -> None:
        for number, row in enumerate(self.server.values(self.key, self.stream)):
            if row and row[0] == key:
                self.server.set_values(self.key, self.stream, (number, 1), [[f"{row[1]} (edited)"]], raw=True)

    def snapshot(self) -> object:
        return self.server.values(self.key, self.stream, "FORMULA")

    def cleanup(self) -> None:
        if self._own:
            self.server.stop()


@pytest.fixture(scope="module")
def sheets_server() -> Iterator[SheetsSandbox]:
    with SheetsSandbox() as server:
        server.quotas.read_per_minute = server.quotas.write_per_minute = None
        yield server


@pytest.fixture
def harness(sheets_server: SheetsSandbox, tmp_path: Path) -> Iterator[Harness]:
    chosen = SheetsHarness(tmp_path, sheets_server)
    yield chosen
    chosen.cleanup()
