"""Record writes as Salesforce performs them: type coercion, validation, system fields, deletes.

The order of checks and the error codes and messages follow what Salesforce returns, because a
connector maps those codes onto syncd's error kinds (a REQUIRED_FIELD_MISSING is a dead letter, an
UNABLE_TO_LOCK_ROW a retry); a sandbox that invented its own would make that mapping untestable.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from syncd.sandbox.salesforce_ids import normalize_id
from syncd.sandbox.salesforce_schema import (
    NUMBER_TYPES,
    STRING_TYPES,
    FieldDef,
    SObjectDef,
)
from syncd.sandbox.salesforce_store import OrgStore, format_sf_datetime, parse_sf_datetime

_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
UPSERT_KEY_TYPES = {"string", "email", "int", "double", "phone", "url", "id"}


class SfError(Exception):
    """A request Salesforce refuses as a whole: HTTP `status` and `[{"message", "errorCode"}]`."""

    def __init__(self, status: int, code: str, message: str, fields: list[str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields

    def body(self) -> list[dict[str, Any]]:
        entry: dict[str, Any] = {"message": self.message, "errorCode": self.code}
        if self.fields is not None:
            entry["fields"] = self.fields
        return [entry]


@dataclass
class RecordFault(Exception):
    """One record refused; in collections it becomes that record's `errors[]` entry."""

    status_code: str
    message: str
    fields: list[str] = field(default_factory=list)

    def as_error(self) -> dict[str, Any]:
        return {"statusCode": self.status_code, "message": self.message, "fields": self.fields}

    def as_request_error(self, status: int = 400) -> SfError:
        return SfError(status, self.status_code, self.message, self.fields)


class Org:
    """The object model plus the store: every write path (REST, collections, bulk) goes through here."""

    def __init__(self, objects: dict[str, SObjectDef], store: OrgStore, api_version: str) -> None:
        self.objects = objects
        self.store = store
        self.api_version = api_version
        self.user_id = ""
        self.org_id = ""
        self._transaction_stamp: str | None = None

    @contextmanager
    def one_transaction(self, stamp: str | None = None) -> Iterator[None]:
        """Writes inside share one SystemModstamp, as the records of one Salesforce transaction do.

        Clients that page by SystemModstamp must cope with many records carrying the same stamp (a
        200-record collection call, a bulk chunk); the sandbox reproduces that rather than hiding it.
        """
        with self.store.lock:
            outer = self._transaction_stamp
            self._transaction_stamp = stamp or outer or self.store.tick()
            try:
                yield
            finally:
                self._transaction_stamp = outer

    def stamp(self, after: str | None = None) -> str:
        """The stamp of a write now; `after` is the record's current stamp, which it must pass."""
        return self._transaction_stamp or self.store.tick(after)

    # --- lookups ------------------------------------------------------------------------------

    def sobject(self, name: str) -> SObjectDef:
        found = self.objects.get(name) or next(
            (o for n, o in self.objects.items() if n.lower() == name.lower()), None
        )
        if found is None:
            raise SfError(404, "NOT_FOUND", "The requested resource does not exist")
        return found

    def url(self, sobject: str, record_id: str) -> str:
        return f"/services/data/v{self.api_version}/sobjects/{sobject}/{record_id}"

    def live_record(self, obj: SObjectDef, raw_id: str) -> dict[str, Any]:
        """The record with this Id, or the RecordFault Salesforce answers for a bad or deleted one."""
        record_id = normalize_id(raw_id)
        if record_id is None or not record_id.startswith(obj.key_prefix):
            raise RecordFault("MALFORMED_ID", f"{obj.label} ID: id value of incorrect type: {raw_id}", ["Id"])
        record = self.store.get(record_id)
        if record is None:
            if any(t[0] == record_id for t in self.store.tombstones(obj.name)):
                raise RecordFault("ENTITY_IS_DELETED", "entity is deleted", [])
            raise RecordFault("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [])
        if record.get("IsDeleted"):
            raise RecordFault("ENTITY_IS_DELETED", "entity is deleted", [])
        return record

    @staticmethod
    def indexed(f: FieldDef) -> bool:
        """Fields Salesforce indexes for lookups: external ids, unique and idLookup fields."""
        return (f.external_id or f.unique or f.id_lookup) and f.type != "id"

    @staticmethod
    def lookup_key(f: FieldDef, value: Any) -> str:
        if f.type == "reference":
            return normalize_id(str(value)) or str(value)
        if f.type in STRING_TYPES and not f.case_sensitive:
            return str(value).casefold()
        return str(value)

    def find_by(self, obj: SObjectDef, f: FieldDef, value: Any) -> list[dict[str, Any]]:
        """Live records whose `f` equals `value` (case-insensitively unless the field is case sensitive)."""
        if self.indexed(f):
            found = self.store.look_up(obj.name, f.name, self.lookup_key(f, value))
            return [r for r in found if not r.get("IsDeleted")]
        key = self.lookup_key(f, value)
        return [
            r
            for r in self.store.all(obj.name)
            if r.get(f.name) is not None and self.lookup_key(f, r[f.name]) == key
        ]

    def save(self, obj: SObjectDef, record: dict[str, Any]) -> None:
        lookups = {
            f.name: self.lookup_key(f, record[f.name])
            for f in obj.fields.values()
            if self.indexed(f) and record.get(f.name) is not None
        }
        self.store.put(obj.name, record, lookups)

    # --- value coercion -------------------------------------------------------------------------

    def coerce(self, obj: SObjectDef, f: FieldDef, value: Any, from_csv: bool) -> Any:
        """The stored form of `value`, or an error naming the field as Salesforce does.

        JSON bodies that cannot be deserialised fail the whole request (JSON_PARSER_ERROR); CSV values
        (Bulk API) fail their row (INVALID_TYPE_ON_FIELD_IN_RECORD).
        """
        if from_csv and value in {
            "",
            "#N/A",
        }:  # Bulk API: blank leaves a field alone on insert, #N/A clears it
            value = None
        if value is None:
            return False if f.type == "boolean" else None  # a checkbox is never null: null clears it

        def bad(kind: str) -> Exception:
            if from_csv:
                return RecordFault(
                    "INVALID_TYPE_ON_FIELD_IN_RECORD",
                    f"{f.label}: value not of required type: {value}",
                    [f.name],
                )
            token = (
                "VALUE_STRING"
                if isinstance(value, str)
                else "VALUE_NUMBER_INT"
                if isinstance(value, int)
                else "START_OBJECT"
            )
            return SfError(
                400,
                "JSON_PARSER_ERROR",
                f"Cannot deserialize instance of {kind} from {token} value {value} or request may be missing a "
                "required field",
            )

        kind = f.type
        if kind in STRING_TYPES or kind in {"id", "reference"}:
            if isinstance(value, (dict, list)):
                raise bad("string")
            if isinstance(value, bool):
                return "true" if value else "false"
            text = str(value) if not isinstance(value, float) else repr(value)
            return (normalize_id(text) or text) if kind in {"id", "reference"} else text
        if kind == "boolean":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in {"true", "false"}:
                return value.lower() == "true"
            raise bad("boolean")
        if kind in NUMBER_TYPES:
            if isinstance(value, (bool, dict, list)):
                raise bad("double" if kind != "int" else "int")
            try:
                number = Decimal(str(value).strip())
            except InvalidOperation as exc:
                raise bad("double" if kind != "int" else "int") from exc
            if not number.is_finite():
                raise bad("double")
            if kind == "int":
                if number != number.to_integral_value():
                    raise bad("int")
                return int(number)
            return int(number) if number == number.to_integral_value() and f.scale == 0 else float(number)
        if kind == "date":
            if not isinstance(value, str):
                raise bad("date")
            try:
                return date.fromisoformat(value).isoformat() if len(value) == 10 else _date_from_dt(value)
            except ValueError as exc:
                raise bad("date") from exc
        if kind == "datetime":
            if not isinstance(value, str):
                raise bad("datetime")
            try:
                return format_sf_datetime(_parse_any_datetime(value))
            except ValueError as exc:
                raise bad("datetime") from exc
        return value

    # --- writes ---------------------------------------------------------------------------------

    def _check_fields(
        self, obj: SObjectDef, body: dict[str, Any], creating: bool, from_csv: bool
    ) -> dict[str, Any]:
        """Coerce and check every field of a create or update body; returns canonical-name values."""
        values: dict[str, Any] = {}
        not_writable: list[str] = []
        for name, raw in body.items():
            if name == "attributes":
                continue
            f = obj.field_ci(name)
            if f is None:
                raise RecordFault(
                    "INVALID_FIELD", f"No such column '{name}' on sobject of type {obj.name}", []
                )
            if f.name == "Id" and not creating:
                continue
            if not (f.createable if creating else f.updateable):
                not_writable.append(f.name)
                continue
            values[f.name] = self.coerce(obj, f, raw, from_csv)
        if not_writable:
            raise RecordFault(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                f"Unable to create/update fields: {', '.join(not_writable)}. Please check the security settings "
                "of this field and verify that it is read/write for your profile or permission set.",
                not_writable,
            )
        for name, value in values.items():
            self._check_value(obj, obj.fields[name], value)
        return values

    def _check_value(self, obj: SObjectDef, f: FieldDef, value: Any) -> None:
        if value is None:
            if f.required and f.type != "boolean":
                raise RecordFault(
                    "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{f.name}]", [f.name]
                )
            return
        if f.type in STRING_TYPES and f.length and len(value) > f.length:
            raise RecordFault(
                "STRING_TOO_LONG",
                f"{f.label}: data value too large: {value[:80]} (max length={f.length})",
                [f.name],
            )
        if f.type == "email" and not _EMAIL_RE.match(value):
            raise RecordFault("INVALID_EMAIL_ADDRESS", f"{f.label}: invalid email address: {value}", [f.name])
        if f.type == "reference":
            ref = normalize_id(value)
            targets = [self.objects[t] for t in f.reference_to if t in self.objects]
            if ref is None:
                raise RecordFault("MALFORMED_ID", f"{f.label}: id value of incorrect type: {value}", [f.name])
            if not any(ref.startswith(t.key_prefix) for t in targets):
                raise RecordFault(
                    "FIELD_INTEGRITY_EXCEPTION", f"{f.label}: id value of incorrect type: {value}", [f.name]
                )
            target = self.store.get(ref)
            if target is None:
                raise RecordFault("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [f.name])
            if target.get("IsDeleted"):
                raise RecordFault("ENTITY_IS_DELETED", "entity is deleted", [f.name])
        if f.type in NUMBER_TYPES and f.precision:
            whole_digits = len(str(abs(int(value))).lstrip("0"))
            if whole_digits > f.precision - f.scale:
                raise RecordFault(
                    "NUMBER_OUTSIDE_VALID_RANGE",
                    f"{f.label}: value outside of valid range on numeric field: {value}",
                    [f.name],
                )

    def _finish(self, obj: SObjectDef, record: dict[str, Any]) -> None:
        """Required fields, uniqueness and validation rules: checked on the whole merged record."""
        missing = [
            f.name for f in obj.fields.values() if f.required and f.createable and record.get(f.name) is None
        ]
        if missing:
            raise RecordFault(
                "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing
            )
        for f in obj.fields.values():
            if f.unique and record.get(f.name) is not None and not f.auto_number:
                clash = [r for r in self.find_by(obj, f, record[f.name]) if r["Id"] != record["Id"]]
                if clash:
                    raise RecordFault(
                        "DUPLICATE_VALUE",
                        f"duplicate value found: {f.name} duplicates value on record with id: {clash[0]['Id']}",
                        [],
                    )
        for rule in obj.rules:
            value = record.get(rule.field)
            if value == rule.equals or (isinstance(value, str) and str(rule.equals) == value):
                raise RecordFault("FIELD_CUSTOM_VALIDATION_EXCEPTION", rule.message, [])

    def _derive(self, obj: SObjectDef, record: dict[str, Any]) -> None:
        """Fields Salesforce computes: compound Name of people, price book entry names."""
        if "Name" in obj.fields and obj.fields["Name"].calculated and obj.name in {"Contact", "User"}:
            record["Name"] = " ".join(p for p in (record.get("FirstName"), record.get("LastName")) if p)
        if obj.name == "PricebookEntry" and record.get("Product2Id"):
            product = self.store.get(record["Product2Id"]) or {}
            record["Name"] = product.get("Name")
            record["ProductCode"] = product.get("ProductCode")
        if (
            obj.name == "OrderItem"
            and record.get("Quantity") is not None
            and record.get("UnitPrice") is not None
        ):
            record["TotalPrice"] = float(Decimal(str(record["Quantity"])) * Decimal(str(record["UnitPrice"])))
        if obj.name == "OrderItem" and record.get("PricebookEntryId") and not record.get("Product2Id"):
            entry = self.store.get(record["PricebookEntryId"]) or {}
            record["Product2Id"] = entry.get("Product2Id")
        if obj.name == "Case":
            self._derive_case(record)

    def _derive_case(self, record: dict[str, Any]) -> None:
        """A case takes its contact's account when none is given, and knows when it was closed."""
        if record.get("ContactId") and not record.get("AccountId"):
            contact = self.store.get(record["ContactId"]) or {}
            record["AccountId"] = contact.get("AccountId")
        closed = record.get("Status") == "Closed"
        if closed and not record.get("IsClosed"):
            record["ClosedDate"] = record.get("LastModifiedDate")
        elif not closed:
            record["ClosedDate"] = None
        record["IsClosed"] = closed

    def create(self, sobject: str, body: dict[str, Any], from_csv: bool = False) -> str:
        obj = self.sobject(sobject)
        if not obj.createable:
            raise RecordFault(
                "INSUFFICIENT_ACCESS_OR_READONLY", "insufficient access rights on object id", []
            )
        if any(k.lower() == "id" for k in body):
            raise RecordFault(
                "INVALID_FIELD_FOR_INSERT_UPDATE", "cannot specify Id in an insert call", ["Id"]
            )
        values = self._check_fields(obj, body, creating=True, from_csv=from_csv)
        with self.store.lock:
            stamp = self.stamp()
            record: dict[str, Any] = {name: None for name in obj.fields}
            for f in obj.fields.values():
                if f.default is not None and f.name != "OwnerId":
                    record[f.name] = f.default
                if f.type == "boolean" and record[f.name] is None:
                    record[f.name] = False
            record.update(
                Id=self.store.new_id(obj.key_prefix),
                IsDeleted=False,
                CreatedDate=stamp,
                LastModifiedDate=stamp,
                SystemModstamp=stamp,
                CreatedById=self.user_id,
                LastModifiedById=self.user_id,
            )
            if "OwnerId" in obj.fields:
                record["OwnerId"] = self.user_id
            for f in obj.fields.values():
                if f.auto_number:
                    record[f.name] = f"{self.store.bump('autonumber:' + obj.name):08d}"
            record.update(values)
            self._derive(obj, record)
            self._finish(obj, record)
            self.save(obj, record)
            return str(record["Id"])

    def update(self, sobject: str, raw_id: str, body: dict[str, Any], from_csv: bool = False) -> str:
        obj = self.sobject(sobject)
        with self.store.lock:
            record = self.live_record(obj, raw_id)
            values = self._check_fields(obj, body, creating=False, from_csv=from_csv)
            stamp = self.stamp(record.get("SystemModstamp"))
            record.update(values)
            record.update(LastModifiedDate=stamp, SystemModstamp=stamp, LastModifiedById=self.user_id)
            self._derive(obj, record)
            self._finish(obj, record)
            self.save(obj, record)
            return str(record["Id"])

    def upsert_field(self, obj: SObjectDef, name: str) -> FieldDef:
        f = obj.field_ci(name)
        if f is None:
            raise SfError(
                404, "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: {name}"
            )
        if not (f.external_id or f.id_lookup) or f.type not in UPSERT_KEY_TYPES:
            raise SfError(
                400, "INVALID_FIELD", f"Field {f.name} is not an External ID or indexed field for {obj.name}"
            )
        return f

    def matches_for_upsert(self, obj: SObjectDef, f: FieldDef, value: Any) -> list[dict[str, Any]]:
        if f.type == "id":
            record_id = normalize_id(str(value))
            record = self.store.get(record_id) if record_id else None
            return [record] if record and not record.get("IsDeleted") else []
        return self.find_by(obj, f, self.coerce(obj, f, value, from_csv=False))

    def upsert(
        self, sobject: str, field_name: str, value: Any, body: dict[str, Any], from_csv: bool = False
    ) -> tuple[str, bool]:
        """Create or update by an external-id (or idLookup) field; (id, created)."""
        obj = self.sobject(sobject)
        f = self.upsert_field(obj, field_name)
        with self.store.lock:
            matches = self.matches_for_upsert(obj, f, value)
            if len(matches) > 1:
                raise RecordFault(
                    "DUPLICATE_EXTERNAL_ID",
                    f"{f.label}: more than one record found for external id field: "
                    f"[{', '.join(m['Id'] for m in matches)}]",
                    [],
                )
            rest = {k: v for k, v in body.items() if k.lower() != f.name.lower()}
            if matches:
                return self.update(obj.name, matches[0]["Id"], rest, from_csv), False
            if f.type == "id":
                raise RecordFault(
                    "NOT_FOUND", "Provided external ID field does not exist or is not accessible", []
                )
            return self.create(obj.name, {**rest, f.name: value}, from_csv), True

    def delete(self, sobject: str | None, raw_id: str) -> str:
        """Soft delete: the record moves to the recycle bin (IsDeleted, visible to queryAll)."""
        record_id = normalize_id(raw_id)
        if record_id is None:
            raise RecordFault("MALFORMED_ID", f"malformed id {raw_id}", [])
        obj = self.sobject(sobject) if sobject else self.object_for_id(record_id)
        with self.store.lock:
            record = self.live_record(obj, record_id)
            if not obj.deletable:
                raise RecordFault(
                    "INSUFFICIENT_ACCESS_OR_READONLY", "insufficient access rights on object id", []
                )
            stamp = self.stamp(record.get("SystemModstamp"))
            record.update(IsDeleted=True, SystemModstamp=stamp, LastModifiedDate=stamp)
            self.save(obj, record)
            self.store.tombstone(obj.name, record["Id"], stamp)
            return str(record["Id"])

    def hard_delete(self, sobject: str, raw_id: str, tombstone: bool = True) -> None:
        obj = self.sobject(sobject)
        record_id = normalize_id(raw_id)
        if record_id is None:
            raise RecordFault("MALFORMED_ID", f"malformed id {raw_id}", [])
        with self.store.lock:
            self.store.purge(record_id)
            if tombstone:
                self.store.tombstone(obj.name, record_id, self.stamp())

    def object_for_id(self, record_id: str) -> SObjectDef:
        obj = next((o for o in self.objects.values() if record_id.startswith(o.key_prefix)), None)
        if obj is None:
            raise RecordFault("MALFORMED_ID", f"malformed id {record_id}", [])
        return obj

    # --- reads ----------------------------------------------------------------------------------

    def render(
        self, obj: SObjectDef, record: dict[str, Any], fields: list[str] | None = None
    ) -> dict[str, Any]:
        out: dict[str, Any] = {"attributes": {"type": obj.name, "url": self.url(obj.name, record["Id"])}}
        for name in fields if fields is not None else list(obj.fields):
            f = obj.field_ci(name)
            if f is None:
                raise SfError(400, "INVALID_FIELD", f"No such column '{name}' on entity '{obj.name}'.")
            out[f.name] = record.get(f.name)
        return out

    def window(self, sobject: str, start_text: str, end_text: str, deleted: bool) -> dict[str, Any]:
        """getUpdated / getDeleted: Ids changed in [start, end], at most 30 (15 for deleted) days back."""
        obj = self.sobject(sobject)
        try:
            start = _parse_any_datetime(start_text.replace(" ", "+"))
            end = _parse_any_datetime(end_text.replace(" ", "+"))
        except ValueError as exc:
            raise SfError(400, "INVALID_REPLICATION_DATE", "Invalid replication date") from exc
        now = datetime.now(UTC)
        if end < start:
            raise SfError(400, "INVALID_REPLICATION_DATE", "EndDate must chronologically succeed startDate")
        if start < now - timedelta(days=15 if deleted else 30):
            raise SfError(400, "INVALID_REPLICATION_DATE", "startDate cannot be more than 30 days ago")
        latest = min(end, now).replace(second=0, microsecond=0)
        if deleted:
            gone = [
                {"id": rid, "deletedDate": when}
                for rid, when in self.store.tombstones(obj.name)
                if start <= parse_sf_datetime(when) <= end
            ]
            return {
                "deletedRecords": gone,
                "earliestDateAvailable": format_sf_datetime(now - timedelta(days=15)),
                "latestDateCovered": format_sf_datetime(latest),
            }
        ids = [
            r["Id"]
            for r in self.store.all(obj.name)
            if start <= parse_sf_datetime(r["SystemModstamp"]) <= end
        ]
        return {"ids": ids, "latestDateCovered": format_sf_datetime(latest)}


def _parse_any_datetime(text: str) -> datetime:
    text = text.strip().replace("Z", "+00:00")
    if re.fullmatch(r".*[+-]\d{4}", text):
        text = text[:-2] + ":" + text[-2:]
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _date_from_dt(value: str) -> str:
    return _parse_any_datetime(value).date().isoformat()
