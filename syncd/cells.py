"""Values in spreadsheet cells: formula-injection safety and edit times, for every writer of cells.

Every connector that writes cells (files, Google Sheets) and every transform that makes spreadsheet
text (csv) uses this one module, so "what counts as a formula" has one answer. Connectors may
import it beside syncd.records and syncd.errors.

A CSV or XLSX file written by syncd is opened by people in Excel or LibreOffice, and a value that
came from a web form or an email ("=HYPERLINK(...)", "+cmd|' /C calc'!A0") would run as a formula
there (OWASP "CSV injection"). Such a value is stored with a leading apostrophe, which spreadsheets
show as text, and read back without it.

The rule is a bijection, so a round trip through a file is stable for every string: a value that
already starts with an apostrophe in front of something dangerous gets one more apostrophe.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

FORMULA_TRIGGERS = frozenset("=+-@")
"""First non-blank characters that make a spreadsheet parse a typed value as a formula."""

CONTROL_TRIGGERS = ("\t", "\r")
"""Leading characters OWASP lists as dangerous on their own (they hide a formula behind them)."""

_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def runs_as_formula(text: str) -> bool:
    """True when a spreadsheet would evaluate `text` typed into a cell.

    Plain signed numbers ("-5", "+1.5e3") are read as numbers, not formulas, so they stay as they
    are: escaping them would only disfigure negative amounts.
    """
    if text.startswith(CONTROL_TRIGGERS):
        return True
    stripped = text.strip()
    if not stripped or stripped[0] not in FORMULA_TRIGGERS:
        return False
    return _PLAIN_NUMBER.fullmatch(stripped) is None


def needs_quote(text: str) -> bool:
    """True when `text` must be stored with a leading apostrophe to read back unchanged."""
    while True:
        if runs_as_formula(text):
            return True
        if not text.startswith("'"):
            return False
        text = text[1:]


def quote(text: str) -> str:
    """The form of `text` that is safe to store in a cell that must not hold a formula."""
    return "'" + text if needs_quote(text) else text


def unquote(stored: str) -> str:
    """The value that `quote` turned into `stored` (and any other text unchanged)."""
    if stored.startswith("'") and needs_quote(stored[1:]):
        return stored[1:]
    return stored


def parse_edit_time(value: object) -> datetime | None:
    """A row's last-edit time from its cell (ISO 8601); naive times are UTC; anything else is unknown."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
