"""The `files` connection's configuration block.

Every field carries a description because the editor JSON Schema is generated from this model:
the description is the only help a user sees while typing syncd.yaml.
"""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

WORKBOOK_SUFFIXES = (".xlsx",)
REFUSED_WORKBOOK_SUFFIXES = (".xls", ".xlsm", ".xlsb", ".ods")


class FilesSettings(BaseModel):
    """Where the tables live and how to read them; see the field descriptions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["files"] = Field("files", description="Connection kind: CSV or XLSX files as tables.")
    path: Path = Field(
        description=(
            "A folder of CSV files (stream `Clients` is the file `Clients.csv` in it), a single `.csv` "
            "file (one stream named after the file), or an `.xlsx` workbook (one stream per worksheet). "
            "A relative path is relative to the folder of syncd.yaml."
        )
    )
    keys: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Stream -> header of its key column. Default: the first column; for a stream whose file "
            "does not exist yet, the field the first write matches on (set it to be explicit)."
        ),
    )
    formulas: dict[str, list[str]] = Field(
        default_factory=dict,
        description=(
            "Stream -> columns that legitimately hold spreadsheet formulas. Values written there are "
            "stored as given; in every other column a value that a spreadsheet would run as a formula "
            "(starting with = + - @) is stored with a leading apostrophe."
        ),
    )
    modified: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Stream -> column holding each row's last-edit time (ISO 8601, e.g. a sheet's \"Updated\" "
            "column). It lets a two-way mapping with conflict: newest-wins tell which side was edited "
            "last; without it, the source wins."
        ),
    )
    encoding: str = Field(
        "utf-8-sig",
        description=(
            "Text encoding of CSV files. The default reads UTF-8 with or without the byte-order mark "
            "Excel writes; a file keeps its mark (or lack of one) when syncd rewrites it."
        ),
    )
    delimiter: str = Field(
        ",", min_length=1, max_length=1, description="CSV field separator, e.g. ',' or ';'."
    )
    batch_size: int = Field(500, ge=1, description="Records per batch handed to the engine when reading.")
    header_row: int = Field(
        1,
        ge=1,
        description="Row (CSV record, worksheet row) of the column headers; rows above it are kept as-is.",
    )

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown text encoding {value!r}") from None
        return value

    @field_validator("path")
    @classmethod
    def _supported_workbook(cls, value: Path) -> Path:
        if value.suffix.lower() in REFUSED_WORKBOOK_SUFFIXES:
            raise ValueError(f"{value.suffix} workbooks are not supported; save the workbook as .xlsx or CSV")
        return value

    def is_workbook(self) -> bool:
        return self.path.suffix.lower() in WORKBOOK_SUFFIXES

    def is_single_csv(self) -> bool:
        return self.path.suffix.lower() == ".csv"
