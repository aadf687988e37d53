"""A1 notation as the Google Sheets API reads and writes it.

Both the Sheets sandbox and the Sheets connector build and read ranges such as `'It''s'!A2:C`; keeping
the grammar in one place means the two can never disagree about quoting, open ranges or bounds.

Indices are 0-based and half-open (like the API's `GridRange`); `None` means "open on that side".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_COLUMNS = 18278  # column ZZZ: the largest the API accepts in A1 notation
MAX_ROWS = 10_000_000

_CELL = re.compile(r"^\$?([A-Za-z]{1,3})?\$?([0-9]{1,8})?$")
_PLAIN_TITLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LOOKS_LIKE_CELL = re.compile(r"^(?:[A-Za-z]{1,3}[0-9]+|[Rr][0-9]*[Cc][0-9]*)$")


class A1Error(ValueError):
    """The text is not a range the API would accept; the message is the API's own wording."""


def column_letters(index: int) -> str:
    """0 -> "A", 25 -> "Z", 26 -> "AA"."""
    if index < 0:
        raise ValueError(f"negative column index {index}")
    letters = ""
    n = index + 1
    while n:
        n, rem = divmod(n - 1, 26)
        letters = chr(ord("A") + rem) + letters
    return letters


def column_index(letters: str) -> int:
    """ "A" -> 0, "AA" -> 26 (case-insensitive)."""
    n = 0
    for ch in letters.upper():
        if not "A" <= ch <= "Z":
            raise ValueError(f"not a column: {letters!r}")
        n = n * 26 + (ord(ch) - ord("A") + 1)
    return n - 1


def quote_sheet_title(title: str) -> str:
    """Quote a sheet title the way the API does in the ranges it returns (`Sheet1`, `'My sheet'`)."""
    if _PLAIN_TITLE.match(title) and not _LOOKS_LIKE_CELL.match(title):
        return title
    return "'" + title.replace("'", "''") + "'"


@dataclass(frozen=True)
class A1Range:
    """A parsed range; `sheet` is None when the text named no sheet (the first sheet is meant)."""

    sheet: str | None
    start_row: int | None = None
    end_row: int | None = None
    start_col: int | None = None
    end_col: int | None = None
    #: The text after `!` was not cell notation: it may be a named range (the server decides).
    name: str | None = None

    @property
    def whole_sheet(self) -> bool:
        return self.name is None and all(
            v is None for v in (self.start_row, self.end_row, self.start_col, self.end_col)
        )


@dataclass(frozen=True)
class Bounded:
    """A range resolved against a grid: every side known, 0-based half-open."""

    sheet: str
    start_row: int
    end_row: int
    start_col: int
    end_col: int

    @property
    def rows(self) -> int:
        return self.end_row - self.start_row

    @property
    def cols(self) -> int:
        return self.end_col - self.start_col

    def a1(self) -> str:
        """The range as the API echoes it: `Sheet1!A1:Z1000`, or `Sheet1!D4` for one cell."""
        first = f"{column_letters(self.start_col)}{self.start_row + 1}"
        last = f"{column_letters(self.end_col - 1)}{self.end_row}"
        cells = first if first == last else f"{first}:{last}"
        return f"{quote_sheet_title(self.sheet)}!{cells}"


def split_sheet(text: str) -> tuple[str | None, str]:
    """Split `'It''s'!A1` into (`It's`, `A1`); (None, text) when no sheet is named.

    An unquoted title may contain spaces and any character but `!` after which the cells come, so
    the split is at the last `!` (the API accepts `My sheet!A1` unquoted).
    """
    if text.startswith("'"):
        i, title = 1, []
        while i < len(text):
            ch = text[i]
            if ch == "'":
                if i + 1 < len(text) and text[i + 1] == "'":
                    title.append("'")
                    i += 2
                    continue
                rest = text[i + 1 :]
                if rest == "":
                    return "".join(title), ""
                if not rest.startswith("!"):
                    raise A1Error(f"Unable to parse range: {text}")
                return "".join(title), rest[1:]
            title.append(ch)
            i += 1
        raise A1Error(f"Unable to parse range: {text}")
    if "!" in text:
        title_text, _, cells = text.rpartition("!")
        return title_text, cells
    return None, text


def _parse_cell(part: str) -> tuple[int | None, int | None] | None:
    """ "B3" -> (row 2, col 1); "B" -> (None, 1); "3" -> (2, None); None when not cell notation."""
    m = _CELL.match(part)
    if not m or (m.group(1) is None and m.group(2) is None):
        return None
    col = column_index(m.group(1)) if m.group(1) else None
    row = int(m.group(2)) - 1 if m.group(2) else None
    if row is not None and row < 0:
        return None
    if col is not None and col >= MAX_COLUMNS:
        return None
    return row, col


def parse_cells(cells: str) -> tuple[int | None, int | None, int | None, int | None] | None:
    """Parse the part after `!`: (start_row, end_row, start_col, end_col) or None if not A1 cells."""
    if ":" in cells:
        left, _, right = cells.partition(":")
        a, b = _parse_cell(left), _parse_cell(right)
        if a is None or b is None:
            return None
        (r1, c1), (r2, c2) = a, b
        # "A:A" and "2:5" are whole columns/rows; "A1:B" is open at the bottom; "A:B2" is not allowed
        # the other way round unless both halves agree on what they give.
        if (r1 is None) != (r2 is None) and r1 is None:
            return None
        if (c1 is None) != (c2 is None) and c1 is None:
            return None
        if r1 is not None and r2 is not None and r1 > r2:
            r1, r2 = r2, r1
        if c1 is not None and c2 is not None and c1 > c2:
            c1, c2 = c2, c1
        return (
            r1,
            None if r2 is None else r2 + 1,
            c1,
            None if c2 is None else c2 + 1,
        )
    one = _parse_cell(cells)
    if one is None or one[0] is None or one[1] is None:
        return None
    row, col = one
    assert row is not None and col is not None
    return row, row + 1, col, col + 1


def parse_range(text: str) -> A1Range:
    """Parse a range as sent by a client (already percent-decoded).

    Raises A1Error("Unable to parse range: ...") for text the API would reject outright; names
    that are not cell notation come back in `name` for the server to look up (a sheet title or a
    named range), as the API resolves them against the spreadsheet.
    """
    if not text.strip():
        raise A1Error(f"Unable to parse range: {text}")
    sheet, cells = split_sheet(text)
    if sheet is not None and sheet == "":
        raise A1Error(f"Unable to parse range: {text}")
    if sheet is not None and cells == "":
        return A1Range(sheet)
    parsed = parse_cells(cells)
    if parsed is None:
        # Named ranges cannot look like a cell ("A0"), and only use word characters.
        if _LOOKS_LIKE_CELL.match(cells) or (
            sheet is not None and not re.match(r"^[A-Za-z_][A-Za-z0-9_.]*$", cells)
        ):
            raise A1Error(f"Unable to parse range: {text}")
        return A1Range(sheet, name=cells)
    r1, r2, c1, c2 = parsed
    return A1Range(sheet, r1, r2, c1, c2)


def bound(rng: A1Range, title: str, row_count: int, col_count: int) -> Bounded:
    """Close the open sides of `rng` against a grid, or raise A1Error when it lies outside it.

    The API clips open ranges to the grid (`A:A` on a 1000-row sheet is `A1:A1000`) but refuses
    closed ranges that reach past it with "exceeds grid limits".
    """
    start_row = rng.start_row if rng.start_row is not None else 0
    start_col = rng.start_col if rng.start_col is not None else 0
    end_row = rng.end_row if rng.end_row is not None else row_count
    end_col = rng.end_col if rng.end_col is not None else col_count
    if (
        end_row > row_count
        or end_col > col_count
        or start_row >= max(row_count, 1)
        or start_col >= max(col_count, 1)
    ):
        raise A1Error(
            f"Range ({quote_sheet_title(title)}!{_cells_text(rng)}) exceeds grid limits. "
            f"Max rows: {row_count}, max columns: {col_count}"
        )
    return Bounded(title, start_row, max(end_row, start_row + 1), start_col, max(end_col, start_col + 1))


def _cells_text(rng: A1Range) -> str:
    def side(row: int | None, col: int | None) -> str:
        return (column_letters(col) if col is not None else "") + (str(row + 1) if row is not None else "")

    first = side(rng.start_row, rng.start_col)
    last = side(
        None if rng.end_row is None else rng.end_row - 1, None if rng.end_col is None else rng.end_col - 1
    )
    return first if first == last else f"{first}:{last}"


def grid_range_a1(title: str, start_row: int, end_row: int, start_col: int, end_col: int) -> str:
    """A1 text for a 0-based half-open block, as the API echoes it."""
    return Bounded(title, start_row, end_row, start_col, end_col).a1()
