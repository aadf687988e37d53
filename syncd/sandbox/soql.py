"""The SOQL subset the sandbox understands, as one lark grammar and the syntax tree it builds.

Salesforce rejects much that a permissive parser would accept (mixing AND and OR without parentheses,
`\\%` outside LIKE, a quoted date), and a sandbox that accepts it would hide bugs in the client's query
builder. So the grammar is strict, and refusals carry Salesforce's own message layout: the query, a caret
under the offending column, `ERROR at Row:1:Column:N`, then the reason.

This module knows no schema; `salesforce_query` checks names and types against the object model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

GRAMMAR = r"""
query: _SELECT select_list _FROM NAME where? order? limit? offset?

select_list: select_item ("," select_item)*
?select_item: field_path
            | count
            | "(" query ")"               -> subquery
count: _COUNT "(" field_path? ")" NAME?

field_path: NAME ("." NAME)*

where: _WHERE condition
condition: unary (BOOLOP unary)*
?unary: _NOT unary                        -> negation
      | "(" condition ")"
      | comparison
comparison: field_path CMP value          -> compare
          | field_path _LIKE STRING       -> like
          | field_path _IN value_list     -> in_
          | field_path _NOT _IN value_list -> not_in

value_list: "(" value ("," value)* ")"
?value: STRING                            -> string
      | NUMBER                            -> number
      | DATETIME                          -> datetime
      | DATE                              -> date
      | DATE_N                            -> date_n
      | DATE_WORD                         -> date_word
      | TRUE                              -> true
      | FALSE                             -> false
      | NULL                              -> null

order: _ORDER _BY order_item ("," order_item)*
order_item: field_path DIRECTION? nulls?
nulls: _NULLS NULLS_WHERE
limit: _LIMIT INT
offset: _OFFSET INT

_SELECT: "SELECT"i
_FROM: "FROM"i
_WHERE: "WHERE"i
_COUNT: "COUNT"i
_NOT: "NOT"i
_LIKE: "LIKE"i
_IN: "IN"i
_ORDER: "ORDER"i
_BY: "BY"i
_NULLS: "NULLS"i
_LIMIT: "LIMIT"i
_OFFSET: "OFFSET"i
BOOLOP: "AND"i | "OR"i
DIRECTION: "ASC"i | "DESC"i
NULLS_WHERE: "FIRST"i | "LAST"i
TRUE.2: "TRUE"i
FALSE.2: "FALSE"i
NULL.2: "NULL"i
CMP: "=" | "!=" | "<>" | "<=" | ">=" | "<" | ">"
DATETIME.3: /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?(Z|[+-]\d{2}:\d{2})/
DATE.3: /\d{4}-\d{2}-\d{2}(?![\dT])/
DATE_N.2: /(LAST_N_DAYS|NEXT_N_DAYS):\d+/i
DATE_WORD.2: /(TODAY|YESTERDAY|TOMORROW)(?![A-Za-z0-9_])/i
NUMBER: /[+-]?(\d+(\.\d*)?|\.\d+)/
INT: /\d+/
STRING: /'(\\.|[^'\\])*'/
NAME: /[A-Za-z][A-Za-z0-9_]*/

%ignore /\s+/
"""


class SoqlError(Exception):
    """A query Salesforce would refuse: `error_code` is MALFORMED_QUERY, INVALID_FIELD or INVALID_TYPE."""

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message


def located(query: str, column: int, reason: str) -> str:
    """Salesforce's error layout: the query, a caret under `column` (1-based), the position, the reason."""
    return f"\n{query}\n{' ' * (column - 1)}^\nERROR at Row:1:Column:{column}\n{reason}"


# --- syntax tree --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldPath:
    parts: tuple[str, ...]
    column: int

    @property
    def dotted(self) -> str:
        return ".".join(self.parts)


@dataclass(frozen=True)
class Count:
    field: FieldPath | None
    alias: str | None


@dataclass(frozen=True)
class SubQuery:
    query: Query


SelectItem = FieldPath | Count | SubQuery


@dataclass(frozen=True)
class DateLiteral:
    """TODAY, YESTERDAY, TOMORROW, LAST_N_DAYS:n, NEXT_N_DAYS:n: a range of whole days (UTC)."""

    name: str
    n: int = 0

    def day_range(self, today: date) -> tuple[date, date]:
        """Inclusive first and last day."""
        if self.name == "TODAY":
            return today, today
        if self.name == "YESTERDAY":
            return today - timedelta(days=1), today - timedelta(days=1)
        if self.name == "TOMORROW":
            return today + timedelta(days=1), today + timedelta(days=1)
        if self.name == "LAST_N_DAYS":
            return today - timedelta(days=self.n), today
        return today, today + timedelta(days=self.n)  # NEXT_N_DAYS


@dataclass(frozen=True)
class Literal:
    """A value with its SOQL kind: string, number, boolean, null, date, datetime, dateliteral."""

    kind: str
    value: Any


@dataclass(frozen=True)
class Compare:
    field: FieldPath
    op: str  # = != < <= > >= LIKE IN NOT IN
    value: Literal | tuple[Literal, ...]


@dataclass(frozen=True)
class BoolOp:
    op: str  # AND / OR
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    item: Condition


Condition = Compare | BoolOp | Not


@dataclass(frozen=True)
class OrderBy:
    field: FieldPath
    descending: bool
    nulls_last: bool


@dataclass(frozen=True)
class Query:
    select: tuple[SelectItem, ...]
    sobject: str
    sobject_column: int
    where: Condition | None
    order: tuple[OrderBy, ...]
    limit: int | None
    offset: int | None

    @property
    def is_count(self) -> bool:
        return any(isinstance(s, Count) for s in self.select)


# --- string literals ----------------------------------------------------------------------------

_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}
LIKE_PERCENT = "\x00%"  # an escaped % inside a LIKE pattern, kept apart from the wildcard
LIKE_UNDERSCORE = "\x00_"


def unescape_string(token: str, in_like: bool) -> str:
    """Decode a quoted SOQL string. `\\%` and `\\_` are only legal in LIKE patterns."""
    body = token[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        elif nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", body[i + 2 : i + 6]):
            out.append(chr(int(body[i + 2 : i + 6], 16)))
            i += 6
        elif nxt in "%_" and in_like:
            out.append("\x00" + nxt)
            i += 2
        else:
            raise ValueError(
                f"Invalid string literal '{body}'. Illegal character sequence '\\{nxt}' in string literal."
            )
    return "".join(out)


def like_to_regex(pattern: str) -> re.Pattern[str]:
    """A LIKE pattern (already unescaped) as a case-insensitive regex over the whole value."""
    parts: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\x00":
            parts.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        parts.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def parse_datetime_literal(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


# --- tree building ------------------------------------------------------------------------------


@v_args(inline=True)
class _Build(Transformer[Token, Any]):
    def __init__(self, source: str) -> None:
        super().__init__()
        self.source = source

    def query(self, _select: Any, *rest: Any) -> Query:
        select_list, name = _select, rest[0]
        where = order = limit = offset = None
        for part in rest[1:]:
            tag, value = part
            if tag == "where":
                where = value
            elif tag == "order":
                order = value
            elif tag == "limit":
                limit = value
            else:
                offset = value
        return Query(tuple(select_list), str(name), name.column, where, tuple(order or ()), limit, offset)

    def select_list(self, *items: Any) -> list[Any]:
        return list(items)

    def subquery(self, query: Query) -> SubQuery:
        return SubQuery(query)

    def count(self, *args: Any) -> Count:
        path = next((a for a in args if isinstance(a, FieldPath)), None)
        alias = next((str(a) for a in args if isinstance(a, Token)), None)
        return Count(path, alias)

    def field_path(self, *names: Token) -> FieldPath:
        return FieldPath(tuple(str(n) for n in names), names[0].column or 1)

    def where(self, condition: Condition) -> tuple[str, Condition]:
        return ("where", condition)

    def condition(self, first: Condition, *rest: Any) -> Condition:
        if not rest:
            return first
        ops = {str(op).upper() for op in rest[0::2]}
        if len(ops) > 1:
            op_token = next(op for op in rest[0::2] if str(op).upper() != str(rest[0]).upper())
            raise SoqlError(
                "MALFORMED_QUERY",
                located(self.source, op_token.column or 1, f"unexpected token: '{op_token}'"),
            )
        return BoolOp(ops.pop(), (first, *rest[1::2]))

    def negation(self, item: Condition) -> Not:
        return Not(item)

    def compare(self, path: FieldPath, op: Token, value: Literal) -> Compare:
        return Compare(path, "!=" if str(op) == "<>" else str(op), value)

    def like(self, path: FieldPath, pattern: Token) -> Compare:
        return Compare(path, "LIKE", Literal("string", self._string(pattern, in_like=True)))

    def in_(self, path: FieldPath, values: tuple[Literal, ...]) -> Compare:
        return Compare(path, "IN", values)

    def not_in(self, path: FieldPath, values: tuple[Literal, ...]) -> Compare:
        return Compare(path, "NOT IN", values)

    def value_list(self, *values: Literal) -> tuple[Literal, ...]:
        return values

    def _string(self, token: Token, in_like: bool) -> str:
        try:
            return unescape_string(str(token), in_like)
        except ValueError as exc:
            raise SoqlError("MALFORMED_QUERY", located(self.source, token.column or 1, str(exc))) from exc

    def string(self, token: Token) -> Literal:
        return Literal("string", self._string(token, in_like=False))

    def number(self, token: Token) -> Literal:
        return Literal("number", Decimal(str(token)))

    def datetime(self, token: Token) -> Literal:
        return Literal("datetime", parse_datetime_literal(str(token)))

    def date(self, token: Token) -> Literal:
        try:
            return Literal("date", date.fromisoformat(str(token)))
        except ValueError as exc:
            raise SoqlError(
                "MALFORMED_QUERY",
                located(
                    self.source,
                    token.column or 1,
                    f"line 1:{token.column} no viable alternative at character '{token}'",
                ),
            ) from exc

    def date_n(self, token: Token) -> Literal:
        name, n = str(token).upper().split(":")
        return Literal("dateliteral", DateLiteral(name, int(n)))

    def date_word(self, token: Token) -> Literal:
        return Literal("dateliteral", DateLiteral(str(token).upper()))

    def true(self, _token: Token) -> Literal:
        return Literal("boolean", True)

    def false(self, _token: Token) -> Literal:
        return Literal("boolean", False)

    def null(self, _token: Token) -> Literal:
        return Literal("null", None)

    def order(self, *items: OrderBy) -> tuple[str, tuple[OrderBy, ...]]:
        return ("order", items)

    def order_item(self, path: FieldPath, *rest: Any) -> OrderBy:
        descending = False
        nulls_last: bool | None = None
        for part in rest:
            if isinstance(part, Token) and part.type == "DIRECTION":
                descending = str(part).upper() == "DESC"
            elif isinstance(part, bool):
                nulls_last = part
        return OrderBy(path, descending, descending if nulls_last is None else nulls_last)

    def nulls(self, where: Token) -> bool:
        return str(where).upper() == "LAST"

    def limit(self, n: Token) -> tuple[str, int]:
        return ("limit", int(n))

    def offset(self, n: Token) -> tuple[str, int]:
        return ("offset", int(n))


_PARSER = Lark(GRAMMAR, start="query", parser="lalr", maybe_placeholders=False)


def parse(source: str) -> Query:
    """Parse one SOQL query or raise SoqlError(MALFORMED_QUERY) with Salesforce's message layout."""
    try:
        tree = _PARSER.parse(source)
    except UnexpectedEOF as exc:
        raise SoqlError(
            "MALFORMED_QUERY", located(source, len(source) + 1, "unexpected token: '<EOF>'")
        ) from exc
    except UnexpectedToken as exc:
        token = exc.token
        text = "<EOF>" if token.type == "$END" else str(token)
        column = (len(source) + 1) if token.type == "$END" else (exc.column or 1)
        raise SoqlError("MALFORMED_QUERY", located(source, column, f"unexpected token: '{text}'")) from exc
    except UnexpectedCharacters as exc:
        pos = exc.pos_in_stream or 0
        ch = source[pos] if pos < len(source) else "<EOF>"
        raise SoqlError(
            "MALFORMED_QUERY",
            located(
                source,
                exc.column or 1,
                f"line 1:{(exc.column or 1) - 1} no viable alternative at character '{ch}'",
            ),
        ) from exc
    except UnexpectedInput as exc:  # pragma: no cover - lark raises one of the above
        raise SoqlError("MALFORMED_QUERY", located(source, 1, "unexpected token")) from exc
    try:
        result = _Build(source).transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, SoqlError):
            raise exc.orig_exc from None
        raise
    assert isinstance(result, Query)
    return result
