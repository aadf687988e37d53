"""Bulk API 2.0: ingest jobs (CSV in, per-row results out) and query jobs (CSV pages with Sforce-Locator).

Jobs follow the documented state machine (Open -> UploadComplete -> JobComplete | Failed | Aborted) and
refuse out-of-order calls the way Salesforce does, because a client that uploads to a closed job or
reads results before completion must fail here rather than in production. Processing happens when
the job is closed, row by row through the same `Org` write paths as REST, so validation is identical.

Jobs live in memory: they are short-lived by nature, and a sandbox restart aborting them mirrors an
org that lost them.
"""

from __future__ import annotations

import csv
import io
import threading
from dataclasses import dataclass, field
from typing import Any

from syncd.sandbox import soql
from syncd.sandbox.salesforce_org import Org, RecordFault, SfError
from syncd.sandbox.salesforce_query import QueryRunner

BULK_CHUNK = 200  # Salesforce processes ingest data in chunks of 200 records, one transaction each
INGEST_OPERATIONS = {"insert", "update", "upsert", "delete", "hardDelete"}
DELIMITERS = {"COMMA": ",", "TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^", "BACKQUOTE": "`"}


@dataclass
class Job:
    info: dict[str, Any]
    csv_parts: list[str] = field(default_factory=list)
    successes: list[dict[str, str]] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)
    unprocessed: list[dict[str, str]] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    query_rows: list[dict[str, str]] = field(default_factory=list)
    query_columns: list[str] = field(default_factory=list)


def _bad_job(message: str) -> SfError:
    return SfError(400, "INVALIDJOB", message)


class BulkJobs:
    def __init__(self, org: Org) -> None:
        self.org = org
        self.jobs: dict[str, Job] = {}
        self.lock = threading.Lock()

    def _base_info(self, job_id: str, body: dict[str, Any], kind: str) -> dict[str, Any]:
        stamp = self.org.store.tick()
        return {
            "id": job_id,
            "operation": body.get("operation"),
            "object": body.get("object"),
            "createdById": self.org.user_id,
            "createdDate": stamp,
            "systemModstamp": stamp,
            "state": "Open" if kind == "V2Ingest" else "UploadComplete",
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(self.org.api_version),
            "jobType": kind,
            "lineEnding": body.get("lineEnding", "LF"),
            "columnDelimiter": body.get("columnDelimiter", "COMMA"),
        }

    def job(self, job_id: str, kind: str) -> Job:
        found = self.jobs.get(job_id)
        if found is None or found.info["jobType"] != kind:
            raise SfError(404, "NOT_FOUND", "The requested resource does not exist")
        return found

    # --- ingest ---------------------------------------------------------------------------------

    def create_ingest(self, body: dict[str, Any]) -> dict[str, Any]:
        operation = body.get("operation")
        if operation not in INGEST_OPERATIONS:
            raise SfError(400, "INVALIDJOB", f"Invalid operation: {operation}")
        if body.get("contentType", "CSV") != "CSV":
            raise SfError(400, "INVALIDJOB", "Only CSV content type is supported")
        if body.get("columnDelimiter", "COMMA") not in DELIMITERS or body.get("lineEnding", "LF") not in {
            "LF",
            "CRLF",
        }:
            raise SfError(400, "INVALIDJOB", "Invalid column delimiter or line ending")
        obj = self.org.sobject(str(body.get("object")))
        if operation == "upsert":
            if not body.get("externalIdFieldName"):
                raise SfError(400, "INVALIDJOB", "External ID was blank for upsert")
            self.org.upsert_field(obj, str(body["externalIdFieldName"]))
        job_id = self.org.store.new_id("750")
        info = self._base_info(job_id, {**body, "object": obj.name}, "V2Ingest")
        info["externalIdFieldName"] = body.get("externalIdFieldName")
        info["contentUrl"] = f"services/data/v{self.org.api_version}/jobs/ingest/{job_id}/batches"
        with self.lock:
            self.jobs[job_id] = Job(info)
        return dict(info)

    def upload(self, job_id: str, data: str) -> None:
        job = self.job(job_id, "V2Ingest")
        if job.info["state"] != "Open":
            raise SfError(409, "INVALIDJOBSTATE", f"Job {job_id} is not open for uploads")
        if sum(len(p) for p in job.csv_parts) + len(data) > 150 * 1024 * 1024:
            raise SfError(400, "INVALIDJOB", "Job data exceeds 150 MB")
        job.csv_parts.append(data)

    def set_state(self, job_id: str, kind: str, state: str) -> dict[str, Any]:
        job = self.job(job_id, kind)
        current = job.info["state"]
        if state == "Aborted":
            if current in {"JobComplete", "Failed", "Aborted"}:
                raise SfError(409, "INVALIDJOBSTATE", f"Job {job_id} is already {current}")
            job.info["state"] = "Aborted"
            return dict(job.info)
        if kind != "V2Ingest" or state != "UploadComplete" or current != "Open":
            raise SfError(409, "INVALIDJOBSTATE", f"Invalid state transition from {current} to {state}")
        job.info["state"] = "UploadComplete"
        answer = dict(job.info)
        self._process(job)
        return answer

    def _rows(self, job: Job) -> tuple[list[str], list[dict[str, str]]]:
        delimiter = DELIMITERS[job.info["columnDelimiter"]]
        columns: list[str] = []
        rows: list[dict[str, str]] = []
        for part in job.csv_parts:
            reader = csv.reader(io.StringIO(part, newline=""), delimiter=delimiter)
            header = next(reader, None)
            if header is None:
                continue
            if columns and header != columns:
                raise _bad_job("All batches of a job must have the same header")
            columns = header
            rows.extend(dict(zip(header, values, strict=False)) for values in reader if values)
        return columns, rows

    def _process(self, job: Job) -> None:
        info = job.info
        try:
            columns, rows = self._rows(job)
        except SfError as exc:
            info.update(state="Failed", errorMessage=exc.message)
            return
        job.columns = columns
        if info["operation"] in {"delete", "hardDelete"} and columns != ["Id"]:
            info.update(
                state="Failed", errorMessage="InvalidBatch : The 'delete' batch must contain only 'Id'"
            )
            return
        for start in range(0, len(rows), BULK_CHUNK):
            with self.org.one_transaction():
                for row in rows[start : start + BULK_CHUNK]:
                    self._process_row(job, row)
        stamp = self.org.store.tick()
        info.update(
            state="JobComplete",
            systemModstamp=stamp,
            numberRecordsProcessed=len(rows),
            numberRecordsFailed=len(job.failures),
        )

    def _process_row(self, job: Job, row: dict[str, str]) -> None:
        info = job.info
        op, sobject = info["operation"], info["object"]
        try:
            created = False
            if op == "insert":
                record_id, created = self.org.create(sobject, row, from_csv=True), True
            elif op == "update":
                record_id = self.org.update(sobject, row.get("Id", ""), row, from_csv=True)
            elif op == "upsert":
                ext = info["externalIdFieldName"]
                key = next((v for k, v in row.items() if k.lower() == ext.lower()), "")
                record_id, created = self.org.upsert(sobject, ext, key, row, from_csv=True)
            elif op == "delete":
                record_id = self.org.delete(sobject, row["Id"])
            else:
                self.org.live_record(self.org.sobject(sobject), row["Id"])
                self.org.hard_delete(sobject, row["Id"])
                record_id = row["Id"]
            job.successes.append({"sf__Id": record_id, "sf__Created": "true" if created else "false", **row})
        except (RecordFault, SfError) as exc:
            code = exc.status_code if isinstance(exc, RecordFault) else exc.code
            fields = exc.fields if isinstance(exc, RecordFault) else []
            error = f"{code}:{exc.message}:{','.join(fields or [])} --"
            job.failures.append({"sf__Id": row.get("Id", ""), "sf__Error": error, **row})

    def ingest_info(self, job_id: str) -> dict[str, Any]:
        job = self.job(job_id, "V2Ingest")
        return {
            "numberRecordsProcessed": 0,
            "numberRecordsFailed": 0,
            "retries": 0,
            "totalProcessingTime": 0,
            "apiActiveProcessingTime": 0,
            "apexProcessingTime": 0,
            **job.info,
        }

    def results(self, job_id: str, which: str) -> str:
        job = self.job(job_id, "V2Ingest")
        if which != "unprocessedrecords" and job.info["state"] not in {"JobComplete", "Failed", "Aborted"}:
            raise SfError(409, "INVALIDJOBSTATE", "Job has not completed processing")
        delimiter = DELIMITERS[job.info["columnDelimiter"]]
        if which == "successfulResults":
            header, rows = ["sf__Id", "sf__Created", *job.columns], job.successes
        elif which == "failedResults":
            header, rows = ["sf__Id", "sf__Error", *job.columns], job.failures
        else:
            header, rows = job.columns, job.unprocessed
        return _to_csv(header, rows, delimiter, job.info["lineEnding"])

    def delete_job(self, job_id: str, kind: str) -> None:
        job = self.job(job_id, kind)
        if job.info["state"] not in {"JobComplete", "Failed", "Aborted", "UploadComplete"}:
            raise SfError(409, "INVALIDJOBSTATE", "Only closed jobs can be deleted")
        with self.lock:
            del self.jobs[job_id]

    # --- query ----------------------------------------------------------------------------------

    def create_query(self, body: dict[str, Any]) -> dict[str, Any]:
        operation = body.get("operation")
        if operation not in {"query", "queryAll"}:
            raise SfError(400, "INVALIDJOB", f"Invalid operation: {operation}")
        source = str(body.get("query", ""))
        try:
            parsed = soql.parse(source)
            if parsed.is_count or any(isinstance(s, soql.SubQuery) for s in parsed.select) or parsed.offset:
                raise SfError(400, "API_ERROR", "Aggregate queries, subqueries and OFFSET are not supported")
            _total, rows = QueryRunner(self.org, source).run(parsed, include_deleted=operation == "queryAll")
        except soql.SoqlError as exc:
            raise SfError(400, exc.error_code, exc.message) from exc
        job_id = self.org.store.new_id("750")
        obj = self.org.sobject(parsed.sobject)
        info = self._base_info(job_id, {**body, "object": obj.name}, "V2Query")
        job = Job(info)
        job.query_columns = [s.dotted for s in parsed.select if isinstance(s, soql.FieldPath)]
        job.query_rows = [_flatten(r, job.query_columns) for r in rows]
        info.update(state="JobComplete", numberRecordsProcessed=len(rows))
        with self.lock:
            self.jobs[job_id] = job
        answer = dict(info)
        answer["state"] = "UploadComplete"
        return answer

    def query_info(self, job_id: str) -> dict[str, Any]:
        job = self.job(job_id, "V2Query")
        return {"retries": 0, "totalProcessingTime": 0, **job.info}

    def query_page(self, job_id: str, locator: str | None, max_records: int | None) -> tuple[str, str, int]:
        """(csv, next locator or "null", rows in this page)."""
        job = self.job(job_id, "V2Query")
        if job.info["state"] != "JobComplete":
            raise SfError(400, "INVALIDJOBSTATE", "Job is not complete")
        start = 0
        if locator:
            try:
                start = int(locator)
            except ValueError as exc:
                raise SfError(400, "INVALIDLOCATOR", f"Invalid locator: {locator}") from exc
        size = max_records or 50000
        page = job.query_rows[start : start + size]
        nxt = start + size
        delimiter = DELIMITERS[job.info["columnDelimiter"]]
        text = _to_csv(job.query_columns, page, delimiter, job.info["lineEnding"])
        return text, (str(nxt) if nxt < len(job.query_rows) else "null"), len(page)


def _flatten(row: dict[str, Any], columns: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for column in columns:
        value: Any = row
        for part in column.split("."):
            value = (
                next((v for k, v in value.items() if k.lower() == part.lower()), None)
                if isinstance(value, dict)
                else None
            )
        out[column] = (
            "" if value is None else ("true" if value is True else "false" if value is False else str(value))
        )
    return out


def _to_csv(header: list[str], rows: list[dict[str, str]], delimiter: str, line_ending: str) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer,
        fieldnames=header,
        delimiter=delimiter,
        quoting=csv.QUOTE_ALL,
        lineterminator="\r\n" if line_ending == "CRLF" else "\n",
        extrasaction="ignore",
    )
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
