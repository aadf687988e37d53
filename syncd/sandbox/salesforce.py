"""A local Salesforce org over HTTP(S): the REST API, SOQL, sObject Collections, Bulk API 2.0, login.

`SalesforceSandbox` serves the endpoints simple-salesforce and syncd's connector call, answering with the
status codes, JSON shapes and error codes of the real service (checked against recorded real traffic by
tests/sandbox/test_salesforce_fidelity.py). It refuses what Salesforce refuses: a sandbox that accepts a
bad request would let a connector bug through to production.

Test knobs: the daily API limit (`set_daily_limit`), latency and fault injection (`knobs`, kinds "429",
"REQUEST_LIMIT_EXCEEDED", "500", "503", "UNABLE_TO_LOCK_ROW", "drop"), call counts by kind
(`knobs.calls`), session expiry (`expire_sessions`), and back-door record helpers that bypass the API
(`insert`, `update`, `hard_delete`, `records`) to make drift happen behind a client's back.
"""

from __future__ import annotations

import json
import socket
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from cryptography import x509
from werkzeug.routing import Map, Rule
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request, Response

from syncd.sandbox import soql
from syncd.sandbox.http import LoopbackServer
from syncd.sandbox.knobs import Knobs
from syncd.sandbox.salesforce_auth import (
    AuthFailure,
    Credentials,
    jwt_grant,
    make_jwt_keypair,
    new_session_token,
    password_grant,
    soap_credentials,
    soap_fault,
    soap_login_ok,
    token_response,
)
from syncd.sandbox.salesforce_bulk import BulkJobs
from syncd.sandbox.salesforce_org import Org, RecordFault, SfError
from syncd.sandbox.salesforce_query import QueryRunner
from syncd.sandbox.salesforce_schema import (
    apply_seed_schema,
    describe_global_entry,
    describe_sobject,
    read_seed,
    standard_objects,
)
from syncd.sandbox.salesforce_store import OrgStore
from syncd.sandbox.tls import make_loopback_tls

JSON_TYPE = "application/json;charset=UTF-8"
QUERY_PAGE = 2000
OPEN_CURSORS = 10  # Salesforce keeps 10 query cursors per user; opening an 11th drops the oldest
COLLECTION_LIMIT = 200
API_VERSIONS = [f"{v}.0" for v in range(31, 63)]
DEFAULT_DAILY_LIMIT = 100_000

_V = "/services/data/v<version>"


def _routes() -> Map:
    """Endpoint -> (handler name, call kind); `kind` is what knobs.calls counts."""
    rules = [
        Rule("/services/oauth2/token", endpoint="token", methods=["POST"]),
        Rule("/services/Soap/u/<version>", endpoint="soap_login", methods=["POST"]),
        Rule("/services/data/", endpoint="versions", methods=["GET"]),
        Rule(f"{_V}/", endpoint="resources", methods=["GET"]),
        Rule(f"{_V}/limits/", endpoint="limits", methods=["GET"]),
        Rule(f"{_V}/limits/recordCount", endpoint="record_count", methods=["GET"]),
        Rule(f"{_V}/sobjects/", endpoint="describe_global", methods=["GET"]),
        Rule(f"{_V}/sobjects/<sobject>/", endpoint="sobject_root", methods=["GET", "POST"]),
        Rule(f"{_V}/sobjects/<sobject>/describe/", endpoint="describe", methods=["GET"]),
        Rule(f"{_V}/sobjects/<sobject>/updated/", endpoint="updated", methods=["GET"]),
        Rule(f"{_V}/sobjects/<sobject>/deleted/", endpoint="deleted", methods=["GET"]),
        Rule(
            f"{_V}/sobjects/<sobject>/<record_id>", endpoint="sobject_row", methods=["GET", "PATCH", "DELETE"]
        ),
        Rule(
            f"{_V}/sobjects/<sobject>/<field>/<path:value>", endpoint="sobject_ext", methods=["GET", "PATCH"]
        ),
        Rule(f"{_V}/query/", endpoint="query", methods=["GET"]),
        Rule(f"{_V}/queryAll/", endpoint="query_all", methods=["GET"]),
        Rule(f"{_V}/query/<locator>", endpoint="query_more", methods=["GET"]),
        Rule(f"{_V}/queryAll/<locator>", endpoint="query_more", methods=["GET"]),
        Rule(f"{_V}/composite/", endpoint="composite", methods=["POST"]),
        Rule(f"{_V}/composite/sobjects/", endpoint="collections", methods=["POST", "PATCH", "DELETE"]),
        Rule(f"{_V}/composite/sobjects/<sobject>/<field>", endpoint="collections_upsert", methods=["PATCH"]),
        Rule(f"{_V}/jobs/ingest/", endpoint="ingest_jobs", methods=["POST"]),
        Rule(f"{_V}/jobs/ingest/<job_id>/", endpoint="ingest_job", methods=["GET", "PATCH", "DELETE"]),
        Rule(f"{_V}/jobs/ingest/<job_id>/batches/", endpoint="ingest_batches", methods=["PUT"]),
        Rule(f"{_V}/jobs/ingest/<job_id>/<which>/", endpoint="ingest_results", methods=["GET"]),
        Rule(f"{_V}/jobs/query/", endpoint="query_jobs", methods=["POST"]),
        Rule(f"{_V}/jobs/query/<job_id>/", endpoint="query_job", methods=["GET", "PATCH", "DELETE"]),
        Rule(f"{_V}/jobs/query/<job_id>/results/", endpoint="query_results", methods=["GET"]),
    ]
    return Map(rules, strict_slashes=False, merge_slashes=False)


_KINDS = {
    "token": "login",
    "soap_login": "login",
    "versions": "versions",
    "resources": "resources",
    "limits": "limits",
    "record_count": "limits",
    "describe_global": "describe",
    "describe": "describe",
    "sobject_root": "sobject",
    "updated": "updated",
    "deleted": "deleted",
    "query": "query",
    "query_all": "query",
    "query_more": "query",
    "composite": "composite",
    "collections": "composite_sobjects",
    "collections_upsert": "composite_sobjects",
    "ingest_jobs": "bulk2_ingest",
    "ingest_job": "bulk2_ingest",
    "ingest_batches": "bulk2_ingest",
    "ingest_results": "bulk2_ingest",
    "query_jobs": "bulk2_query",
    "query_job": "bulk2_query",
    "query_results": "bulk2_query",
}


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    text = "" if body is None else json.dumps(body)
    return Response(
        text, status=status, content_type=JSON_TYPE if body is not None else None, headers=headers
    )


class _Dropped(Exception):
    """The connection was closed without an answer (the "drop" fault)."""


class SalesforceSandbox:
    """One org on 127.0.0.1. `seed` adds custom objects/fields/rules and records (YAML/JSON or a dict)."""

    def __init__(
        self,
        data_dir: Path | None = None,
        port: int = 0,
        tls: bool = True,
        api_version: str = "62.0",
        seed: Path | dict[str, Any] | None = None,
    ) -> None:
        self._tmp = None if data_dir is not None else tempfile.TemporaryDirectory(prefix="sf-sandbox-")
        self.data_dir = Path(data_dir) if data_dir is not None else Path(self._tmp.name)  # type: ignore[union-attr]
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = port
        self.tls = make_loopback_tls(self.data_dir / "tls") if tls else None
        self.api_version = api_version
        self.knobs = Knobs()
        self.credentials = Credentials()
        self.jwt_key_file, cert_file = make_jwt_keypair(self.data_dir)
        self.register_certificate(cert_file.read_bytes())
        objects = standard_objects()
        seed_data = read_seed(seed) if seed is not None else {}
        apply_seed_schema(objects, seed_data)
        store = OrgStore(self.data_dir / "org.sqlite3" if data_dir is not None else None)
        self.org = Org(objects, store, api_version)
        self.bulk = BulkJobs(self.org)
        self._cursors: OrderedDict[str, tuple[list[dict[str, Any]], int]] = OrderedDict()
        self._cursor_lock = threading.Lock()
        self._server: LoopbackServer | None = None
        self._map = _routes()
        self._bootstrap(seed_data)

    # --- lifecycle ------------------------------------------------------------------------------

    def _bootstrap(self, seed: dict[str, Any]) -> None:
        """The org's own rows (Organization, the API user) and the seed's records, on first start only."""
        store = self.org.store
        if store.meta("org_id") is None:
            org_id = store.new_id("00D")
            user_id = store.new_id("005")
            stamp = store.tick()
            system = {
                "IsDeleted": False,
                "CreatedDate": stamp,
                "LastModifiedDate": stamp,
                "SystemModstamp": stamp,
                "CreatedById": user_id,
                "LastModifiedById": user_id,
            }
            user = {
                "Id": user_id,
                "Username": self.credentials.username,
                "FirstName": "Account",
                "LastName": "Coordinator",
                "Name": "Account Coordinator",
                "Email": self.credentials.username,
                "IsActive": True,
            }
            self.org.save(self.org.objects["Organization"], {**_organization_row(org_id), **system})
            self.org.save(self.org.objects["User"], {**user, **system})
            store.set_meta("org_id", org_id)
            store.set_meta("user_id", user_id)
            self.org.org_id, self.org.user_id = org_id, user_id
            for obj_name, spec in (seed.get("objects") or {}).items():
                for record in (spec or {}).get("records") or []:
                    self.org.create(obj_name, dict(record))
        self.org.org_id = store.meta("org_id") or ""
        self.org.user_id = store.meta("user_id") or ""

    def start(self) -> SalesforceSandbox:
        self._server = LoopbackServer(self, port=self.port, tls=self.tls).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        self.org.store.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the sandbox is not started")
        return self._server.base_url

    def info(self) -> dict[str, Any]:
        """What a client needs to connect: URLs, credentials, the CA to trust, the JWT key."""
        return {
            "instance_url": self.base_url,
            "login_url": self.base_url,
            "username": self.credentials.username,
            "password": self.credentials.password,
            "security_token": self.credentials.security_token,
            "client_id": self.credentials.client_id,
            "client_secret": self.credentials.client_secret,
            "ca_file": str(self.tls.ca_file) if self.tls else None,
            "api_version": self.api_version,
            "jwt_private_key_file": str(self.jwt_key_file),
            "org_id": self.org.org_id,
        }

    # --- knobs and back doors -------------------------------------------------------------------

    def set_daily_limit(self, n: int) -> None:
        self.org.store.set_meta("daily_limit", str(n))

    def api_usage(self) -> tuple[int, int]:
        store = self.org.store
        return int(store.meta("api_used", "0") or 0), int(
            store.meta("daily_limit", str(DEFAULT_DAILY_LIMIT)) or 0
        )

    def reset_api_usage(self) -> None:
        self.org.store.set_meta("api_used", "0")

    def expire_sessions(self) -> None:
        """Every issued session becomes invalid (clients see INVALID_SESSION_ID and must log in again)."""
        self.org.store.expire_sessions()

    def register_certificate(self, pem: bytes) -> None:
        """Trust another connected-app certificate for the JWT bearer flow."""
        self.credentials.certificates.append(x509.load_pem_x509_certificate(pem))

    def insert(self, sobject: str, fields: dict[str, Any], system_modstamp: str | None = None) -> str:
        """Create a record behind the API; `system_modstamp` back-dates it, as a late-committing transaction would."""
        if system_modstamp is None:
            return self.org.create(sobject, fields)
        with self.org.one_transaction(system_modstamp):
            return self.org.create(sobject, fields)

    def update(self, sobject: str, record_id: str, fields: dict[str, Any]) -> None:
        self.org.update(sobject, record_id, fields)

    def delete(self, sobject: str, record_id: str) -> None:
        self.org.delete(sobject, record_id)

    def hard_delete(self, sobject: str, record_id: str, tombstone: bool = True) -> None:
        """Remove a record without a trace in queryAll; `tombstone=False` also hides it from getDeleted."""
        self.org.hard_delete(sobject, record_id, tombstone)

    def records(self, sobject: str, include_deleted: bool = False) -> list[dict[str, Any]]:
        return self.org.store.all(self.org.sobject(sobject).name, include_deleted)

    # --- WSGI -----------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        try:
            response = self._handle(request, count=True)
        except _Dropped:
            sock = environ.get("werkzeug.socket")
            if isinstance(sock, socket.socket):
                sock.shutdown(socket.SHUT_RDWR)
            response = Response(b"", status=500)
        return response(environ, start_response)

    def _handle(self, request: Request, count: bool) -> Response:
        adapter = self._map.bind_to_environ(request.environ)
        try:
            endpoint, args = adapter.match()
        except Exception:  # werkzeug's NotFound / MethodNotAllowed / redirects
            return self._with_usage(
                _json([{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}], 404)
            )
        kind = _KINDS.get(str(endpoint), str(endpoint))
        if endpoint == "sobject_row" or endpoint == "sobject_ext":
            kind = {"GET": "sobject_get", "PATCH": "sobject_update", "DELETE": "sobject_delete"}[
                request.method
            ]
            if endpoint == "sobject_ext" and request.method == "PATCH":
                kind = "sobject_upsert"
        if endpoint == "sobject_root":
            kind = "sobject_create" if request.method == "POST" else "describe"
        args = dict(args)
        is_api = str(endpoint) not in {"token", "soap_login", "versions"}
        version = args.pop("version", None) if is_api else None
        try:
            if is_api and version not in API_VERSIONS and version != self.api_version:
                raise SfError(404, "NOT_FOUND", "The requested resource does not exist")
            if is_api:
                self._check_session(request)
            fault = self.knobs.on_call(kind) if count else None
            if fault == "timeout":
                time.sleep(self.knobs.stall_seconds)
                fault = None
            if fault is not None:
                faulted = self._fault(fault, kind)
                if faulted is not None:
                    return self._with_usage(faulted) if is_api else faulted
            if is_api and count:
                self._spend_api_call()
            if fault == "UNABLE_TO_LOCK_ROW":
                request.environ["syncd.lock_fault"] = True
            handler = getattr(self, f"_ep_{endpoint}")
            response: Response = handler(request, **args)
        except SfError as exc:
            response = _json(exc.body(), exc.status)
        except RecordFault as exc:
            response = _json(exc.as_request_error().body(), 400)
        return self._with_usage(response) if is_api else response

    def _with_usage(self, response: Response) -> Response:
        used, limit = self.api_usage()
        response.headers["Sforce-Limit-Info"] = f"api-usage={used}/{limit}"
        return response

    def _check_session(self, request: Request) -> None:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() not in {"bearer", "oauth"} or not self.org.store.session_valid(token.strip()):
            raise SfError(401, "INVALID_SESSION_ID", "Session expired or invalid")

    def _spend_api_call(self) -> None:
        with self.org.store.lock:
            used, limit = self.api_usage()
            if used >= limit:
                raise SfError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
            self.org.store.bump("api_used")

    def _fault(self, fault: str, kind: str) -> Response | None:
        if fault == "drop":
            raise _Dropped()
        if fault == "429":
            return _json([{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "Too many requests"}], 429)
        if fault == "REQUEST_LIMIT_EXCEEDED":
            return _json(
                [
                    {
                        "errorCode": "REQUEST_LIMIT_EXCEEDED",
                        "message": "ConcurrentPerOrgLongTxn Limit exceeded.",
                    }
                ],
                403,
            )
        if fault == "500":
            return _json(
                [
                    {
                        "errorCode": "UNKNOWN_EXCEPTION",
                        "message": "An unexpected error occurred. Please include this "
                        "ErrorId if you contact support: 1234567890-12345 (-1234567890)",
                    }
                ],
                500,
            )
        if fault == "503":
            return _json(
                [{"errorCode": "SERVER_UNAVAILABLE", "message": "Server temporarily unavailable"}], 503
            )
        if fault == "UNABLE_TO_LOCK_ROW":
            if kind == "composite_sobjects":
                return None  # answered per record: the handler sees the flag and rolls back (_apply_all)
            return _json(
                [
                    {
                        "errorCode": "UNABLE_TO_LOCK_ROW",
                        "message": "unable to obtain exclusive access to this record",
                    }
                ],
                400,
            )
        raise ValueError(f"unknown Salesforce fault kind {fault!r}")

    # --- auth endpoints -------------------------------------------------------------------------

    def _issue_session(self, username: str) -> str:
        token = new_session_token(self.org.org_id)
        self.org.store.add_session(token, username)
        return token

    def _ep_token(self, request: Request) -> Response:
        form = {k: v for k, v in request.form.items()}
        grant = form.get("grant_type")
        try:
            if grant == "password":
                username = password_grant(self.credentials, form)
            elif grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
                username = jwt_grant(self.credentials, form.get("assertion", ""), (self.base_url,))
            else:
                raise AuthFailure(400, "unsupported_grant_type", "grant type not supported")
        except AuthFailure as exc:
            return Response(json.dumps(exc.body()), status=exc.status, content_type=JSON_TYPE)
        token = self._issue_session(username)
        body = token_response(token, self.base_url, self.base_url, self.org.org_id, self.org.user_id)
        return Response(json.dumps(body), status=200, content_type=JSON_TYPE)

    def _ep_soap_login(self, request: Request, version: str) -> Response:
        try:
            username, password = soap_credentials(request.get_data())
        except (ValueError, SyntaxError):
            return Response(soap_fault("INVALID_LOGIN", "Invalid request"), 500, content_type="text/xml")
        creds = self.credentials
        if username != creds.username or password != creds.password + creds.security_token:
            message = "Invalid username, password, security token; or user locked out."
            return Response(soap_fault("INVALID_LOGIN", message), 500, content_type="text/xml;charset=UTF-8")
        token = self._issue_session(username)
        body = soap_login_ok(self.base_url, version, token, self.org.org_id, self.org.user_id, username)
        return Response(body, 200, content_type="text/xml;charset=UTF-8")

    # --- org-level endpoints --------------------------------------------------------------------

    def _ep_versions(self, request: Request) -> Response:
        return _json([{"label": f"v{v}", "url": f"/services/data/v{v}", "version": v} for v in API_VERSIONS])

    def _ep_resources(self, request: Request) -> Response:
        base = f"/services/data/v{self.api_version}"
        names = ["sobjects", "query", "queryAll", "limits", "composite", "jobs"]
        return _json({name: f"{base}/{name}" for name in names})

    def _ep_limits(self, request: Request) -> Response:
        used, limit = self.api_usage()
        return _json(
            {
                "DailyApiRequests": {"Max": limit, "Remaining": max(limit - used, 0)},
                "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000},
                "DataStorageMB": {"Max": 5, "Remaining": 5},
            }
        )

    def _ep_record_count(self, request: Request) -> Response:
        wanted = [n for part in request.args.getlist("sObjects") for n in part.split(",") if n]
        objects = [self.org.sobject(n) for n in wanted] if wanted else list(self.org.objects.values())
        return _json({"sObjects": [{"count": self.org.store.count(o.name), "name": o.name} for o in objects]})

    def _ep_describe_global(self, request: Request) -> Response:
        entries = [describe_global_entry(o, self.api_version) for o in self.org.objects.values()]
        return _json({"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": entries})

    def _ep_describe(self, request: Request, sobject: str) -> Response:
        obj = self.org.sobject(sobject)
        return _json(describe_sobject(self.org.objects, obj, self.api_version))

    # --- single records -------------------------------------------------------------------------

    def _body(self, request: Request) -> Any:
        try:
            return json.loads(request.get_data() or b"null")
        except json.JSONDecodeError as exc:
            message = f"Unexpected character: {exc.msg} at [line:{exc.lineno}, column:{exc.colno}]"
            raise SfError(400, "JSON_PARSER_ERROR", message) from exc

    def _object_body(self, request: Request) -> dict[str, Any]:
        body = self._body(request)
        if not isinstance(body, dict):
            raise SfError(
                400, "JSON_PARSER_ERROR", "Cannot deserialize instance of sObject from START_ARRAY value"
            )
        return body

    def _ep_sobject_root(self, request: Request, sobject: str) -> Response:
        obj = self.org.sobject(sobject)
        if request.method == "GET":
            recent = [self.org.render(obj, r, ["Id"]) for r in self.org.store.all(obj.name)[-10:]]
            return _json(
                {"objectDescribe": describe_global_entry(obj, self.api_version), "recentItems": recent}
            )
        body = self._object_body(request)
        try:
            record_id = self.org.create(obj.name, body)
        except RecordFault as exc:
            return _json(exc.as_request_error().body(), 400)
        return _json({"id": record_id, "success": True, "errors": []}, 201)

    def _ep_sobject_row(self, request: Request, sobject: str, record_id: str) -> Response:
        obj = self.org.sobject(sobject)
        if request.method == "GET":
            try:
                record = self.org.live_record(obj, record_id)
            except RecordFault as exc:
                if exc.status_code == "MALFORMED_ID":
                    raise SfError(
                        404,
                        "NOT_FOUND",
                        f"Provided external ID field does not exist or is not accessible: {record_id}",
                    ) from exc
                raise SfError(404, "NOT_FOUND", "The requested resource does not exist") from exc
            fields = request.args.get("fields")
            return _json(self.org.render(obj, record, fields.split(",") if fields else None))
        try:
            if request.method == "PATCH":
                self.org.update(obj.name, record_id, self._object_body(request))
            else:
                self.org.delete(obj.name, record_id)
        except RecordFault as exc:
            status = (
                404
                if exc.status_code in {"INVALID_CROSS_REFERENCE_KEY", "MALFORMED_ID", "ENTITY_IS_DELETED"}
                else 400
            )
            if status == 404 and exc.status_code != "ENTITY_IS_DELETED":
                raise SfError(404, "NOT_FOUND", "The requested resource does not exist") from exc
            return _json(exc.as_request_error().body(), status)
        return Response(status=204)

    def _ep_sobject_ext(self, request: Request, sobject: str, field: str, value: str) -> Response:
        obj = self.org.sobject(sobject)
        f = self.org.upsert_field(obj, field)
        if request.method == "GET":
            matches = self.org.matches_for_upsert(obj, f, value)
            if not matches:
                raise SfError(404, "NOT_FOUND", "The requested resource does not exist")
            if len(matches) > 1:
                return _json([self.org.url(obj.name, m["Id"]) for m in matches], 300)
            return _json(self.org.render(obj, matches[0]))
        body = self._object_body(request)
        if any(k.lower() == "id" for k in body):
            raise SfError(400, "INVALID_FIELD", "The Id field should not be specified in the sobject data.")
        with self.org.store.lock:
            matches = self.org.matches_for_upsert(obj, f, value)
            if len(matches) > 1:
                return _json([self.org.url(obj.name, m["Id"]) for m in matches], 300)
            try:
                record_id, created = self.org.upsert(obj.name, f.name, value, body)
            except RecordFault as exc:
                return _json(exc.as_request_error().body(), 400)
        return _json(
            {"id": record_id, "success": True, "errors": [], "created": created}, 201 if created else 200
        )

    def _ep_updated(self, request: Request, sobject: str) -> Response:
        return _json(
            self.org.window(sobject, request.args.get("start", ""), request.args.get("end", ""), False)
        )

    def _ep_deleted(self, request: Request, sobject: str) -> Response:
        return _json(
            self.org.window(sobject, request.args.get("start", ""), request.args.get("end", ""), True)
        )

    # --- queries --------------------------------------------------------------------------------

    def _page_size(self, request: Request) -> int:
        options = request.headers.get("Sforce-Query-Options", "")
        for part in options.split(","):
            key, _, value = part.strip().partition("=")
            if key == "batchSize" and value.isdigit():
                return min(max(int(value), 200), QUERY_PAGE)
        return QUERY_PAGE

    def _run_query(self, request: Request, include_deleted: bool) -> Response:
        source = request.args.get("q")
        if source is None:
            raise SfError(400, "MALFORMED_QUERY", "A query string has to be specified")
        try:
            parsed = soql.parse(source)
            total, rows = QueryRunner(self.org, source).run(parsed, include_deleted)
        except soql.SoqlError as exc:
            raise SfError(400, exc.error_code, exc.message) from exc
        return self._page(
            rows, total, 0, None, self._page_size(request), "queryAll" if include_deleted else "query"
        )

    def _page(
        self,
        rows: list[dict[str, Any]],
        total: int,
        start: int,
        locator: str | None,
        size: int,
        resource: str,
    ) -> Response:
        page = rows[start : start + size]
        body: dict[str, Any] = {"totalSize": total, "done": start + size >= len(rows), "records": page}
        if not body["done"]:
            locator = locator or f"01g{uuid.uuid4().hex[:15]}"
            with self._cursor_lock:
                self._cursors[locator] = (rows, total)
                self._cursors.move_to_end(locator)
                while len(self._cursors) > OPEN_CURSORS:
                    self._cursors.popitem(last=False)
            body["nextRecordsUrl"] = f"/services/data/v{self.api_version}/{resource}/{locator}-{start + size}"
        elif locator:
            with self._cursor_lock:
                self._cursors.pop(locator, None)
        return _json(body)

    def _ep_query(self, request: Request) -> Response:
        return self._run_query(request, include_deleted=False)

    def _ep_query_all(self, request: Request) -> Response:
        return self._run_query(request, include_deleted=True)

    def _ep_query_more(self, request: Request, locator: str) -> Response:
        cursor_id, _, position = locator.rpartition("-")
        with self._cursor_lock:
            cursor = self._cursors.get(cursor_id)
        if cursor is None or not position.isdigit():
            raise SfError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        rows, total = cursor
        resource = "queryAll" if "/queryAll/" in request.path else "query"
        return self._page(rows, total, int(position), cursor_id, self._page_size(request), resource)

    # --- composite ------------------------------------------------------------------------------

    def _ep_composite(self, request: Request) -> Response:
        body = self._object_body(request)
        subrequests = body.get("compositeRequest")
        if not isinstance(subrequests, list) or not subrequests:
            raise SfError(400, "INVALID_INPUT", "compositeRequest is required")
        if len(subrequests) > 25:
            raise SfError(400, "LIMIT_EXCEEDED", "The number of subrequests exceeds the limit of 25")
        results = []
        for sub in subrequests:
            builder = EnvironBuilder(
                path=str(sub.get("url", "")).split("?", 1)[0],
                query_string=str(sub.get("url", "")).partition("?")[2].replace(" ", "%20"),
                method=str(sub.get("method", "GET")),
                json=sub.get("body"),
                headers=[("Authorization", request.headers.get("Authorization", ""))],
            )
            inner = self._handle(Request(builder.get_environ()), count=False)
            data = inner.get_data()
            results.append(
                {
                    "body": json.loads(data) if data else None,
                    "httpHeaders": {},
                    "httpStatusCode": inner.status_code,
                    "referenceId": sub.get("referenceId"),
                }
            )
        return _json({"compositeResponse": results})

    def _collection(self, body: dict[str, Any]) -> tuple[list[Any], bool]:
        records = body.get("records")
        if not isinstance(records, list):
            raise SfError(400, "JSON_PARSER_ERROR", "Cannot deserialize records: expected an array")
        if len(records) > COLLECTION_LIMIT:
            raise SfError(
                400,
                "EXCEEDED_ID_LIMIT",
                "record limit reached. cannot submit more than 200 records into this call",
            )
        return records, bool(body.get("allOrNone", False))

    def _apply_all(
        self, items: list[Any], all_or_none: bool, one: Callable[[Any], dict[str, Any]], locked: bool
    ) -> Response:
        """Run `one` per item; per-record results, rolled back together when allOrNone and any failed."""
        store = self.org.store
        results: list[dict[str, Any]] = []
        with store.lock, self.org.one_transaction():
            store.db.execute("BEGIN")
            try:
                for item in items:
                    try:
                        results.append({**one(item)})
                    except RecordFault as exc:
                        results.append({"id": None, "success": False, "errors": [exc.as_error()]})
                failed = any(not r["success"] for r in results)
                if locked:
                    store.db.execute("ROLLBACK")
                    results = [_locked(r) for r in results]
                elif all_or_none and failed:
                    store.db.execute("ROLLBACK")
                    results = [_rolled_back(r) for r in results]
                else:
                    store.db.execute("COMMIT")
            except BaseException:
                store.db.execute("ROLLBACK")
                raise
        return _json(results)

    def _ep_collections(self, request: Request) -> Response:
        locked = self._lock_fault_pending(request)
        if request.method == "DELETE":
            ids = [i for part in request.args.getlist("ids") for i in part.split(",") if i]
            if len(ids) > COLLECTION_LIMIT:
                raise SfError(
                    400,
                    "EXCEEDED_ID_LIMIT",
                    "record limit reached. cannot submit more than 200 records into this call",
                )
            all_or_none = request.args.get("allOrNone", "false").lower() == "true"

            def remove(record_id: str) -> dict[str, Any]:
                return {"id": self.org.delete(None, record_id), "success": True, "errors": []}

            return self._apply_all(ids, all_or_none, remove, locked)
        records, all_or_none = self._collection(self._object_body(request))
        creating = request.method == "POST"

        def write(record: Any) -> dict[str, Any]:
            if not isinstance(record, dict):
                raise RecordFault("INVALID_INPUT", "Each record must be an object", [])
            sobject = (record.get("attributes") or {}).get("type")
            if not sobject:
                raise RecordFault("INVALID_FIELD", "No SObject Type defined in the record", [])
            try:
                self.org.sobject(str(sobject))
            except SfError as exc:
                raise RecordFault("INVALID_TYPE", f"sObject type '{sobject}' is not supported.", []) from exc
            if creating:
                return {"id": self.org.create(str(sobject), record), "success": True, "errors": []}
            record_id = next((v for k, v in record.items() if k.lower() == "id"), None)
            if not record_id:
                raise RecordFault("MISSING_ARGUMENT", "Id not specified in an update call", ["Id"])
            return {
                "id": self.org.update(str(sobject), str(record_id), record),
                "success": True,
                "errors": [],
            }

        return self._apply_all(records, all_or_none, write, locked)

    def _ep_collections_upsert(self, request: Request, sobject: str, field: str) -> Response:
        locked = self._lock_fault_pending(request)
        obj = self.org.sobject(sobject)
        f = self.org.upsert_field(obj, field)
        records, all_or_none = self._collection(self._object_body(request))

        def write(record: Any) -> dict[str, Any]:
            if not isinstance(record, dict):
                raise RecordFault("INVALID_INPUT", "Each record must be an object", [])
            key = next((v for k, v in record.items() if k.lower() == f.name.lower()), None)
            if key is None or key == "":
                raise RecordFault("MISSING_ARGUMENT", f"{f.name} not specified", [f.name])
            record_id, created = self.org.upsert(obj.name, f.name, key, record)
            return {"id": record_id, "success": True, "errors": [], "created": created}

        return self._apply_all(records, all_or_none, write, locked)

    def _lock_fault_pending(self, request: Request) -> bool:
        return bool(request.environ.get("syncd.lock_fault"))

    # --- bulk 2.0 -------------------------------------------------------------------------------

    def _ep_ingest_jobs(self, request: Request) -> Response:
        return _json(self.bulk.create_ingest(self._object_body(request)))

    def _ep_ingest_job(self, request: Request, job_id: str) -> Response:
        if request.method == "GET":
            return _json(self.bulk.ingest_info(job_id))
        if request.method == "DELETE":
            self.bulk.delete_job(job_id, "V2Ingest")
            return Response(status=204)
        state = str(self._object_body(request).get("state"))
        return _json(self.bulk.set_state(job_id, "V2Ingest", state))

    def _ep_ingest_batches(self, request: Request, job_id: str) -> Response:
        if not (request.content_type or "").startswith("text/csv"):
            raise SfError(400, "INVALIDCONTENTTYPE", "Content-Type must be text/csv")
        self.bulk.upload(job_id, request.get_data(as_text=True))
        return Response(status=201)

    def _ep_ingest_results(self, request: Request, job_id: str, which: str) -> Response:
        if which not in {"successfulResults", "failedResults", "unprocessedrecords"}:
            raise SfError(404, "NOT_FOUND", "The requested resource does not exist")
        return Response(self.bulk.results(job_id, which), status=200, content_type="text/csv")

    def _ep_query_jobs(self, request: Request) -> Response:
        return _json(self.bulk.create_query(self._object_body(request)))

    def _ep_query_job(self, request: Request, job_id: str) -> Response:
        if request.method == "GET":
            return _json(self.bulk.query_info(job_id))
        if request.method == "DELETE":
            self.bulk.delete_job(job_id, "V2Query")
            return Response(status=204)
        return _json(self.bulk.set_state(job_id, "V2Query", str(self._object_body(request).get("state"))))

    def _ep_query_results(self, request: Request, job_id: str) -> Response:
        max_records = request.args.get("maxRecords")
        text, locator, count = self.bulk.query_page(
            job_id,
            request.args.get("locator"),
            int(max_records) if max_records and max_records.isdigit() else None,
        )
        headers = {"Sforce-Locator": locator, "Sforce-NumberOfRecords": str(count)}
        return Response(text, status=200, content_type="text/csv", headers=headers)


def _organization_row(org_id: str) -> dict[str, Any]:
    """The sandbox org's settings, in the values a new Developer Edition org has."""
    address = dict.fromkeys(
        ["city", "geocodeAccuracy", "latitude", "longitude", "postalCode", "state", "street"]
    )
    return {
        "Id": org_id,
        "Name": "syncd sandbox",
        **dict.fromkeys(["Division", "Street", "City", "State", "PostalCode", "Latitude", "Longitude"]),
        "Country": "US",
        "GeocodeAccuracy": None,
        "Address": {**address, "country": "US"},
        "Phone": None,
        "Fax": None,
        "PrimaryContact": "Account Coordinator",
        "DefaultLocaleSidKey": "en_US",
        "TimeZoneSidKey": "Etc/UTC",
        "LanguageLocaleKey": "en_US",
        "ReceivesInfoEmails": False,
        "ReceivesAdminInfoEmails": False,
        "PreferencesRequireOpportunityProducts": False,
        "PreferencesTransactionSecurityPolicy": False,
        "PreferencesTerminateOldestSession": False,
        "PreferencesConsentManagementEnabled": True,
        "PreferencesAutoSelectIndividualOnMerge": False,
        "PreferencesLightningLoginEnabled": True,
        "PreferencesOnlyLLPermUserAllowed": False,
        "FiscalYearStartMonth": 1,
        "UsesStartDateAsFiscalYearName": False,
        "DefaultAccountAccess": "Edit",
        "DefaultContactAccess": "ControlledByParent",
        "DefaultOpportunityAccess": "Edit",
        "DefaultLeadAccess": "ReadEditTransfer",
        "DefaultCaseAccess": "ReadEditTransfer",
        "DefaultCalendarAccess": "HideDetailsInsert",
        "DefaultPricebookAccess": "ReadSelect",
        "DefaultCampaignAccess": "All",
        "DelegatedAuthenticationServiceUrl": None,
        "ComplianceBccEmail": None,
        "UiSkin": "Theme3",
        "SignupCountryIsoCode": "US",
        "TrialExpirationDate": "2099-12-31T00:00:00.000+0000",
        "NumKnowledgeService": 0,
        "OrganizationType": "Developer Edition",
        "NamespacePrefix": None,
        "InstanceName": "LOCAL",
        "IsSandbox": True,
        "WebToCaseDefaultOrigin": "Web",
        "MonthlyPageViewsUsed": 0,
        "MonthlyPageViewsEntitlement": 0,
        "IsReadOnly": False,
    }


def _rolled_back(result: dict[str, Any]) -> dict[str, Any]:
    if not result["success"]:
        return result
    message = (
        "Record rolled back because not all records were valid and the request was using AllOrNone header"
    )
    return {
        "id": None,
        "success": False,
        "errors": [{"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK", "message": message, "fields": []}],
    }


def _locked(result: dict[str, Any]) -> dict[str, Any]:
    if not result["success"]:
        return result
    message = (
        f"unable to obtain exclusive access to this record or 1 records: {result.get('id') or ''}".strip()
    )
    return {
        "id": None,
        "success": False,
        "errors": [{"statusCode": "UNABLE_TO_LOCK_ROW", "message": message, "fields": []}],
    }
