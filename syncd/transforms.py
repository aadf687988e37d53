"""The named, pure value transforms a mapping file may apply to a field, and the one registry of them.

A mapping names transforms instead of embedding code so that a mapping file stays data: it can be
validated before anything runs, reviewed by someone who does not read Python, and listed by
`syncd transforms`. Each transform is compiled once, when the mapping is loaded, into a
`BoundTransform`; bad arguments are therefore a `TransformSpecError` at load time (a config problem
with a file and line), while a value that cannot be transformed is a `TransformError` at run time
(one record to dead letters, the batch goes on).

Two-way mappings write target values back to the source through `inverse`. The contract every
invertible transform keeps, and the tests check with hypothesis, is the round trip
`forward(inverse(forward(x))) == forward(x)`: writing a value back and reading it again changes
nothing, so the engine never sees an echo of its own write as a new change.

`None` (a missing value) passes through every transform except `default`: absence is not an error.
"""

from __future__ import annotations

import copy
import csv
import difflib
import functools
import inspect
import io
import math
import re
import unicodedata
import zoneinfo
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any, Literal, TypeVar

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from syncd.cells import quote

__all__ = [
    "TRANSFORMS",
    "BoundTransform",
    "TransformError",
    "TransformSpec",
    "TransformSpecError",
    "compile_chain",
    "compile_transform",
    "suggest",
]

_SHOWN_CHARS = 60


def _show(value: Any) -> str:
    """Quote a value for an error message, cut short: records can hold whole mail bodies."""
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"


class TransformError(ValueError):
    """A value cannot be transformed; the message names the value (cut short) and what was expected.

    `transform` is the name of the transform that refused it, filled in by the registry so the
    engine can report it beside the field name.
    """

    def __init__(self, message: str, transform: str | None = None) -> None:
        super().__init__(message)
        self.transform = transform


class TransformSpecError(ValueError):
    """A transform item in a mapping is wrong (unknown name, unknown or ill-typed argument).

    Raised when the mapping is compiled, never while syncing. `unknown_name` is set when the name
    itself is unknown, with `suggestion` the closest known name (also in the message);
    `index` is the item's position when it came through `compile_chain`, so the caller can point at
    the right line of the YAML list.
    """

    def __init__(
        self,
        message: str,
        *,
        unknown_name: str | None = None,
        suggestion: str | None = None,
        index: int | None = None,
    ) -> None:
        super().__init__(message)
        self.unknown_name = unknown_name
        self.suggestion = suggestion
        self.index = index


@dataclass(frozen=True)
class BoundTransform:
    """A transform with its arguments applied: plain functions from one JSON value to another.

    `inverse` is None when the transform loses information (truncate, regex_replace, a many-to-one
    map): such a field cannot be written back in a two-way mapping.
    """

    name: str
    forward: Callable[[Any], Any]
    inverse: Callable[[Any], Any] | None


@dataclass(frozen=True)
class TransformSpec:
    """A registered transform: its user-facing documentation and how to bind its arguments."""

    name: str
    doc: str
    build: Callable[[Any], BoundTransform]


_REGISTRY: dict[str, TransformSpec] = {}

TRANSFORMS: Mapping[str, TransformSpec] = MappingProxyType(_REGISTRY)
"""Every transform a mapping may name, by name. Read-only; filled once at import."""

_Builder = Callable[[Any], BoundTransform]


def _transform(name: str) -> Callable[[_Builder], _Builder]:
    """Register a builder; its docstring is the user-facing `doc` that `syncd transforms` prints."""

    def register(build: _Builder) -> _Builder:
        _REGISTRY[name] = TransformSpec(name=name, doc=inspect.cleandoc(build.__doc__ or ""), build=build)
        return build

    return register


def suggest(name: str) -> str | None:
    """The known transform name closest to `name`, for a "did you mean" hint; None if none is close."""
    matches = difflib.get_close_matches(name.strip().lower(), list(_REGISTRY), n=1, cutoff=0.6)
    return matches[0] if matches else None


def compile_transform(item: Any) -> BoundTransform:
    """Compile one mapping item, `"strip"` or `{"date": {"format": "%d/%m/%Y"}}`, into a transform."""
    if isinstance(item, str):
        name, args = item, None
    elif isinstance(item, Mapping) and len(item) == 1:
        ((name, args),) = item.items()
        if not isinstance(name, str):
            raise TransformSpecError(f"a transform name must be text, got {_show(name)}")
    else:
        raise TransformSpecError(
            f"a transform is a name such as 'strip' or a one-key mapping such as "
            f"{{truncate: 80}}, got {_show(item)}"
        )
    spec = _REGISTRY.get(name)
    if spec is None:
        hint = suggest(name)
        did_you_mean = f" (did you mean '{hint}'?)" if hint else ""
        raise TransformSpecError(
            f"unknown transform '{name}'{did_you_mean}; known: {', '.join(sorted(_REGISTRY))}",
            unknown_name=name,
            suggestion=hint,
        )
    return spec.build(_plain(args))


def _plain(value: Any) -> Any:
    """Plain JSON values from what a YAML loader gives (ruamel's str and float subclasses, its
    CommentedMap, dates for an unquoted 2024-01-31), so that no transform returns a loader type."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {_plain(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def compile_chain(items: Any) -> BoundTransform:
    """Compile a mapping's `transform:` list into one transform applied left to right.

    The chain is invertible only if every step is, and its inverse undoes the steps right to left.
    """
    if items is None:
        items = []
    if not isinstance(items, list):
        raise TransformSpecError(f"transform must be a list of transforms, got {_show(items)}")
    steps: list[BoundTransform] = []
    for index, item in enumerate(items):
        try:
            steps.append(compile_transform(item))
        except TransformSpecError as err:
            err.index = index
            raise
    if len(steps) == 1:
        return steps[0]
    forwards = [step.forward for step in steps]
    inverses = [step.inverse for step in reversed(steps)]
    inverse: Callable[[Any], Any] | None = None
    if all(fn is not None for fn in inverses):
        inverse = _compose([fn for fn in inverses if fn is not None])
    name = " | ".join(step.name for step in steps) or "identity"
    return BoundTransform(name=name, forward=_compose(forwards), inverse=inverse)


def _compose(functions: list[Callable[[Any], Any]]) -> Callable[[Any], Any]:
    def composed(value: Any) -> Any:
        for function in functions:
            value = function(value)
        return value

    return composed


def _identity(value: Any) -> Any:
    return value


def _bind(
    name: str,
    forward: Callable[[Any], Any],
    inverse: Callable[[Any], Any] | None,
    *,
    none_passes: bool = True,
) -> BoundTransform:
    return BoundTransform(
        name=name,
        forward=_guard(name, forward, none_passes),
        inverse=_guard(name, inverse, True) if inverse is not None else None,
    )


def _guard(name: str, function: Callable[[Any], Any], none_passes: bool) -> Callable[[Any], Any]:
    """Let None through untouched and label errors with the transform's name."""

    def guarded(value: Any) -> Any:
        if value is None and none_passes:
            return None
        try:
            return function(value)
        except TransformError as err:
            if err.transform is None:
                err.transform = name
            raise

    return guarded


# ---------------------------------------------------------------------------------------------------
# Arguments: pydantic models in strict mode, because YAML already gives typed values and a quoted
# "80" where a number belongs is a mistake worth reporting rather than guessing at.

_A = TypeVar("_A", bound="_Args")


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _parse_args(name: str, model: type[_A], args: Any, primary: str | None = None) -> _A:
    """Validate a transform's arguments; a scalar or list stands for the `primary` argument."""
    if args is None:
        args = {}
    elif not isinstance(args, Mapping):
        if primary is None:
            raise TransformSpecError(f"{name} takes its arguments as a mapping, got {_show(args)}")
        args = {primary: args}
    try:
        return model.model_validate(dict(args))
    except ValidationError as err:
        raise TransformSpecError(_describe(name, model, err)) from None


def _describe(name: str, model: type[_Args], err: ValidationError) -> str:
    accepted = ", ".join(model.model_fields) or "none"
    problems: list[str] = []
    for problem in err.errors():
        where = ".".join(str(part) for part in problem["loc"])
        kind = problem["type"]
        if kind == "extra_forbidden":
            problems.append(f"unknown argument '{where}' (accepted: {accepted})")
        elif kind == "missing":
            problems.append(f"missing argument '{where}'")
        else:
            message = str(problem["msg"]).removeprefix("Value error, ")
            prefix = f"argument '{where}': " if where else ""
            # Our own validators quote the value already; pydantic's type messages do not.
            got = "" if kind == "value_error" else f", got {_show(problem['input'])}"
            problems.append(f"{prefix}{message[:1].lower()}{message[1:]}{got}")
    return f"{name}: " + "; ".join(problems)


def _no_args(name: str, args: Any) -> None:
    if args is not None and args != {}:
        raise TransformSpecError(f"{name} takes no arguments, got {_show(args)}")


def _expect_text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise TransformError(f"{name} expects text, got {_show(value)} ({type(value).__name__})")
    return value


_WriteBack = Literal["text", "value"]


# ---------------------------------------------------------------------------------------------------
# Text normalisers: idempotent, so the identity is a correct inverse.


def _text_transform(name: str, operation: Callable[[str], str]) -> BoundTransform:
    return _bind(name, lambda value: operation(_expect_text(name, value)), _identity)


@_transform("strip")
def _build_strip(args: Any) -> BoundTransform:
    """Remove leading and trailing whitespace from text.

    No arguments. Non-text values are refused.
    Two-way: written back unchanged.
    Example: strip   "  Ada Lovelace " -> "Ada Lovelace"
    """
    _no_args("strip", args)
    return _text_transform("strip", str.strip)


@_transform("lower")
def _build_lower(args: Any) -> BoundTransform:
    """Lower-case text.

    No arguments. Non-text values are refused.
    Two-way: written back unchanged.
    Example: lower   "Ada@Example.COM" -> "ada@example.com"
    """
    _no_args("lower", args)
    return _text_transform("lower", str.lower)


@_transform("upper")
def _build_upper(args: Any) -> BoundTransform:
    """Upper-case text.

    No arguments. Non-text values are refused.
    Two-way: written back unchanged.
    Example: upper   "gb" -> "GB"
    """
    _no_args("upper", args)
    return _text_transform("upper", str.upper)


# Characters that neither start nor end a word when capitalising: combining marks, modifier letters,
# format characters and apostrophes (Unicode's Case_Ignorable, in the spirit of its toTitlecase).
_CASE_IGNORABLE_CATEGORIES = frozenset({"Mn", "Me", "Cf", "Lm", "Sk"})
_APOSTROPHES = frozenset("'\u2019")


def _title(text: str) -> str:
    # Not str.title(): that starts a new word after an apostrophe ("Don'T") and after a combining
    # mark, so applying it twice can change the text again ("Xİb" -> "Xi̇b" -> "Xi̇B"), and a
    # normaliser that is not idempotent would make two-way sync see its own writes as changes.
    result: list[str] = []
    in_word = False
    for char in text:
        result.append(char.lower() if in_word else char.title())
        if char.islower() or char.isupper() or char.istitle():
            in_word = True
        elif char not in _APOSTROPHES and unicodedata.category(char) not in _CASE_IGNORABLE_CATEGORIES:
            in_word = char.isalnum()  # digits belong to their word: "3RD" -> "3rd"
    return "".join(result)


@_transform("title")
def _build_title(args: Any) -> BoundTransform:
    """Capitalise the first letter of every word and lower-case the rest.

    No arguments. Non-text values are refused. A letter after an apostrophe inside a word is not
    capitalised ("don't" -> "Don't", so also "o'brien" -> "O'brien"), digits belong to their word
    ("3RD" -> "3rd"), hyphens and other punctuation start a new word ("mary-jane" -> "Mary-Jane").
    Two-way: written back unchanged.
    Example: title   "ADA LOVELACE" -> "Ada Lovelace"
    """
    _no_args("title", args)
    return _text_transform("title", _title)


# ---------------------------------------------------------------------------------------------------
# Numbers


class _NumberArgs(_Args):
    decimal: str = "."
    thousands: str | None = None
    write_back: _WriteBack = "text"

    @model_validator(mode="after")
    def _separators_are_distinct(self) -> _NumberArgs:
        if len(self.decimal) != 1 or self.decimal.isdigit() or self.decimal in "+-eE":
            raise ValueError(
                f"decimal must be one non-digit character such as '.' or ',', got {self.decimal!r}"
            )
        thousands = self.thousands
        if thousands and (len(thousands) > 1 or thousands.isdigit() or thousands in "+-eE"):
            raise ValueError(f"thousands must be '' or one non-digit character, got {thousands!r}")
        if thousands == self.decimal:
            raise ValueError(f"decimal and thousands must differ, both are {thousands!r}")
        return self


# No quantity anyone syncs has this many digits; the cap also keeps int() below Python's
# 4,300-digit conversion limit, which would otherwise surface as an unlabelled ValueError.
_MAX_DIGITS = 100


@dataclass(frozen=True)
class _NumberFormat:
    """How numbers are written in one source: which decimal mark, which (if any) thousands mark."""

    decimal: str
    thousands: str

    @property
    def pattern(self) -> re.Pattern[str]:
        return _number_pattern(self.decimal, self.thousands)

    def parse(self, value: Any) -> int | float | Decimal:
        """Text -> int (no decimal mark or exponent) or Decimal; numbers pass; anything else refused."""
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise TransformError(f"expected a number, got {_show(value)} ({type(value).__name__})")
        if isinstance(value, float) and not math.isfinite(value):
            raise TransformError(f"{_show(value)} is not a finite number")
        if not isinstance(value, str):
            return value
        match = self.pattern.fullmatch(value.strip())
        if match is None or not (match["int"] or match["frac"]):
            grouping = f", thousands '{self.thousands}'" if self.thousands else ""
            raise TransformError(f"{_show(value)} is not a number (decimal mark '{self.decimal}'{grouping})")
        digits = re.sub(r"[^0-9]", "", match["int"] or "") or "0"
        if len(digits) + len(match["frac"] or "") > _MAX_DIGITS:
            raise TransformError(f"{_show(value)} has more than {_MAX_DIGITS} digits")
        if match["frac"] is None and match["exp"] is None:
            return int(match["sign"] + digits)
        return Decimal(f"{match['sign']}{digits}.{match['frac'] or '0'}{match['exp'] or ''}")

    def format(self, number: int | float) -> str:
        text = str(number) if isinstance(number, int) else repr(number)
        return text.replace(".", self.decimal)


@functools.lru_cache(maxsize=64)
def _number_pattern(decimal: str, thousands: str) -> re.Pattern[str]:
    # A space as thousands mark also matches the no-break spaces spreadsheets put there.
    mark = "[ \u00a0\u202f]" if thousands == " " else re.escape(thousands)
    integer = rf"[0-9]{{1,3}}(?:{mark}[0-9]{{3}})+|[0-9]+" if thousands else "[0-9]+"
    return re.compile(
        rf"(?P<sign>[+-]?)(?P<int>{integer})?(?:{re.escape(decimal)}(?P<frac>[0-9]*))?(?P<exp>[eE][+-]?[0-9]+)?"
    )


_PLAIN_NUMBERS = _NumberFormat(decimal=".", thousands="")


def _number_format(args: _NumberArgs) -> _NumberFormat:
    thousands = args.thousands
    if thousands is None:
        thousands = "," if args.decimal != "," else "."
    return _NumberFormat(decimal=args.decimal, thousands=thousands)


def _to_float(number: int | float | Decimal, shown: Any) -> int | float:
    if not isinstance(number, Decimal):
        return number
    result = float(number)
    if not math.isfinite(result):
        raise TransformError(f"{_show(shown)} is out of range for a number")
    return result


def _to_integer(number: int | float | Decimal, shown: Any) -> int:
    if isinstance(number, int):
        return number
    exact = Decimal(number) if isinstance(number, float) else number
    try:
        whole = exact.to_integral_value()
    except InvalidOperation:
        raise TransformError(f"{_show(shown)} is out of range for a whole number") from None
    if whole != exact:
        raise TransformError(f"{_show(shown)} is not a whole number")
    if abs(whole) >= Decimal(10) ** 30:
        raise TransformError(f"{_show(shown)} is out of range for a whole number")
    return int(whole)


@_transform("number")
def _build_number(args: Any) -> BoundTransform:
    """Read a number from text: "1,234.50" -> 1234.5, "42" -> 42.

    Arguments (all optional):
      decimal:    the decimal mark, default "."
      thousands:  the grouping mark, default "," (or "." when decimal is ","); "" for none.
                  When given in the text it must group by three digits; " " also accepts no-break spaces.
      write_back: "text" (default) or "value": what a two-way mapping writes back to this side.
                  "text" writes the plain number with the decimal mark and without grouping
                  ("1234.5", or "1234,5" with decimal ","), since the source held text; "value"
                  writes the number itself, for sources with typed cells.
    Text without a decimal mark or exponent gives an integer, otherwise a float. Numbers pass
    through unchanged; booleans and other values are refused.
    Example: {number: {decimal: ",", thousands: "."}}   "1.234,50" -> 1234.5
    """
    options = _parse_args("number", _NumberArgs, args)
    source = _number_format(options)

    def forward(value: Any) -> int | float:
        return _to_float(source.parse(value), value)

    def inverse(value: Any) -> int | float | str:
        number = _to_float(_PLAIN_NUMBERS.parse(value), value)
        return source.format(number) if options.write_back == "text" else number

    return _bind("number", forward, inverse)


@_transform("integer")
def _build_integer(args: Any) -> BoundTransform:
    """Read a whole number from text: "1,234" -> 1234; "12.00" -> 12; "12.5" is refused.

    Arguments (all optional), as for `number`:
      decimal:    the decimal mark, default "."
      thousands:  the grouping mark, default "," (or "." when decimal is ","); "" for none.
      write_back: "text" (default) writes back "1234"; "value" writes back the integer itself.
    Whole floats (12.0) become integers; booleans and fractions are refused.
    Example: integer   " 1,200 " -> 1200
    """
    options = _parse_args("integer", _NumberArgs, args)
    source = _number_format(options)

    def forward(value: Any) -> int:
        return _to_integer(source.parse(value), value)

    def inverse(value: Any) -> int | str:
        number = _to_integer(_PLAIN_NUMBERS.parse(value), value)
        return str(number) if options.write_back == "text" else number

    return _bind("integer", forward, inverse)


# ---------------------------------------------------------------------------------------------------
# Booleans

_TRUE_WORDS = ["true", "yes", "y", "1", "on", "t"]
_FALSE_WORDS = ["false", "no", "n", "0", "off", "f"]


class _BooleanArgs(_Args):
    # Not `true:` and `false:`: YAML reads those keys as booleans, not as argument names.
    true_words: list[str] = Field(default_factory=lambda: list(_TRUE_WORDS))
    false_words: list[str] = Field(default_factory=lambda: list(_FALSE_WORDS))
    write_back: _WriteBack = "text"

    @model_validator(mode="after")
    def _words_are_distinct(self) -> _BooleanArgs:
        if not self.true_words or not self.false_words:
            raise ValueError("true_words and false_words each need at least one word")
        trues = {word.strip().casefold() for word in self.true_words}
        both = trues & {word.strip().casefold() for word in self.false_words}
        if both:
            raise ValueError(f"words cannot mean both true and false: {', '.join(sorted(both))}")
        return self


@_transform("boolean")
def _build_boolean(args: Any) -> BoundTransform:
    """Read a yes/no value: "Yes", "y", "TRUE", "1", "on" -> true; "No", "n", "false", "0", "off" -> false.

    Arguments (all optional):
      true_words:  the words meaning true, case-insensitive; default true, yes, y, 1, on, t
      false_words: the words meaning false; default false, no, n, 0, off, f
      write_back:  "text" (default) writes back the first of `true_words` or `false_words`;
                   "value" writes back the boolean itself.
    Booleans pass through, 1 and 0 are read as true and false; other values are refused.
    Example: {boolean: {true_words: [Ja, J], false_words: [Nein, N]}}   "ja" -> true, written back as "Ja"
    """
    options = _parse_args("boolean", _BooleanArgs, args)
    words = {word.strip().casefold(): True for word in options.true_words}
    words.update({word.strip().casefold(): False for word in options.false_words})
    expected = ", ".join(options.true_words + options.false_words)

    def forward(value: Any) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return value == 1
        if isinstance(value, str) and value.strip().casefold() in words:
            return words[value.strip().casefold()]
        raise TransformError(f"{_show(value)} is not a yes/no value (expected one of: {expected})")

    def inverse(value: Any) -> bool | str:
        truth = forward(value)
        if options.write_back == "value":
            return truth
        return options.true_words[0] if truth else options.false_words[0]

    return _bind("boolean", forward, inverse)


# ---------------------------------------------------------------------------------------------------
# Dates and times

_SAMPLE_MOMENT = datetime(2001, 2, 3, 4, 5, 0, tzinfo=UTC)  # aware, so formats with %z can be checked


class _DateArgs(_Args):
    format: str | list[str] | None = None

    @field_validator("format")
    @classmethod
    def _formats_name_a_date(cls, value: str | list[str] | None) -> str | list[str] | None:
        formats = [value] if isinstance(value, str) else value
        if formats is None:
            return value
        if not formats:
            raise ValueError("give at least one format, or leave format out for ISO-8601")
        for fmt in formats:
            # A format that cannot write and read back a known day (no year, bad directive) would
            # silently corrupt dates, so it is refused before any record is touched.
            try:
                again = datetime.strptime(_SAMPLE_MOMENT.strftime(fmt), fmt)
            except ValueError as err:
                raise ValueError(f"format {fmt!r} is not usable: {err}") from None
            if again.date() != _SAMPLE_MOMENT.date():
                raise ValueError(f"format {fmt!r} does not name a whole date (day, month and year)")
        return value


class _DateTimeArgs(_DateArgs):
    tz: str | None = None

    @field_validator("tz")
    @classmethod
    def _tz_is_known(cls, value: str | None) -> str | None:
        if value is not None:
            _zone(value)
        return value


def _zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        close = difflib.get_close_matches(name, zoneinfo.available_timezones(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(
            f"unknown time zone {name!r}{hint}; use an IANA name such as 'Europe/London'"
        ) from None


def _formats(value: str | list[str] | None) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def _parse_with_formats(value: Any, formats: list[str], what: str) -> datetime:
    text = _expect_text(what, value).strip()
    reasons: list[str] = []
    for fmt in formats:
        try:
            return datetime.strptime(text, fmt)
        except ValueError as err:
            reasons.append(str(err))
    shown = ", ".join(repr(fmt) for fmt in formats)
    # strptime says "does not match" or "unconverted data remains" when the shape is wrong, and
    # something else ("day is out of range for month") when the shape fits but the day does not exist.
    impossible = [r for r in reasons if "does not match" not in r and "unconverted data" not in r]
    if impossible:
        raise TransformError(f"{_show(value)} is not a real {what} ({impossible[0]})")
    many = "any of the " if len(formats) > 1 else ""
    plural = "s" if len(formats) > 1 else ""
    raise TransformError(f"{_show(value)} does not match {many}{what} format{plural} {shown}")


def _parse_iso(value: Any, what: str) -> datetime:
    text = _expect_text(what, value).strip()
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        example = "2024-01-31" if what == "date" else "2024-01-31T09:30:00+00:00"
        raise TransformError(f"{_show(value)} is not an ISO-8601 {what} such as {example}") from None


def _strftime(moment: datetime | date, fmt: str | None, shown: Any) -> str:
    if fmt is None:
        return moment.isoformat()
    try:
        return moment.strftime(fmt)
    except ValueError as err:
        raise TransformError(f"{_show(shown)} cannot be written with format {fmt!r}: {err}") from None


def _iso_date(value: Any) -> date:
    """A date from ISO text; a datetime at exactly midnight counts (spreadsheets store dates so)."""
    moment = _parse_iso(value, "date")
    if moment.time() != datetime.min.time() or moment.tzinfo is not None:
        raise TransformError(f"{_show(value)} has a time of day or zone; a date was expected (use datetime)")
    return moment.date()


@_transform("date")
def _build_date(args: Any) -> BoundTransform:
    """Read a calendar date and write it as ISO-8601 text ("2024-01-31").

    Arguments:
      format: a strptime format such as "%d/%m/%Y", or a list of them tried in order;
              default: ISO-8601 ("2024-01-31"; "2024-01-31T00:00:00" is accepted too).
              The shorthand {date: "%d/%m/%Y"} means {date: {format: "%d/%m/%Y"}}.
    Two-way: written back with the (first) format, or as ISO-8601 without one.
    A two-digit year (%y) reads 69-99 as 19xx and 00-68 as 20xx, so such dates only round-trip
    within 1969-2068; years before 1000 do not round-trip through %Y.
    Example: {date: {format: "%d/%m/%Y"}}   "31/01/2024" -> "2024-01-31"
    """
    options = _parse_args("date", _DateArgs, args, primary="format")
    formats = _formats(options.format)
    write_format = formats[0] if formats else None

    def read(value: Any) -> date:
        if formats:
            return _parse_with_formats(value, formats, "date").date()
        return _iso_date(value)

    def forward(value: Any) -> str:
        return read(value).isoformat()

    def inverse(value: Any) -> str:
        return _strftime(_iso_date(value), write_format, value)

    return _bind("date", forward, inverse)


@_transform("datetime")
def _build_datetime(args: Any) -> BoundTransform:
    """Read a date and time and write it as ISO-8601 text, in UTC when its zone is known.

    Arguments (all optional):
      format: a strptime format such as "%d/%m/%Y %H:%M", or a list of them tried in order;
              default: ISO-8601 ("2024-01-31T09:30:00", "...Z", "...+01:00", Salesforce's "...+0000").
              The shorthand {datetime: "%d/%m/%Y %H:%M"} means {datetime: {format: ...}}.
      tz:     the IANA time zone that values without an offset are in, such as "Europe/London".
    A value with an offset, or any value when tz is given, comes out in UTC
    ("2024-01-31T09:30:00+00:00"); without either it stays a local time without offset.
    Two-way: written back in tz (when given) with the (first) format, or as ISO-8601. A local
    time skipped by a clock change (02:30 on a spring-forward night) is read with the offset before
    the change.
    Example: {datetime: {format: "%d/%m/%Y %H:%M", tz: Europe/London}}
             "01/07/2024 10:00" -> "2024-07-01T09:00:00+00:00"
    """
    options = _parse_args("datetime", _DateTimeArgs, args, primary="format")
    formats = _formats(options.format)
    write_format = formats[0] if formats else None
    zone: tzinfo | None = _zone(options.tz) if options.tz else None

    def normalise(moment: datetime, shown: Any) -> datetime:
        if moment.tzinfo is None and zone is not None:
            moment = moment.replace(tzinfo=zone)
        if moment.tzinfo is None:
            return moment
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            raise TransformError(f"{_show(shown)} is out of range") from None

    def forward(value: Any) -> str:
        moment = _parse_with_formats(value, formats, "datetime") if formats else _parse_iso(value, "datetime")
        return normalise(moment, value).isoformat()

    def inverse(value: Any) -> str:
        moment = _parse_iso(value, "datetime")
        if zone is not None and moment.tzinfo is not None:
            try:
                moment = moment.astimezone(zone)
            except OverflowError:
                raise TransformError(f"{_show(value)} is out of range") from None
        return _strftime(moment, write_format, value)

    return _bind("datetime", forward, inverse)


# ---------------------------------------------------------------------------------------------------
# Lists


class _SplitArgs(_Args):
    sep: str = Field(default=",", min_length=1)
    strip: bool = True
    drop_empty: bool = True


class _JoinArgs(_Args):
    sep: str = Field(default=", ", min_length=1)


def _join(name: str, sep: str, value: Any) -> str:
    if not isinstance(value, list):
        raise TransformError(f"{name} expects a list, got {_show(value)} ({type(value).__name__})")
    parts: list[str] = []
    for item in value:
        if item is None:
            continue
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise TransformError(f"{name} expects a list of text or numbers, got item {_show(item)}")
        parts.append(item if isinstance(item, str) else str(item))
    return sep.join(parts)


@_transform("split")
def _build_split(args: Any) -> BoundTransform:
    """Split text into a list of text: "red, green,,blue" -> ["red", "green", "blue"].

    Arguments (all optional):
      sep:        the separator, default ","; the shorthand {split: ";"} means {split: {sep: ";"}}
      strip:      strip whitespace around each item, default true
      drop_empty: leave out empty items, default true (so "" -> [])
    Two-way: written back joined with `sep`.
    Example: {split: ";"}   "Hardware;Software" -> ["Hardware", "Software"]
    """
    options = _parse_args("split", _SplitArgs, args, primary="sep")

    def forward(value: Any) -> list[str]:
        items = _expect_text("split", value).split(options.sep)
        if options.strip:
            items = [item.strip() for item in items]
        if options.drop_empty:
            items = [item for item in items if item]
        return items

    return _bind("split", forward, lambda value: _join("split", options.sep, value))


@_transform("join")
def _build_join(args: Any) -> BoundTransform:
    """Join a list into one text: ["red", "green"] -> "red, green".

    Arguments:
      sep: the separator, default ", "; the shorthand {join: ";"} means {join: {sep: ";"}}
    Items may be text or numbers; missing items (null) are left out; anything else is refused.
    Two-way: written back split on `sep` ("" -> []), items kept exactly as they are.
    Example: {join: ";"}   ["Hardware", "Software"] -> "Hardware;Software"
    """
    options = _parse_args("join", _JoinArgs, args, primary="sep")

    def inverse(value: Any) -> list[str]:
        text = _expect_text("join", value)
        return text.split(options.sep) if text else []

    return _bind("join", lambda value: _join("join", options.sep, value), inverse)


class _CsvArgs(_Args):
    columns: list[str] = Field(min_length=1)
    delimiter: str = Field(default=",", min_length=1, max_length=1)


@_transform("csv")
def _build_csv(args: Any) -> BoundTransform:
    """A list of records as CSV text, header first: a report's rows as an email attachment.

    Arguments:
      columns:   the fields to write, in order (each record's dotted paths are not followed);
                 the shorthand {csv: [Name, Stock]} means {csv: {columns: [Name, Stock]}}
      delimiter: default ","
    Cells that a spreadsheet would run as formulas (= + - @) get a leading apostrophe.
    Not written back (one-way only).
    Example: {csv: [Name, Stock]}   [{"Name": "Bolt", "Stock": 5}] -> "Name,Stock\\r\\nBolt,5\\r\\n"
    """
    options = _parse_args("csv", _CsvArgs, args, primary="columns")

    def forward(value: Any) -> str:
        if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
            raise TransformError(f"csv expects a list of records, got {_show(value)}")
        out = io.StringIO()
        writer = csv.writer(out, delimiter=options.delimiter)
        writer.writerow([_cell(column) for column in options.columns])  # headers are cells too
        for item in value:
            writer.writerow([_cell(item.get(column)) for column in options.columns])
        return out.getvalue()

    return _bind("csv", forward, None)


def _cell(value: Any) -> str:
    return quote("" if value is None else str(value))


# ---------------------------------------------------------------------------------------------------
# Lookups and defaults


_MISSING = object()


class _MapArgs(_Args):
    values: dict[str | int | float | bool, Any]
    default: Any = None
    ignore_case: bool = False


def _lookup_key(value: Any, ignore_case: bool) -> Hashable:
    """A dict key that keeps YAML's true apart from 1, and folds case when asked to."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, str):
        return ("text", value.casefold() if ignore_case else value)
    if isinstance(value, int | float):
        return ("number", value)
    raise TransformError(f"map expects a single text, number or boolean, got {_show(value)}")


def _known(keys: list[Any]) -> str:
    shown = ", ".join(_show(key) for key in keys[:5])
    return shown + (", …" if len(keys) > 5 else "")


@_transform("map")
def _build_map(args: Any) -> BoundTransform:
    """Replace each value by the one a table gives for it: "Won" -> "Closed Won".

    Arguments:
      values:      the table, source value -> target value (required)
      default:     the result for a value not in the table; without it such a value is an error
      ignore_case: match text keys regardless of case, default false
    Two-way: only when no two keys give the same value and no default is set (a default folds many
    values into one, which cannot be undone); the value is then looked up backwards.
    Example: {map: {values: {Open: Prospecting, Won: Closed Won}, default: Prospecting}}
    """
    if not isinstance(args, Mapping):
        raise TransformSpecError(
            "map needs {values: {source: target, ...}}, optionally with default and ignore_case; "
            f"got {_show(args)}"
        )
    options = _parse_args("map", _MapArgs, args)
    if not options.values:
        raise TransformSpecError("map: values is empty; give at least one source: target pair")
    has_default = "default" in options.model_fields_set
    table: dict[Hashable, Any] = {}
    for key, target in options.values.items():
        lookup = _lookup_key(key, options.ignore_case)
        if lookup in table:
            raise TransformSpecError(f"map: key {_show(key)} appears twice when case is ignored")
        table[lookup] = target
    keys = list(options.values)

    def forward(value: Any) -> Any:
        found = table.get(_lookup_key(value, options.ignore_case), _MISSING)
        if found is not _MISSING:
            return copy.deepcopy(found)
        if has_default:
            return copy.deepcopy(options.default)
        raise TransformError(f"{_show(value)} is not in the map (known: {_known(keys)})")

    backwards: dict[Hashable, Any] = {}
    for key, target in options.values.items():
        try:
            backwards.setdefault(_lookup_key(target, False), key)
        except TransformError:  # a list or mapping as target: nothing to look up backwards by
            break
    one_to_one = len(backwards) == len(options.values) and not has_default
    targets = list(options.values.values())

    def inverse(value: Any) -> Any:
        source = backwards.get(_lookup_key(value, False), _MISSING)
        if source is _MISSING:
            raise TransformError(f"{_show(value)} is not one of the map's values (known: {_known(targets)})")
        return source

    return _bind("map", forward, inverse if one_to_one else None)


@_transform("default")
def _build_default(args: Any) -> BoundTransform:
    """Fill a missing or empty value: null or "" -> the given value.

    Argument: the value itself, any JSON value: {default: "n/a"}, {default: 0}, {default: []}.
    Whitespace-only text is not empty (put strip first to treat it so).
    Two-way: the default value is written back as null, so a blank source stays blank.
    Example: {default: "Unknown"}   "" -> "Unknown"
    """
    if args is None:
        raise TransformSpecError("default needs the value to use, e.g. {default: 'n/a'}")
    fill = args

    def forward(value: Any) -> Any:
        return copy.deepcopy(fill) if value is None or value == "" else value

    def inverse(value: Any) -> Any:
        return None if type(value) is type(fill) and value == fill else value

    return _bind("default", forward, inverse, none_passes=False)


# ---------------------------------------------------------------------------------------------------
# Lossy edits: no inverse, so a two-way mapping cannot write such a field back.


class _RegexArgs(_Args):
    pattern: str
    replacement: str = ""
    ignore_case: bool = False
    count: int = Field(default=0, ge=0)

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as err:
            raise ValueError(f"not a valid regular expression: {err}") from None
        return value


@_transform("regex_replace")
def _build_regex_replace(args: Any) -> BoundTransform:
    """Replace every match of a regular expression in text (Python `re` syntax).

    Arguments:
      pattern:     the regular expression (required)
      replacement: the replacement, default "" (delete); \\1 or \\g<name> insert groups
      ignore_case: default false
      count:       replace at most this many matches; default 0 = all
    Non-text values are refused. Not invertible: a two-way mapping cannot write this field back.
    Example: {regex_replace: {pattern: "[^0-9+]", replacement: ""}}   "+44 (20) 7946" -> "+44207946"
    """
    options = _parse_args("regex_replace", _RegexArgs, args)
    compiled = re.compile(options.pattern, re.IGNORECASE if options.ignore_case else 0)
    try:
        compiled.sub(options.replacement, "")  # parses the replacement: a bad group is a load-time error
    except (re.error, IndexError) as err:
        raise TransformSpecError(
            f"regex_replace: replacement {options.replacement!r} is not usable: {err}"
        ) from None

    def forward(value: Any) -> str:
        return compiled.sub(options.replacement, _expect_text("regex_replace", value), count=options.count)

    return _bind("regex_replace", forward, None)


class _TruncateArgs(_Args):
    length: int = Field(ge=1)


@_transform("truncate")
def _build_truncate(args: Any) -> BoundTransform:
    """Cut text to at most `length` characters.

    Argument: length (required), a positive integer; the shorthand {truncate: 80} means
    {truncate: {length: 80}}. Non-text values are refused.
    Not invertible: a two-way mapping cannot write this field back.
    Example: {truncate: 5}   "Lovelace" -> "Lovel"
    """
    if args is None:
        raise TransformSpecError("truncate needs a length, e.g. {truncate: 80}")
    options = _parse_args("truncate", _TruncateArgs, args, primary="length")
    return _bind("truncate", lambda value: _expect_text("truncate", value)[: options.length], None)


# ---------------------------------------------------------------------------------------------------
# Contact details, through the libraries that know the rules


class _PhoneArgs(_Args):
    region: str | None = None

    @field_validator("region")
    @classmethod
    def _region_is_known(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.upper() not in phonenumbers.SUPPORTED_REGIONS:
            hint = " (the United Kingdom is 'GB')" if value.upper() == "UK" else ""
            raise ValueError(f"unknown region {value!r}{hint}; use an ISO 3166 two-letter code such as 'GB'")
        return value.upper()


_PHONE_PARSE_REASONS = {
    phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: (
        "has no known country code (start it with + or set the phone region)"
    ),
    phonenumbers.NumberParseException.TOO_SHORT_NSN: "is too short for a phone number",
    phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "is too short for a phone number",
    phonenumbers.NumberParseException.TOO_LONG: "is too long for a phone number",
}


@_transform("phone")
def _build_phone(args: Any) -> BoundTransform:
    """Normalise a phone number to E.164 ("+442079460018") with Google's libphonenumber rules.

    Argument:
      region: the ISO 3166 country for numbers written without a country code, such as "GB";
              the shorthand {phone: GB} means {phone: {region: GB}}. Without a region every number
              must start with + and its country code.
    Numbers that are impossible or unassigned for their country are refused. An extension is kept
    as ";ext=123" after the number (E.164 itself has none). Whole numbers are read as digits.
    Two-way: written back unchanged.
    Example: {phone: {region: GB}}   "020 7946 0018" -> "+442079460018"
    """
    options = _parse_args("phone", _PhoneArgs, args, primary="region")

    def forward(value: Any) -> str:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        text = _expect_text("phone", value)
        try:
            number = phonenumbers.parse(text, options.region)
        except phonenumbers.NumberParseException as err:
            reason = _PHONE_PARSE_REASONS.get(err.error_type, "is not a phone number")
            raise TransformError(f"{_show(value)} {reason}") from None
        if not phonenumbers.is_valid_number(number):
            where = phonenumbers.region_code_for_number(number) or options.region or "its country"
            raise TransformError(f"{_show(value)} is not a valid phone number for {where}")
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        return f"{e164};ext={number.extension}" if number.extension else e164

    return _bind("phone", forward, _identity)


@_transform("email")
def _build_email(args: Any) -> BoundTransform:
    """Normalise an email address: strip spaces, lower-case the domain, refuse invalid addresses.

    No arguments. Validation is by syntax only (email-validator, no DNS lookup); the part before
    the @ keeps its case, since mail servers may treat it as significant.
    Two-way: written back unchanged.
    Example: email   " Ada.Lovelace@EXAMPLE.com " -> "Ada.Lovelace@example.com"
    """
    _no_args("email", args)

    def forward(value: Any) -> str:
        text = _expect_text("email", value).strip()
        try:
            return validate_email(text, check_deliverability=False).normalized
        except EmailNotValidError as err:
            raise TransformError(f"{_show(value)} is not a valid email address: {str(err)[:120]}") from None

    return _bind("email", forward, _identity)
