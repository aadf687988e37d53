"""The Drive v3 calls gspread makes (files.list/get/create/delete/copy/export, comments.list) and the
v2 media upload behind `import_csv`, answered from the Sheets sandbox's spreadsheets.

Drive errors have their own shape (an `errors` list with `reason`/`location`), kept here.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from syncd.sandbox.sheets_model import SPREADSHEET_MIME, Spreadsheet, rfc3339
from syncd.sandbox.sheets_values import formatted

_CLAUSE = re.compile(
    r"""^\s*(?:
        (?P<field>mimeType|name|trashed)\s*(?P<op>=|!=|contains)\s*(?P<value>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|true|false)
        |(?P<parent>'(?:[^'\\]|\\.)*')\s+in\s+parents
    )\s*$""",
    re.VERBOSE,
)


class DriveQueryError(ValueError):
    pass


def drive_error(code: int, message: str, reason: str, location: str | None = None) -> dict[str, Any]:
    detail: dict[str, Any] = {"message": message, "domain": "global", "reason": reason}
    if location:
        detail.update({"location": location, "locationType": "parameter"})
    return {"error": {"code": code, "message": message, "errors": [detail]}}


def _split_and(q: str) -> list[str]:
    parts, current, quote = [], "", ""
    i = 0
    while i < len(q):
        ch = q[i]
        if quote:
            current += ch
            if ch == "\\" and i + 1 < len(q):
                current += q[i + 1]
                i += 2
                continue
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
            current += ch
        elif q[i : i + 5].lower() == " and ":
            parts.append(current)
            current = ""
            i += 5
            continue
        else:
            current += ch
        i += 1
    parts.append(current)
    return parts


def _unquote(text: str) -> str:
    if text[0] in "'\"":
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    return text


def matches(book: Spreadsheet, q: str) -> bool:
    """Whether a spreadsheet matches a Drive `q` made of `and`-joined clauses on mimeType/name/trashed."""
    if not q.strip():
        return True
    for clause in _split_and(q):
        m = _CLAUSE.match(clause)
        if not m:
            raise DriveQueryError(clause)
        if m.group("parent"):
            if _unquote(m.group("parent")) != "root":
                return False
            continue
        field, op, value = m.group("field"), m.group("op"), _unquote(m.group("value"))
        actual = {"mimeType": SPREADSHEET_MIME, "name": book.title, "trashed": "false"}[field]
        if op == "=" and actual != value:
            return False
        if op == "!=" and actual == value:
            return False
        if op == "contains" and value.lower() not in actual.lower():
            return False
    return True


def export_csv(book: Spreadsheet) -> str:
    """The first sheet as Drive's text/csv export: formatted values, no trailing empty rows or columns."""
    sheet = book.sheets[0]
    rows, cols = sheet.used_extent()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for r in range(rows):
        writer.writerow(
            [formatted(c) if (c := sheet.cell(r, col)) is not None else "" for col in range(cols)]
        )
    return out.getvalue().removesuffix("\r\n")


def v2_file(book: Spreadsheet, user: str) -> dict[str, Any]:
    """A Drive v2 file resource, as the v2 media upload answers."""
    base = f"https://www.googleapis.com/drive/v2/files/{book.id}"
    export = "https://docs.google.com/spreadsheets/export?id=" + book.id + "&exportFormat="
    person = {
        "displayName": user,
        "kind": "drive#user",
        "isAuthenticatedUser": True,
        "permissionId": "00000000000000000001",
        "emailAddress": user,
        "picture": {"url": "https://lh3.googleusercontent.com/a/default-user=s64"},
    }
    stamp = rfc3339(book.modified)
    return {
        "kind": "drive#file",
        "userPermission": {
            "id": "me",
            "type": "user",
            "role": "owner",
            "kind": "drive#permission",
            "selfLink": base + "/permissions/me",
            "etag": '"sandbox"',
            "pendingOwner": False,
        },
        "selfLink": base,
        "ownerNames": [user],
        "lastModifyingUserName": user,
        "editable": True,
        "writersCanShare": True,
        "mimeType": SPREADSHEET_MIME,
        "exportLinks": {
            "application/x-vnd.oasis.opendocument.spreadsheet": export + "ods",
            "text/tab-separated-values": export + "tsv",
            "application/pdf": export + "pdf",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": export + "xlsx",
            "text/csv": export + "csv",
            "application/zip": export + "zip",
            "application/vnd.oasis.opendocument.spreadsheet": export + "ods",
        },
        "parents": [
            {
                "selfLink": base + "/parents/root",
                "id": "root",
                "isRoot": True,
                "kind": "drive#parentReference",
                "parentLink": "https://www.googleapis.com/drive/v2/files/root",
            }
        ],
        "thumbnailLink": f"https://docs.google.com/feeds/vt?gd=true&id={book.id}&v=1&sz=s220",
        "appDataContents": False,
        "iconLink": "https://drive-thirdparty.googleusercontent.com/16/type/" + SPREADSHEET_MIME,
        "shared": False,
        "lastModifyingUser": person,
        "owners": [person],
        "copyable": True,
        "etag": '"sandbox"',
        "alternateLink": f"https://docs.google.com/spreadsheets/d/{book.id}/edit?usp=drivesdk",
        "embedLink": f"https://docs.google.com/spreadsheets/d/{book.id}/htmlembed",
        "fileSize": "1024",
        "copyRequiresWriterPermission": False,
        "spaces": ["drive"],
        "id": book.id,
        "title": book.title,
        "labels": {"viewed": True, "restricted": False, "starred": False, "hidden": False, "trashed": False},
        "explicitlyTrashed": False,
        "createdDate": rfc3339(book.created),
        "modifiedDate": stamp,
        "modifiedByMeDate": stamp,
        "lastViewedByMeDate": stamp,
        "markedViewedByMeDate": "1970-01-01T00:00:00.000Z",
        "quotaBytesUsed": "1024",
        "version": "1",
        "capabilities": {"canEdit": True, "canCopy": True},
    }
