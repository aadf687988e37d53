"""Turning a header row into column names, refusing headers a table cannot be keyed by.

A blank or repeated header cell would make "the column named X" ambiguous, and guessing would
write values into the wrong column; the user has to fix the file, so it is a ConfigError that
names the file and the cell.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from syncd.errors import ConfigError, ConfigProblem
from syncd.records import to_jsonable


def header_text(cell: Any) -> str:
    return "" if cell is None else str(to_jsonable(cell)).strip()


def column_names(cells: Sequence[Any], file: str, line: int, cell_ref: Callable[[int], str]) -> list[str]:
    """The column names of a header row; trailing blank cells are not columns (spreadsheets pad rows)."""
    names = [header_text(cell) for cell in cells]
    while names and not names[-1]:
        names.pop()
    problems: list[ConfigProblem] = []
    first_seen: dict[str, int] = {}
    for index, name in enumerate(names):
        if not name:
            problems.append(ConfigProblem(file, line, index + 1, "", f"{cell_ref(index)} has a blank header"))
        elif name in first_seen:
            problems.append(
                ConfigProblem(
                    file,
                    line,
                    index + 1,
                    "",
                    f"{cell_ref(index)} repeats the header {name!r} of {cell_ref(first_seen[name])}",
                )
            )
        else:
            first_seen[name] = index
    if problems:
        raise ConfigError(problems)
    return names


def key_column(names: Sequence[str], configured: str | None, file: str, line: int) -> str:
    """The configured key column, which must be a header, or else the first column."""
    if configured is None:
        return names[0]
    if configured not in names:
        listed = ", ".join(repr(n) for n in names)
        raise ConfigError(
            [
                ConfigProblem(
                    file, line, None, "", f"key column {configured!r} is not a header (headers: {listed})"
                )
            ]
        )
    return configured
