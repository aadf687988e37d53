"""The `salesforce` connector: sObjects as streams, read by SOQL over queryAll, written in batches.

Reading pages through `queryAll` ordered by (SystemModstamp, Id), so soft deletes arrive as
`deleted` records and a cursor of (SystemModstamp, Id) resumes exactly after the last record even when
hundreds share one timestamp (every record of one transaction does). The cursor also looks
`overlap_seconds` behind itself, remembering which versions it already handed on, for transactions that
commit late with an earlier timestamp. Hard deletes, which never show IsDeleted, come from getDeleted.

Writing uses sObject Collections (200 records a call, allOrNone false, so one bad record never fails
its batch) and Bulk API 2.0 above `bulk_threshold`; creates with a match field become upserts on that
external id, which makes a repeated write (after a crash) create nothing twice.
"""

from __future__ import annotations

import csv
import io
import itertools
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceError
from simple_salesforce.format import format_soql

from connectors.salesforce.errors import failure, failure_from_bulk, failure_from_result
from connectors.salesforce.session import OrgSession, error_code, error_message
from connectors.salesforce.settings import SalesforceSettings
from syncd.errors import BudgetExhausted, ConfigError, ConnectionDown, TransientError
from syncd.records import (
    Batch,
    Cursor,
    FieldInfo,
    JSONValue,
    Op,
    Record,
    RecordFailure,
    StreamInfo,
    WriteOp,
    WriteResult,
    telemetry,
)

COLLECTION_SIZE = 200
FIND_CHUNK = 200
RECENT_CAP = 10_000
# Carried by Record.modified_at / Record.deleted instead: they change on every write, so as fields they
# would make every update look like a change of fields the mapping never touched.
NOT_FIELDS = {"attributes", "SystemModstamp", "LastModifiedDate", "LastModifiedById", "IsDeleted"}
UNSELECTABLE_TYPES = {"address", "location", "base64", "complexvalue"}
SOQL_ERRORS = {"MALFORMED_QUERY", "INVALID_FIELD", "INVALID_TYPE", "INVALID_QUERY_FILTER_OPERATOR"}


def parse_stamp(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z")


def soql_datetime(moment: datetime) -> str:
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


@dataclass
class ReadCursor:
    """(SystemModstamp, Id) of the last record handed on, the versions seen in the overlap, getDeleted's mark."""

    stamp: str | None = None
    last_id: str = ""
    recent: dict[str, str] = field(default_factory=dict)
    deleted_until: str | None = None
    checked: str | None = None  # server time of a complete read that found only versions already seen

    def to_json(self) -> dict[str, Any]:
        out = {
            "stamp": self.stamp,
            "id": self.last_id,
            "recent": dict(self.recent),
            "deleted_until": self.deleted_until,
        }
        return out | ({"checked": self.checked} if self.checked else {})

    def since(self) -> datetime | None:
        """Where the next read starts (before the overlap): the newest version seen, or the time of
        a later complete read, whichever is later. Without the second, a quiet org would have the
        last burst's overlap window read again on every pass."""
        if self.stamp is None:
            return None
        stamp = parse_stamp(self.stamp)
        return max(stamp, parse_stamp(self.checked)) if self.checked else stamp

    @classmethod
    def from_json(cls, cursor: Cursor | None) -> ReadCursor:
        if not isinstance(cursor, dict):
            return cls()
        recent = cursor.get("recent") if isinstance(cursor.get("recent"), dict) else {}
        checked = cursor.get("checked")
        return cls(
            cursor.get("stamp"),
            str(cursor.get("id") or ""),
            {str(k): str(v) for k, v in (recent or {}).items()},
            cursor.get("deleted_until"),
            checked if isinstance(checked, str) else None,
        )

    def after(self, stamp: str, record_id: str) -> bool:
        return self.stamp is None or (parse_stamp(stamp), record_id) > (parse_stamp(self.stamp), self.last_id)

    def remember(self, stamp: str, record_id: str, overlap: float) -> None:
        if self.after(stamp, record_id):
            self.stamp, self.last_id = stamp, record_id
        if overlap > 0:
            self.recent[record_id] = stamp

    def prune(self, overlap: float) -> None:
        """Forget versions that fell out of the overlap window (and never keep more than RECENT_CAP)."""
        since = self.since()
        if since is None or not self.recent:
            return
        floor = since - timedelta(seconds=overlap)
        kept = sorted(((s, i) for i, s in self.recent.items() if parse_stamp(s) >= floor), reverse=True)
        self.recent = {i: s for s, i in kept[:RECENT_CAP]}


def _plain(value: Any) -> JSONValue:
    """Record values without the `attributes` envelopes SOQL puts on nested parent records."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k != "attributes"}
    return value


class SalesforceConnector:
    Settings: ClassVar[type[BaseModel]] = SalesforceSettings
    write_batch_size: ClassVar[int] = 10_000
    """One Bulk API 2.0 job (about six calls) when more than bulk_threshold records wait, else one
    sObject Collections call per 200: a first sync costs well under one call per 1,000 records."""

    def __init__(self, name: str, settings: SalesforceSettings, base_dir: Path) -> None:
        if settings.ca_file is not None and not settings.ca_file.is_absolute():
            settings = settings.model_copy(update={"ca_file": base_dir / settings.ca_file})
        if settings.private_key_file is not None and not settings.private_key_file.is_absolute():
            settings = settings.model_copy(update={"private_key_file": base_dir / settings.private_key_file})
        self.name = name
        self.settings = settings
        self.session = OrgSession(name, settings)
        self._describes: dict[str, tuple[float, dict[str, Any]]] = {}  # stream -> (monotonic time, describe)
        self._closed = False

    # --- schema ---------------------------------------------------------------------------------

    def describe(self, stream: str, refresh: bool = False) -> dict[str, Any]:
        """The sObject's describe, reused for `describe_max_age_seconds` across passes.

        Why not every pass: an idle pass should cost one call per stream, and a schema changes far
        less often than a pass runs. A new field appears within the age limit; a removed one makes
        the read's query fail with INVALID_FIELD, which describes again at once (see `read`).
        """
        cached = self._describes.get(stream)
        if refresh or cached is None or self._too_old(cached[0]):
            try:
                answer = self.session.rest("describe", f"sobjects/{stream}/describe")
            except SalesforceError as exc:
                raise ConfigError(
                    f"{self.name}: cannot describe {stream}: {error_code(exc) or exc.status}"
                ) from None
            cached = (time.monotonic(), answer)
            self._describes[stream] = cached
        return cached[1]

    def _too_old(self, when: float) -> bool:
        return time.monotonic() - when >= self.settings.describe_max_age_seconds

    def creates_match(self, stream: str, field_name: str) -> bool:
        """A create matched on `field_name` is an upsert (an external id): no lookup needed before it."""
        return any(
            f["name"].lower() == field_name.lower() and f["externalId"]
            for f in self.describe(stream)["fields"]
        )

    def streams(self) -> list[StreamInfo]:
        out = []
        for stream in self.settings.objects:
            fields = tuple(
                FieldInfo(
                    name=f["name"],
                    type=f["type"],
                    createable=bool(f["createable"]),
                    updateable=bool(f["updateable"]),
                    external_id=bool(f["externalId"]),
                    calculated=bool(f["calculated"]) or bool(f["autoNumber"]),
                    nullable=bool(f["nillable"]),
                )
                for f in self.describe(stream)["fields"]
            )
            out.append(StreamInfo(stream, "Id", fields, frozenset({"find"})))
        return out

    def write_problems(self, stream: str, field_names: Collection[str], op: Op) -> list[str]:
        """Fields a write of `op` would be refused for (unknown, not createable/updateable): for `validate --online`."""
        by_name = {f["name"].lower(): f for f in self.describe(stream)["fields"]}
        problems = []
        for name in field_names:
            f = by_name.get(name.lower())
            if f is None:
                problems.append(f"{stream}.{name}: no such field")
            elif op in {Op.CREATE, Op.UPSERT} and not f["createable"]:
                problems.append(f"{stream}.{name}: not createable")
            elif op in {Op.UPDATE, Op.UPSERT} and not f["updateable"] and name.lower() != "id":
                problems.append(f"{stream}.{name}: not updateable")
        return problems

    def _select_list(self, stream: str) -> list[str]:
        names = [f["name"] for f in self.describe(stream)["fields"] if f["type"] not in UNSELECTABLE_TYPES]
        return names + [p for p in self.settings.select.get(stream, []) if p not in names]

    # --- read -----------------------------------------------------------------------------------

    def _query_pages(self, soql: str) -> Iterator[list[dict[str, Any]]]:
        headers = {"Sforce-Query-Options": f"batchSize={self.settings.page_size}"}
        timeout = self.settings.timeout_seconds
        try:
            page = self.session.call(
                "query", lambda sf: sf.query(soql, include_deleted=True, headers=headers, timeout=timeout)
            )
            yield list(page["records"])
            while not page["done"]:
                page = self.session.call("query", _next_page(page["nextRecordsUrl"], headers, timeout))
                yield list(page["records"])
        except SalesforceError as exc:
            code = error_code(exc)
            if code in SOQL_ERRORS:
                raise ConfigError(
                    f"{self.name}: Salesforce refused the query: {code}: {error_message(exc)}"
                ) from None
            raise ConnectionDown(f"{self.name}: query failed: {code or exc.status}") from None

    def read(self, stream: str, cursor: Cursor | None) -> Iterator[Batch]:
        state = ReadCursor.from_json(cursor)
        pages = self._query_pages(self._read_soql(stream, state))
        try:
            first = next(pages, [])
        except ConfigError as exc:
            if "INVALID_FIELD" not in str(exc):
                raise
            # A field the cached describe still lists was removed: describe again, query again.
            self.describe(stream, refresh=True)
            pages = self._query_pages(self._read_soql(stream, state))
            first = next(pages, [])
        queried_at = self.session.server_time  # Salesforce's clock (the Date header), not ours
        yield from self._batches(stream, state, itertools.chain([first], pages), queried_at)

    def _read_soql(self, stream: str, state: ReadCursor) -> str:
        overlap = self.settings.overlap_seconds
        fields = self._select_list(stream)
        soql = f"SELECT {', '.join(fields)} FROM {stream}"
        since = state.since()
        if since is not None:
            if overlap > 0:
                soql += f" WHERE SystemModstamp >= {soql_datetime(since - timedelta(seconds=overlap))}"
            else:
                soql += format_soql(
                    " WHERE SystemModstamp > {ts:literal} OR (SystemModstamp = {ts:literal} AND Id > {id})",
                    ts=soql_datetime(since),
                    id=state.last_id,
                )
        return soql + " ORDER BY SystemModstamp, Id"

    def _batches(
        self,
        stream: str,
        state: ReadCursor,
        pages: Iterator[list[dict[str, Any]]],
        queried_at: datetime | None,
    ) -> Iterator[Batch]:
        overlap = self.settings.overlap_seconds
        started = datetime.now(UTC)
        size = self.settings.batch_size
        new = seen_before = 0
        for rows in pages:
            for start in range(0, max(len(rows), 1), size):
                records = []
                for row in rows[start : start + size]:
                    stamp, record_id = row["SystemModstamp"], row["Id"]
                    if state.recent.get(record_id) == stamp or not (
                        state.after(stamp, record_id) or overlap > 0
                    ):
                        seen_before += 1
                        continue
                    new += 1
                    records.append(self._record(row))
                    state.remember(stamp, record_id, overlap)
                state.prune(overlap)
                yield Batch(records, state.to_json())
        if (seen_before or new) and queried_at is not None and overlap > 0:
            # Every version committed before this query was visible to it and has now been handed on,
            # so the next window may start at the query's time (less the overlap, for late commits)
            # rather than at the newest version: a quiet org is not read again for the overlap on every
            # pass. A read that returned nothing changes nothing, so an idle pass stores no cursor.
            checked = soql_datetime(queried_at)
            if checked != state.checked:
                state.checked = checked
                state.prune(overlap)
                yield Batch([], state.to_json())
        yield from self._hard_deletes(stream, state, started)

    def _record(self, row: dict[str, Any]) -> Record:
        fields = {k: _plain(v) for k, v in row.items() if k not in NOT_FIELDS}
        return Record(
            key=str(row["Id"]),
            fields=fields,
            modified_at=parse_stamp(row["SystemModstamp"]),
            deleted=bool(row.get("IsDeleted")),
        )

    def _hard_deletes(self, stream: str, state: ReadCursor, now: datetime) -> Iterator[Batch]:
        """getDeleted since the last read: records purged from the recycle bin never show IsDeleted."""
        if state.deleted_until is None:
            state.deleted_until = soql_datetime(now)
            yield Batch([], state.to_json())
            return
        start = max(
            datetime.fromisoformat(state.deleted_until.replace("Z", "+00:00")),
            now - timedelta(days=15) + timedelta(minutes=1),
        )
        if now - start < timedelta(seconds=self.settings.hard_deletes_every_seconds):
            return
        try:
            answer = self.session.rest(
                "deleted",
                f"sobjects/{stream}/deleted/",
                params={
                    "start": start.isoformat(timespec="milliseconds"),
                    "end": now.isoformat(timespec="milliseconds"),
                },
            )
        except SalesforceError as exc:
            raise ConnectionDown(
                f"{self.name}: getDeleted on {stream} failed: {error_code(exc) or exc.status}"
            ) from None
        gone = [
            Record(
                key=str(d["id"]),
                fields={"Id": d["id"]},
                modified_at=parse_stamp(d["deletedDate"]),
                deleted=True,
            )
            for d in answer.get("deletedRecords", [])
        ]
        covered = answer.get("latestDateCovered")
        state.deleted_until = soql_datetime(parse_stamp(covered)) if covered else soql_datetime(now)
        yield Batch(gone, state.to_json())

    # --- find -----------------------------------------------------------------------------------

    def find(self, stream: str, field_name: str, values: Collection[str]) -> dict[str, str]:
        """value -> Id for the values present, in as few queries as the URL length allows."""
        wanted = sorted(set(values))
        found: dict[str, str] = {}
        for start in range(0, len(wanted), FIND_CHUNK):
            chunk = wanted[start : start + FIND_CHUNK]
            soql = format_soql(f"SELECT Id, {field_name} FROM {stream} WHERE {field_name} IN {{}}", chunk)
            by_folded = {v.casefold(): v for v in chunk}
            for rows in self._query_pages(soql):
                for row in rows:
                    if row.get("IsDeleted"):
                        continue
                    value = row.get(field_name)
                    original = by_folded.get(str(value).casefold()) if value is not None else None
                    if original is not None:
                        found.setdefault(original, str(row["Id"]))
        return found

    # --- write ----------------------------------------------------------------------------------

    def write(self, stream: str, ops: Sequence[WriteOp]) -> list[WriteResult]:
        results: list[WriteResult | None] = [None] * len(ops)
        groups: dict[tuple[str, str], list[int]] = {}
        external = (
            {f["name"].lower() for f in self.describe(stream)["fields"] if f["externalId"]}
            if any(op.match is not None for op in ops)
            else set()
        )
        for i, op in enumerate(ops):
            groups.setdefault(_write_kind(op, external), []).append(i)
        try:
            for (kind, ext), indexes in groups.items():
                bulk = len(indexes) > self.settings.bulk_threshold
                writer = self._bulk if bulk else self._collections
                writer(stream, kind, ext, [(i, ops[i]) for i in indexes], results)
        except BudgetExhausted as exc:
            if all(r is None for r in results):
                raise
            stopped = RecordFailure("quota", "BUDGET_EXHAUSTED", str(exc))
            results = [r if r is not None else WriteResult(False, error=stopped) for r in results]
        return [
            r if r is not None else WriteResult(False, error=failure("UNKNOWN", "no result")) for r in results
        ]

    @staticmethod
    def _body(stream: str, kind: str, ext: str, op: WriteOp) -> dict[str, Any]:
        body: dict[str, Any] = {"attributes": {"type": stream}, **op.fields}
        if kind == "update":
            body["Id"] = op.key
        if kind == "upsert" and op.match is not None:
            body[ext] = op.match[1]
        return body

    def _collections(
        self,
        stream: str,
        kind: str,
        ext: str,
        items: list[tuple[int, WriteOp]],
        results: list[WriteResult | None],
    ) -> None:
        for start in range(0, len(items), COLLECTION_SIZE):
            pending = items[start : start + COLLECTION_SIZE]
            for attempt in range(self.settings.max_attempts):
                answers = self._collection_call(stream, kind, ext, pending)
                retry: list[tuple[int, WriteOp]] = []
                for (index, op), answer in zip(pending, answers, strict=True):
                    if isinstance(answer, RecordFailure):
                        results[index] = WriteResult(False, key=op.key, error=answer)
                    elif kind == "delete" and _already_deleted(answer):
                        results[index] = WriteResult(True, key=op.key)
                    elif answer.get("success"):
                        created = kind == "create" or bool(answer.get("created"))
                        results[index] = WriteResult(True, key=str(answer["id"]), created=created)
                    elif (answer.get("errors") or [{}])[0].get("statusCode") == "UNABLE_TO_LOCK_ROW":
                        retry.append((index, op))
                        results[index] = WriteResult(False, key=op.key, error=failure_from_result(answer))
                    else:
                        results[index] = WriteResult(False, key=op.key, error=failure_from_result(answer))
                if not retry or attempt == self.settings.max_attempts - 1:
                    break
                telemetry().retry(self.name, "composite_sobjects", "UNABLE_TO_LOCK_ROW")
                time.sleep(min(self.settings.backoff_seconds * 2**attempt, self.settings.backoff_max_seconds))
                pending = retry

    def _collection_call(
        self, stream: str, kind: str, ext: str, items: list[tuple[int, WriteOp]]
    ) -> list[dict[str, Any] | RecordFailure]:
        """One sObject Collections call; a refusal of the whole call becomes every record's failure."""
        try:
            if kind == "delete":
                ids = ",".join(str(op.key) for _i, op in items)
                answer = self.session.rest(
                    "composite_sobjects",
                    "composite/sobjects",
                    method="DELETE",
                    params={"ids": ids, "allOrNone": "false"},
                )
            else:
                path = f"composite/sobjects/{stream}/{ext}" if kind == "upsert" else "composite/sobjects"
                body = {
                    "allOrNone": False,
                    "records": [self._body(stream, kind, ext, op) for _i, op in items],
                }
                method = "POST" if kind == "create" else "PATCH"
                answer = self.session.rest("composite_sobjects", path, method=method, json=body)
        except SalesforceError as exc:
            whole = failure(error_code(exc) or f"HTTP_{exc.status}", error_message(exc))
            return [whole for _ in items]
        except TransientError as exc:
            gone = RecordFailure("transient-exhausted", exc.code, str(exc))
            return [gone for _ in items]
        return list(answer)

    # --- Bulk API 2.0 ---------------------------------------------------------------------------

    def _bulk(
        self,
        stream: str,
        kind: str,
        ext: str,
        items: list[tuple[int, WriteOp]],
        results: list[WriteResult | None],
    ) -> None:
        operation = {"create": "insert", "update": "update", "upsert": "upsert", "delete": "delete"}[kind]
        rows = [self._bulk_row(kind, ext, op) for _i, op in items]
        columns = sorted({c for row in rows for c in row}, key=lambda c: (c != "Id", c != ext, c))
        try:
            succeeded, failed = self._run_ingest_job(stream, operation, ext, columns, rows)
        except SalesforceError as exc:
            whole = failure(error_code(exc) or f"HTTP_{exc.status}", error_message(exc))
            for index, op in items:
                results[index] = WriteResult(False, key=op.key, error=whole)
            return
        match_on = "Id" if kind in {"update", "delete"} else ext if kind == "upsert" else None
        outcomes: dict[str, list[tuple[bool, dict[str, str]]]] = {}
        for ok, table in ((True, succeeded), (False, failed)):
            for row in table:
                token = row.get(match_on, "") if match_on else _row_token(row, columns)
                outcomes.setdefault(token, []).append((ok, row))
        for (index, op), row in zip(items, rows, strict=True):
            token = row.get(match_on, "") if match_on else _row_token(row, columns)
            queue = outcomes.get(token) or []
            if not queue:
                results[index] = WriteResult(
                    False, key=op.key, error=failure("UNKNOWN", "no result from the bulk job")
                )
                continue
            ok, answer = queue.pop(0)
            if kind == "delete" and answer.get("sf__Error", "").startswith("ENTITY_IS_DELETED:"):
                ok = True
            if ok:
                created = kind == "create" or answer.get("sf__Created") == "true"
                results[index] = WriteResult(True, key=answer.get("sf__Id") or op.key, created=created and ok)
            else:
                results[index] = WriteResult(
                    False, key=op.key, error=failure_from_bulk(answer.get("sf__Error", ""))
                )

    @staticmethod
    def _bulk_row(kind: str, ext: str, op: WriteOp) -> dict[str, str]:
        if kind == "delete":
            return {"Id": str(op.key)}
        fields = dict(op.fields)
        if kind == "update":
            fields["Id"] = op.key
        if kind == "upsert" and op.match is not None:
            fields[ext] = op.match[1]
        return {
            k: "#N/A" if v is None else ("true" if v is True else "false" if v is False else str(v))
            for k, v in fields.items()
        }

    def _run_ingest_job(
        self, stream: str, operation: str, ext: str, columns: list[str], rows: list[dict[str, str]]
    ) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
        spec: dict[str, Any] = {
            "object": stream,
            "operation": operation,
            "contentType": "CSV",
            "lineEnding": "LF",
        }
        if operation == "upsert":
            spec["externalIdFieldName"] = ext
        job = self.session.rest("bulk2_ingest", "jobs/ingest", method="POST", json=spec)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        self._bulk_upload(job["id"], buffer.getvalue())
        self.session.rest(
            "bulk2_ingest", f"jobs/ingest/{job['id']}", method="PATCH", json={"state": "UploadComplete"}
        )
        deadline = time.monotonic() + self.settings.bulk_timeout_seconds
        while True:
            info = self.session.rest("bulk2_ingest", f"jobs/ingest/{job['id']}")
            if info["state"] in {"JobComplete", "Failed", "Aborted"}:
                break
            if time.monotonic() > deadline:
                raise ConnectionDown(f"{self.name}: bulk job {job['id']} did not finish in time")
            time.sleep(self.settings.bulk_poll_seconds)
        if info["state"] != "JobComplete":
            raise ConnectionDown(
                f"{self.name}: bulk job {job['id']} {info['state']}: {info.get('errorMessage', '')}"
            )
        return self._bulk_results(job["id"], "successfulResults"), self._bulk_results(
            job["id"], "failedResults"
        )

    def _bulk_upload(self, job_id: str, data: str) -> None:
        def put(sf: Salesforce) -> None:
            answer = sf.session.put(
                f"{sf.base_url}jobs/ingest/{job_id}/batches",
                data=data.encode("utf-8"),
                headers={**sf.headers, "Content-Type": "text/csv"},
                timeout=self.settings.timeout_seconds,
            )
            if answer.status_code >= 300:
                raise SalesforceError(answer.url, answer.status_code, "bulk upload", answer.json())

        self.session.call("bulk2_ingest", put)

    def _bulk_results(self, job_id: str, which: str) -> list[dict[str, str]]:
        def get(sf: Salesforce) -> str:
            answer = sf.session.get(
                f"{sf.base_url}jobs/ingest/{job_id}/{which}/",
                headers={**sf.headers, "Accept": "text/csv"},
                timeout=self.settings.timeout_seconds,
            )
            if answer.status_code >= 300:
                raise SalesforceError(answer.url, answer.status_code, "bulk results", answer.content)
            return answer.content.decode("utf-8")

        return list(csv.DictReader(io.StringIO(self.session.call("bulk2_ingest", get))))

    # --- lifecycle ------------------------------------------------------------------------------

    def new_pass(self) -> None:
        """Start a pass: this pass's API budget counts from here; describes past their age go."""
        self.session.new_pass()
        self._describes = {k: v for k, v in self._describes.items() if not self._too_old(v[0])}

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.session.close()


def _already_deleted(answer: dict[str, Any]) -> bool:
    """Deleting a record that is already in the recycle bin succeeds: deletes are idempotent."""
    return bool((answer.get("errors") or [{}])[0].get("statusCode") == "ENTITY_IS_DELETED")


def _write_kind(op: WriteOp, external: Collection[str]) -> tuple[str, str]:
    """How an op is written: (create | update | upsert | delete, external id field for upserts).

    A create upserts on its match field only when that field is an external id (lower-cased names in
    `external`): Salesforce refuses an upsert on any other field, and a plain create is all it allows.
    """
    if op.op is Op.DELETE:
        return ("delete", "")
    if op.op is Op.UPDATE or (op.op is not Op.CREATE and op.key):
        return ("update", "")
    if op.match is not None and op.match[0].lower() in external:
        return ("upsert", op.match[0])
    return ("create", "")


def _next_page(url: str, headers: dict[str, str], timeout: float) -> Callable[[Salesforce], Any]:
    return lambda sf: sf.query_more(
        url, identifier_is_url=True, include_deleted=True, headers=headers, timeout=timeout
    )


def _row_token(row: dict[str, str], columns: list[str]) -> str:
    return "\x1f".join(row.get(c, "") for c in columns)
