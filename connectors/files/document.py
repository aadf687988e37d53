"""What the connector needs from a file format (CSV, XLSX), so its logic is written once."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from connectors.files.table import Row, Table


class TableDocument(Protocol):
    """One stream's table as loaded from its file, able to write itself back."""

    table: Table

    def place(self, row: Row) -> str:
        """Where a row is, for messages: "Clients.csv:14"."""
        ...

    def raw(self, row: Row) -> str:
        """The row as CSV text, kept with a read problem so nothing read is lost."""
        ...

    def render(self) -> bytes:
        """The whole file with the table's changes applied and everything else unchanged."""
        ...


class FileFormat(Protocol):
    def stream_names(self) -> list[str]: ...

    def file_of(self, stream: str) -> Path:
        """The file that holds `stream` (for a workbook, the same file for every stream)."""
        ...

    def label(self, stream: str) -> str:
        """How messages name the stream's file, as the user configured it."""
        ...

    def open(
        self, stream: str, data: bytes | None, *, new_key: str | None = None, editable: bool = False
    ) -> TableDocument | None:
        """The stream's table from the file bytes `data` (None: the file does not exist).

        A stream with no file, sheet or header yet gives an empty table keyed by `new_key`, so a
        write can create it; without `new_key` it gives None. Only an `editable` document can
        `render`; the others are loaded the cheapest way for reading.
        """
        ...
