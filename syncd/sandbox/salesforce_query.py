"""Running a parsed SOQL query against the org: name and type checks, filtering, ordering, shaping rows.

Names are checked against the object model before any row is read, with Salesforce's INVALID_TYPE and
INVALID_FIELD messages, and literals against field types ("must be of type date and should not be
enclosed in quotes"), because these are the mistakes a query builder makes and real Salesforce reports.
String comparisons are case-insensitive, `!=` matches nulls, and ORDER BY puts nulls first ascending and
last descending unless told otherwise, as in SOQL.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from syncd.sandbox import soql
from syncd.sandbox.salesforce_ids import normalize_id
from syncd.sandbox.salesforce_org import Org
from syncd.sandbox.salesforce_schema import (
    NUMBER_TYPES,
    STRING_TYPES,
    FieldDef,
    SObjectDef,
    child_relationship_name,
)
from syncd.sandbox.salesforce_store import parse_sf_datetime
from syncd.sandbox.soql import SoqlError, located

Row = dict[str, Any]

_TYPE_WORD = {"datetime": "dateTime", "currency": "double", "percent": "double", "int": "double"}


class QueryRunner:
    def __init__(self, org: Org, source: str) -> None:
        self.org = org
        self.source = source
        self._cache: dict[str, Row | None] = {}
        self._child_rows: dict[tuple[str, str, bool], dict[str, list[Row]]] = {}

    # --- names ----------------------------------------------------------------------------------

    def sobject(self, name: str, column: int) -> SObjectDef:
        obj = self.org.objects.get(name) or next(
            (o for n, o in self.org.objects.items() if n.lower() == name.lower()), None
        )
        if obj is None:
            raise SoqlError(
                "INVALID_TYPE",
                located(
                    self.source,
                    column,
                    f"sObject type '{name}' is not supported. If you are attempting to use a custom object, be "
                    "sure to append the '__c' after the entity name. Please reference your WSDL or the describe "
                    "call for the appropriate names.",
                ),
            )
        return obj

    def resolve(self, obj: SObjectDef, path: soql.FieldPath) -> list[tuple[SObjectDef, FieldDef]]:
        """The chain of (object, field) a dotted path walks; the last field is the one selected."""
        chain: list[tuple[SObjectDef, FieldDef]] = []
        current = obj
        for i, part in enumerate(path.parts):
            last = i == len(path.parts) - 1
            if last:
                f = current.field_ci(part)
                if f is None:
                    raise SoqlError(
                        "INVALID_FIELD", located(self.source, path.column, self._no_column(part, current))
                    )
                chain.append((current, f))
                break
            ref = current.relationship(part)
            if ref is None:
                raise SoqlError(
                    "INVALID_FIELD",
                    located(
                        self.source,
                        path.column,
                        f"Didn't understand relationship '{part}' in field path. If you are attempting to use a "
                        "custom relationship, be sure to append the '__r' after the custom relationship name. "
                        "Please reference your WSDL or the describe call for the appropriate names.",
                    ),
                )
            chain.append((current, ref))
            current = self.org.objects[ref.reference_to[0]]
        return chain

    @staticmethod
    def _no_column(name: str, obj: SObjectDef) -> str:
        return (
            f"No such column '{name}' on entity '{obj.name}'. If you are attempting to use a custom field, be "
            "sure to append the '__c' after the custom field name. Please reference your WSDL or the describe "
            "call for the appropriate names."
        )

    # --- values ---------------------------------------------------------------------------------

    def _record(self, record_id: str | None) -> Row | None:
        if not record_id:
            return None
        if record_id not in self._cache:
            self._cache[record_id] = self.org.store.get(record_id)
        return self._cache[record_id]

    def value(self, record: Row, chain: list[tuple[SObjectDef, FieldDef]]) -> Any:
        current: Row | None = record
        for _obj, f in chain[:-1]:
            current = self._record(current.get(f.name)) if current else None
        return current.get(chain[-1][1].name) if current else None

    # --- WHERE ----------------------------------------------------------------------------------

    def check_literal(self, f: FieldDef, lit: soql.Literal, path: soql.FieldPath, op: str) -> None:
        if lit.kind == "null":
            if op not in {"=", "!=", "IN", "NOT IN"}:
                raise SoqlError(
                    "MALFORMED_QUERY", located(self.source, path.column, "unexpected token: 'null'")
                )
            return
        expected = {
            "string": f.type in STRING_TYPES or f.type in {"id", "reference"},
            "number": f.type in NUMBER_TYPES,
            "boolean": f.type == "boolean",
            "date": f.type == "date",
            "datetime": f.type == "datetime",
            "dateliteral": f.type in {"date", "datetime"},
        }[lit.kind]
        if not expected:
            word = _TYPE_WORD.get(f.type, f.type if f.type not in STRING_TYPES else "string")
            quoting = (
                "should be enclosed in quotes" if word == "string" else "should not be enclosed in quotes"
            )
            raise SoqlError(
                "INVALID_FIELD",
                located(
                    self.source,
                    path.column,
                    f"value of filter criterion for field '{f.name}' must be of type {word} and {quoting}",
                ),
            )
        bad_id = f.type in {"id", "reference"} and lit.kind == "string" and normalize_id(lit.value) is None
        if bad_id and (lit.value != "" or op not in {"=", "!="}):
            raise SoqlError(
                "INVALID_QUERY_FILTER_OPERATOR",
                located(self.source, path.column, f"invalid ID field: {lit.value}"),
            )
        if op == "LIKE" and f.type not in STRING_TYPES:
            raise SoqlError(
                "INVALID_FIELD",
                located(self.source, path.column, f"invalid operator on {f.type} field: {f.name}"),
            )

    def compile(self, obj: SObjectDef, cond: soql.Condition, today: date) -> Callable[[Row], bool]:
        if isinstance(cond, soql.Not):
            inner = self.compile(obj, cond.item, today)
            return lambda r: not inner(r)
        if isinstance(cond, soql.BoolOp):
            parts = [self.compile(obj, c, today) for c in cond.items]
            if cond.op == "AND":
                return lambda r: all(p(r) for p in parts)
            return lambda r: any(p(r) for p in parts)
        chain = self.resolve(obj, cond.field)
        f = chain[-1][1]
        literals = cond.value if isinstance(cond.value, tuple) else (cond.value,)
        for lit in literals:
            self.check_literal(f, lit, cond.field, cond.op)
        test = _predicate(f, cond.op, literals, today)
        return lambda r: test(self.value(r, chain))

    # --- the query ------------------------------------------------------------------------------

    def run(
        self, query: soql.Query, include_deleted: bool, today: date | None = None
    ) -> tuple[int, list[Row]]:
        """(totalSize, rows) for the whole result; paging is the caller's business."""
        today = today or datetime.now(UTC).date()
        obj = self.sobject(query.sobject, query.sobject_column)
        counts = [s for s in query.select if isinstance(s, soql.Count)]
        plain = [s for s in query.select if isinstance(s, soql.FieldPath)]
        if counts and plain:
            raise SoqlError(
                "MALFORMED_QUERY",
                located(
                    self.source, plain[0].column, f"Field must be grouped or aggregated: {plain[0].dotted}"
                ),
            )
        columns = [(s, self.resolve(obj, s)) for s in plain]
        subqueries = [self._child(obj, s) for s in query.select if isinstance(s, soql.SubQuery)]
        predicate = self.compile(obj, query.where, today) if query.where else None
        order = [(o, self.resolve(obj, o.field)) for o in query.order]
        if query.offset is not None and query.offset > 2000:
            raise SoqlError(
                "NUMBER_OUTSIDE_VALID_RANGE",
                "Maximum SOQL offset allowed is 2000",
            )
        floor = _modstamp_floor(query.where) if query.where else None
        records = [
            r
            for r in self.org.store.all(obj.name, include_deleted, floor)
            if predicate is None or predicate(r)
        ]
        if counts:
            for c in counts:
                if c.field is not None:
                    self.resolve(obj, c.field)
            n = len(records)
            if counts[0].field is None:
                return n, []
            row: Row = {"attributes": {"type": "AggregateResult"}}
            for i, c in enumerate(counts):
                row[c.alias or f"expr{i}"] = n
            return 1, [row]
        if order:
            records.sort(key=functools.cmp_to_key(lambda a, b: self._compare_rows(a, b, order)))
        start = query.offset or 0
        records = records[start:]
        if query.limit is not None:
            records = records[: query.limit]
        return len(records), [self._shape(obj, r, columns, subqueries, include_deleted) for r in records]

    def _child(self, parent: SObjectDef, sub: soql.SubQuery) -> tuple[str, SObjectDef, FieldDef, soql.Query]:
        for child in self.org.objects.values():
            if child_relationship_name(child).lower() != sub.query.sobject.lower():
                continue
            link = next(
                (
                    f
                    for f in child.fields.values()
                    if parent.name in f.reference_to and not f.system and f.name != "OwnerId"
                ),
                None,
            )
            if link is not None:
                return child_relationship_name(child), child, link, sub.query
        raise SoqlError(
            "INVALID_TYPE",
            located(
                self.source,
                sub.query.sobject_column,
                f"Didn't understand relationship '{sub.query.sobject}' in FROM part of query call. If you are "
                "attempting to use a custom relationship, be sure to append the '__r' after the custom "
                "relationship name. Please reference your WSDL or the describe call for the appropriate names.",
            ),
        )

    def _shape(
        self,
        obj: SObjectDef,
        record: Row,
        columns: list[tuple[soql.FieldPath, list[tuple[SObjectDef, FieldDef]]]],
        subqueries: list[tuple[str, SObjectDef, FieldDef, soql.Query]],
        include_deleted: bool,
    ) -> Row:
        out: Row = {"attributes": {"type": obj.name, "url": self.org.url(obj.name, record["Id"])}}
        for _path, chain in columns:
            target = out
            current: Row | None = record
            for _owner, f in chain[:-1]:
                rel = f.relationship_name or f.name
                current = self._record(current.get(f.name)) if current else None
                ref_obj = self.org.objects[f.reference_to[0]]
                if current is None:
                    target[rel] = None
                    break
                nested = target.get(rel)
                if not isinstance(nested, dict):
                    nested = {
                        "attributes": {"type": ref_obj.name, "url": self.org.url(ref_obj.name, current["Id"])}
                    }
                    target[rel] = nested
                target = nested
            else:
                last = chain[-1][1]
                target[last.name] = current.get(last.name) if current else None
        for rel_name, child, link, sub in subqueries:
            inner = QueryRunner(self.org, self.source)
            rows = self._children(child, link, include_deleted).get(record["Id"], [])
            cols = [(s, inner.resolve(child, s)) for s in sub.select if isinstance(s, soql.FieldPath)]
            shaped = [inner._shape(child, r, cols, [], include_deleted) for r in rows]
            out[rel_name] = {"totalSize": len(shaped), "done": True, "records": shaped} if shaped else None
        return out

    def _children(self, child: SObjectDef, link: FieldDef, include_deleted: bool) -> dict[str, list[Row]]:
        """Child records by parent Id, read once per query rather than once per parent row."""
        key = (child.name, link.name, include_deleted)
        if key not in self._child_rows:
            grouped: dict[str, list[Row]] = {}
            for row in self.org.store.all(child.name, include_deleted):
                if row.get(link.name):
                    grouped.setdefault(row[link.name], []).append(row)
            self._child_rows[key] = grouped
        return self._child_rows[key]

    def _compare_rows(
        self, a: Row, b: Row, order: list[tuple[soql.OrderBy, list[tuple[SObjectDef, FieldDef]]]]
    ) -> int:
        for o, chain in order:
            va, vb = self.value(a, chain), self.value(b, chain)
            ka, kb = _sort_key(chain[-1][1], va), _sort_key(chain[-1][1], vb)
            if ka == kb:
                continue
            if ka is None or kb is None:
                a_first = (ka is None) != o.nulls_last
                return -1 if a_first else 1
            result = -1 if ka < kb else 1
            return -result if o.descending else result
        return 0


def _sort_key(f: FieldDef, value: Any) -> Any:
    if value is None:
        return None
    if f.type in STRING_TYPES:
        return str(value).casefold()
    if f.type in NUMBER_TYPES:
        return Decimal(str(value))
    return value


def _comparable(f: FieldDef, value: Any) -> Any:
    """A stored value in the form literals are compared with."""
    if value is None:
        return None
    if f.type in STRING_TYPES:
        return str(value).casefold()
    if f.type in NUMBER_TYPES:
        return Decimal(str(value))
    if f.type == "date":
        return date.fromisoformat(value)
    if f.type == "datetime":
        return parse_sf_datetime(value)
    return value


def _modstamp_floor(cond: soql.Condition) -> datetime | None:
    """A lower bound the condition puts on SystemModstamp, or None: only a prefilter, the full
    predicate still decides each row (so a bound that is too low costs time, never correctness)."""
    if isinstance(cond, soql.Compare):
        lit = cond.value
        if (
            cond.field.dotted.lower() == "systemmodstamp"
            and cond.op in {">=", ">", "="}
            and isinstance(lit, soql.Literal)
            and lit.kind == "datetime"
            and isinstance(lit.value, datetime)
        ):
            return lit.value
        return None
    if isinstance(cond, soql.BoolOp):
        floors = [_modstamp_floor(c) for c in cond.items]
        known = [f for f in floors if f is not None]
        if cond.op == "AND":
            return max(known) if known else None
        return min(known) if known and len(known) == len(floors) else None
    return None


def _literal(f: FieldDef, lit: soql.Literal) -> Any:
    if lit.kind == "string":
        if f.type in {"id", "reference"}:
            return normalize_id(lit.value) or lit.value
        return str(lit.value).casefold()
    return lit.value


def _predicate(
    f: FieldDef, op: str, literals: tuple[soql.Literal, ...], today: date
) -> Callable[[Any], bool]:
    if op == "LIKE":
        pattern = soql.like_to_regex(literals[0].value)
        return lambda v: v is not None and pattern.fullmatch(str(v)) is not None
    if op in {"IN", "NOT IN"}:
        wanted = [_literal(f, lit) for lit in literals]
        if op == "IN":
            return lambda v: (_comparable(f, v) in wanted) if v is not None else None in wanted
        return lambda v: (_comparable(f, v) not in wanted) if v is not None else None not in wanted
    lit = literals[0]
    if lit.kind == "null":
        return (lambda v: v is None) if op == "=" else (lambda v: v is not None)
    if lit.kind == "dateliteral":
        first, last = lit.value.day_range(today)
        low: Any
        high: Any
        if f.type == "date":
            low, high = first, last + timedelta(days=1)
        else:
            low = datetime.combine(first, time(), UTC)
            high = datetime.combine(last + timedelta(days=1), time(), UTC)

        def in_range(v: Any) -> bool:
            c = _comparable(f, v)
            if c is None:
                return op == "!="
            outcome: bool = {
                "=": low <= c < high,
                "!=": not (low <= c < high),
                "<": c < low,
                "<=": c < high,
                ">": c >= high,
                ">=": c >= low,
            }[op]
            return outcome

        return in_range
    target = _literal(f, lit)

    def compare(v: Any) -> bool:
        c = _comparable(f, v)
        if c is None:
            return op == "!="
        if op == "=":
            return bool(c == target)
        if op == "!=":
            return bool(c != target)
        if op == "<":
            return bool(c < target)
        if op == "<=":
            return bool(c <= target)
        if op == ">":
            return bool(c > target)
        return bool(c >= target)

    return compare
