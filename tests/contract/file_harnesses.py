"""Conformance harnesses for the files connector: a CSV folder and an XLSX workbook.

They seed and inspect the files with the csv module and openpyxl directly, never through the
connector.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import ClassVar

import openpyxl

from connectors.files import FilesConnector, FilesSettings
from syncd.records import Connector

from .harness import Harness

COLUMNS = ["Id", "Name", "City"]


class CsvHarness(Harness):
    stream: ClassVar[str] = "Clients"
    match_field: ClassVar[str] = "Id"

    @property
    def file(self) -> Path:
        return self.workdir / "roster" / f"{self.stream}.csv"

    def connector(self, batch_size: int = 500) -> Connector:
        settings = FilesSettings(path=Path("roster"), keys={self.stream: "Id"}, batch_size=batch_size)
        return FilesConnector("roster", settings, self.workdir)

    def seed(self, count: int) -> list[str]:
        rows = self._rows()
        keys = [self.ident(len(rows) + i) for i in range(count)]
        rows.extend([str(self.fields_for(key)[c]) for c in COLUMNS] for key in keys)
        self._store(rows)
        return keys

    def mutate(self, key: str) -> None:
        rows = self._rows()
        for row in rows:
            if row[0] == key:
                row[1] += " (edited)"
        self._store(rows)

    def snapshot(self) -> object:
        return self.file.read_bytes()

    def _rows(self) -> list[list[str]]:
        if not self.file.exists():
            return []
        return list(csv.reader(io.StringIO(self.file.read_text(encoding="utf-8"), newline="")))[1:]

    def _store(self, rows: list[list[str]]) -> None:
        out = io.StringIO()
        csv.writer(out).writerows([COLUMNS, *rows])
        self.file.parent.mkdir(parents=True, exist_ok=True)
        self.file.write_text(out.getvalue(), encoding="utf-8", newline="")


class XlsxHarness(Harness):
    stream: ClassVar[str] = "Clients"
    match_field: ClassVar[str] = "Id"

    @property
    def file(self) -> Path:
        return self.workdir / "roster.xlsx"

    def connector(self, batch_size: int = 500) -> Connector:
        settings = FilesSettings(path=Path("roster.xlsx"), keys={self.stream: "Id"}, batch_size=batch_size)
        return FilesConnector("roster", settings, self.workdir)

    def seed(self, count: int) -> list[str]:
        if self.file.exists():
            workbook = openpyxl.load_workbook(self.file)
            sheet = workbook[self.stream]
        else:
            workbook = openpyxl.Workbook()
            workbook.create_sheet("Notes")["A1"] = "another sheet the connector must leave alone"
            sheet = workbook.active
            sheet.title = self.stream
            sheet.append(COLUMNS)
        first = sheet.max_row - 1
        keys = [self.ident(first + i) for i in range(count)]
        for key in keys:
            fields = self.fields_for(key)
            sheet.append([fields[c] for c in COLUMNS])
        workbook.save(self.file)
        return keys

    def mutate(self, key: str) -> None:
        workbook = openpyxl.load_workbook(self.file)
        for row in workbook[self.stream].iter_rows(min_row=2):
            if row[0].value == key:
                row[1].value = f"{row[1].value} (edited)"
        workbook.save(self.file)

    def snapshot(self) -> object:
        return self.file.read_bytes()
