"""Salesforce error codes -> syncd dead-letter categories (ARCHITECTURE.md, "Errors").

The user sees Salesforce's own code and message; the category decides what happens to the record.
Codes Salesforce calls transient never reach this table: the session retries them.
"""

from __future__ import annotations

from typing import Any

from syncd.records import RecordFailure

CATEGORY_BY_CODE: dict[str, str] = {
    "REQUIRED_FIELD_MISSING": "validation",
    "STRING_TOO_LONG": "validation",
    "FIELD_CUSTOM_VALIDATION_EXCEPTION": "validation",
    "INVALID_EMAIL_ADDRESS": "validation",
    "NUMBER_OUTSIDE_VALID_RANGE": "validation",
    "INVALID_TYPE_ON_FIELD_IN_RECORD": "validation",
    "JSON_PARSER_ERROR": "validation",
    "INVALID_FIELD": "validation",
    "FIELD_INTEGRITY_EXCEPTION": "validation",
    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST": "validation",
    "MALFORMED_ID": "bad-input",
    "MISSING_ARGUMENT": "bad-input",
    "INVALID_INPUT": "bad-input",
    "DUPLICATE_VALUE": "duplicate",
    "DUPLICATE_EXTERNAL_ID": "duplicate",
    "DUPLICATES_DETECTED": "duplicate",
    "INVALID_FIELD_FOR_INSERT_UPDATE": "permission",
    "INSUFFICIENT_ACCESS_OR_READONLY": "permission",
    "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY": "permission",
    "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY": "validation",
    "INVALID_CROSS_REFERENCE_KEY": "unresolved-reference",
    "ENTITY_IS_DELETED": "not-found",
    "NOT_FOUND": "not-found",
    "REQUEST_LIMIT_EXCEEDED": "quota",
    "UNABLE_TO_LOCK_ROW": "transient-exhausted",
}


def failure(code: str, message: str, fields: list[str] | None = None) -> RecordFailure:
    where = f" (fields: {', '.join(fields)})" if fields else ""
    return RecordFailure(CATEGORY_BY_CODE.get(code, "validation"), code or "UNKNOWN", f"{message}{where}")


def failure_from_result(result: dict[str, Any]) -> RecordFailure:
    """The first error of one sObject Collections result entry."""
    errors = result.get("errors") or [{}]
    first = errors[0]
    return failure(
        str(first.get("statusCode", "")), str(first.get("message", "")), list(first.get("fields") or [])
    )


def failure_from_bulk(error: str) -> RecordFailure:
    """A Bulk API `sf__Error` cell: `CODE:message:field,field --`."""
    code, _, rest = error.partition(":")
    message, _, fields = rest.rpartition(":")
    names = [f for f in fields.removesuffix("--").strip().split(",") if f]
    return failure(code, message or rest, names)
