"""Cell values in the Sheets sandbox: what `RAW` and `USER_ENTERED` store, and how each render option reads it.

The connector's correctness depends on these rules (a value written RAW must read back unchanged; a
leading `=` must become a formula only under USER_ENTERED), so they are modelled on what the live API
does, as recorded in the gspread cassettes:

- RAW keeps strings as strings (`"=1+1"` stays text), JSON numbers and booleans as such; `null` leaves
  the cell alone and `""` clears it.
- USER_ENTERED parses like the Sheets UI: numbers (`"0042"` -> 42, `"2,000,000.01"` keeps its grouping
  format), `TRUE`/`FALSE`, percentages, `$` amounts, ISO and US dates and times (stored as serial
  numbers with a date format), a leading apostrophe forces text, and a leading `=` (or `+`/`-` before
  something that is not a plain number) makes a formula.
- Formulas are stored verbatim. Only trivial ones are evaluated: arithmetic on numbers (`=1+1`,
  `= 1 / 1024`) and `HYPERLINK(url[, label])`. Any other formula reads as the error value `#NAME?`
  (or `#ERROR!` when it does not parse), which is what Sheets shows for a function it does not know;
  `valueRenderOption=FORMULA` always returns the formula text.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

_EPOCH = dt.datetime(1899, 12, 30)


@dataclass(frozen=True, slots=True)
class Cell:
    """One cell. Immutable, so a spreadsheet snapshot for an atomic batchUpdate is a cheap row copy."""

    value: str | float | bool | None = None
    formula: str | None = None
    error: str | None = None
    #: Number format kept from what the user typed: a key of _FORMATTERS, or None for "General".
    pattern: str | None = None
    note: str | None = None
    #: userEnteredFormat / dataValidation as canonical JSON text (kept immutable).
    fmt: str | None = None
    validation: str | None = None

    @property
    def has_value(self) -> bool:
        return self.value is not None or self.formula is not None or self.error is not None

    @property
    def empty(self) -> bool:
        return not self.has_value and self.note is None and self.fmt is None and self.validation is None

    def cleared(self) -> Cell | None:
        """The cell with its content removed but its note and formatting kept (values.clear)."""
        kept = replace(self, value=None, formula=None, error=None, pattern=None)
        return None if kept.empty else kept

    def with_content(self, content: Cell) -> Cell | None:
        """The content of `content` on this cell's note and formatting."""
        merged = replace(
            self, value=content.value, formula=content.formula, error=content.error, pattern=content.pattern
        )
        return None if merged.empty else merged

    def to_json(self) -> list[Any]:
        return [self.value, self.formula, self.error, self.pattern, self.note, self.fmt, self.validation]

    @staticmethod
    def from_json(data: list[Any]) -> Cell:
        return Cell(*data)


class InvalidValue(ValueError):
    """A value of a type the API refuses in `values` (an object, a nested list)."""


#: Marker for `null` in a values payload: "leave this cell as it is".
KEEP = object()


def from_raw(value: Any) -> Cell | object | None:
    """What valueInputOption=RAW stores for one JSON value: a Cell, None (cleared) or KEEP."""
    if value is None:
        return KEEP
    if isinstance(value, bool):
        return Cell(value=value)
    if isinstance(value, int | float):
        return Cell(value=float(value))
    if isinstance(value, str):
        return Cell(value=value) if value != "" else None
    raise InvalidValue(value)


def from_user_entered(value: Any) -> Cell | object | None:
    """What valueInputOption=USER_ENTERED stores for one JSON value (strings parsed as typed in the UI)."""
    if not isinstance(value, str):
        return from_raw(value)
    if value == "":
        return None
    if value.startswith("'"):
        return Cell(value=value[1:]) if len(value) > 1 else None
    if value.startswith("="):
        return formula_cell(value)
    parsed = parse_typed(value)
    if parsed is not None:
        return parsed
    if value[0] in "+-" and len(value) > 1:
        return formula_cell("=" + value)
    return Cell(value=value)


_NUMBER = re.compile(r"^([+-]?)(\$?)((?:\d{1,3}(?:,\d{3})+|\d*)(?:\.(\d+))?)([eE][+-]?\d+)?(%?)$")
_ISO_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?$")
_US_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")


def parse_typed(text: str) -> Cell | None:
    """A number, boolean, date or time typed as text, or None when it is none of those."""
    stripped = text.strip()
    if stripped.upper() in ("TRUE", "FALSE"):
        return Cell(value=stripped.upper() == "TRUE")
    m = _NUMBER.match(stripped)
    if m and re.search(r"\d", m.group(3)):
        sign, dollar, digits, decimals, exponent, percent = m.groups()
        number = float((sign or "") + digits.replace(",", "") + (exponent or ""))
        places = len(decimals or "")
        pattern: str | None = None
        if percent:
            number /= 100
            pattern = f"pct:{places}"
        elif dollar:
            pattern = "usd:2"
        elif "," in digits:
            pattern = f"grp:{places}"
        return Cell(value=number, pattern=pattern)
    m = _ISO_DATE.match(stripped)
    if m:
        y, mo, d, hh, mi, ss = m.groups()
        try:
            when = dt.datetime(int(y), int(mo), int(d), int(hh or 0), int(mi or 0), int(ss or 0))
        except ValueError:
            return None
        return Cell(value=serial(when), pattern="iso_datetime" if hh else "iso_date")
    m = _US_DATE.match(stripped)
    if m:
        mo, d, y = m.groups()
        try:
            when = dt.datetime(int(y), int(mo), int(d))
        except ValueError:
            return None
        return Cell(value=serial(when), pattern="us_date")
    m = _TIME.match(stripped)
    if m:
        hh, mi, ss = (int(g or 0) for g in m.groups())
        if hh < 24 and mi < 60 and ss < 60:
            return Cell(value=(hh * 3600 + mi * 60 + ss) / 86400, pattern="time")
    return None


def serial(when: dt.datetime) -> float:
    """A date as a spreadsheet serial number (days since 1899-12-30)."""
    delta = when - _EPOCH
    return delta.days + delta.seconds / 86400


def from_serial(number: float) -> dt.datetime:
    return _EPOCH + dt.timedelta(days=number)


# --- formulas -------------------------------------------------------------------------------------

_BINOPS: dict[type, Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_HYPERLINK = re.compile(
    r'^HYPERLINK\(\s*"((?:[^"]|"")*)"\s*(?:[,;]\s*"((?:[^"]|"")*)"\s*)?\)$', re.IGNORECASE
)


def formula_cell(formula: str) -> Cell:
    value, error = evaluate(formula)
    return Cell(value=value, formula=formula, error=error)


def evaluate(formula: str) -> tuple[str | float | None, str | None]:
    """(value, error) of a formula; see the module docstring for what is evaluated."""
    body = formula[1:].strip()
    link = _HYPERLINK.match(body)
    if link:
        url, label = link.group(1), link.group(2)
        return (label if label is not None else url).replace('""', '"'), None
    try:
        tree = ast.parse(body.replace("^", "**"), mode="eval")
    except SyntaxError:
        return None, "#ERROR!"
    try:
        return _arith(tree.body), None
    except ZeroDivisionError:
        return None, "#DIV/0!"
    except (ValueError, OverflowError):
        return None, "#NAME?"


def _arith(node: ast.AST) -> float:
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, int | float)
        and not isinstance(node.value, bool)
    ):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        inner = _arith(node.operand)
        return -inner if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        return _BINOPS[type(node.op)](_arith(node.left), _arith(node.right))
    raise ValueError("not arithmetic")


# --- rendering ------------------------------------------------------------------------------------


def general_number(number: float) -> str:
    """A number in the "General" format: integers without a point, up to 10 decimals otherwise."""
    if math.isfinite(number) and number == int(number) and abs(number) < 1e15:
        return str(int(number))
    if abs(number) >= 1e15 or (number != 0 and abs(number) < 1e-10):
        return f"{number:.2E}"
    text = f"{number:.10f}".rstrip("0").rstrip(".")
    return text


def _format_pattern(number: float, pattern: str) -> str:
    kind, _, arg = pattern.partition(":")
    if kind == "grp":
        return f"{number:,.{int(arg)}f}"
    if kind == "pct":
        return f"{number * 100:.{int(arg)}f}%"
    if kind == "usd":
        return ("-" if number < 0 else "") + f"${abs(number):,.2f}"
    when = from_serial(number)
    if kind == "iso_date":
        return when.strftime("%Y-%m-%d")
    if kind == "iso_datetime":
        return f"{when:%Y-%m-%d} {when.hour}:{when:%M:%S}"
    if kind == "us_date":
        return f"{when.month}/{when.day}/{when.year}"
    if kind == "time":
        return f"{when.hour}:{when:%M:%S}"
    return general_number(number)


def is_date_pattern(pattern: str | None) -> bool:
    return pattern is not None and pattern.split(":")[0] in ("iso_date", "iso_datetime", "us_date", "time")


def formatted(cell: Cell) -> str:
    if cell.error is not None:
        return cell.error
    value = cell.value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return _format_pattern(value, cell.pattern) if cell.pattern else general_number(value)
    return value


def unformatted(cell: Cell, date_time_render: str = "SERIAL_NUMBER") -> Any:
    if cell.error is not None:
        return cell.error
    value = cell.value
    if isinstance(value, float):
        if date_time_render == "FORMATTED_STRING" and is_date_pattern(cell.pattern):
            return formatted(cell)
        return int(value) if value == int(value) and abs(value) < 1e15 else value
    return "" if value is None else value


def render(cell: Cell | None, value_render: str, date_time_render: str) -> Any:
    """The JSON value `values.get` returns for one cell under the given render options."""
    if cell is None or not cell.has_value:
        return ""
    if value_render == "FORMULA" and cell.formula is not None:
        return cell.formula
    if value_render == "FORMATTED_VALUE":
        return formatted(cell)
    return unformatted(cell, date_time_render)


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"))
