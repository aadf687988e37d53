"""The Sheets connector against the Sheets sandbox, for the conformance suite.

The harness seeds and inspects the worksheet through the sandbox's back door, never through the
connector, so the suite checks the connector against an independent view of the sheet.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from connectors.sheets import SheetsConnector, SheetsSettings
from syncd.records import Connector
from syncd.sandbox.sheets import SheetsSandbox

from .harness import Harness

COLUMNS = ["Id", "Name", "City"]


class SheetsHarness(Harness):
    stream: ClassVar[str] = "Clients"
    match_field: ClassVar[str] = "Id"

    def __init__(self, workdir: Path, server: SheetsSandbox | None = None) -> None:
        super().__init__(workdir)
        self._own = server is None
        self.server = server or SheetsSandbox(tls=True).start()
        if self._own:  # the suite makes few calls, but per-minute quotas would make them wait
            self.server.quotas.read_per_minute = self.server.quotas.write_per_minute = None
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
