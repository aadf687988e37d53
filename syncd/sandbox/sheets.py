"""A local Google Sheets API v4 (+ the Drive v3 calls gspread makes) for tests, benchmarks and `syncd demo`.

gspread and the Sheets connector run against it unchanged: `sandbox_session()` gives a requests
session whose transport adapter sends `https://sheets.googleapis.com/...` and
`https://www.googleapis.com/...` here (see `connectors/sheets/transport.py`). Paths served:

- Sheets: `/v4/spreadsheets/...`, also accepted as `/sheets/v4/spreadsheets/...` (the recordings' form);
- Drive: `/drive/v3/files...` and `/upload/drive/v2/files/{id}`;
- OAuth: `POST /token` (JWT-bearer grant signed with the key in `info()["service_account_file"]`).

Every API call needs a bearer token: one from `/token`, or the sandbox's static `info()["token"]`.
Quotas work like Google's per-user per-minute read and write limits (GET is a read, everything else a
write; Drive calls are not counted), answering 429 RESOURCE_EXHAUSTED with Google's message.
Faults from `knobs` ("429", "500", "503", "drop") hit before the call touches any state.
A request body over 10 MiB is refused as Google does (400 INVALID_ARGUMENT, "Request payload size
exceeds the limit: 10485760 bytes.").
"""

from __future__ import annotations

import csv
import io
import json
import secrets
import socket
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import requests
from ruamel.yaml import YAML
from werkzeug.wrappers import Request, Response

from connectors.sheets.transport import mount_endpoint_override
from syncd.sandbox import sheets_api as api
from syncd.sandbox.http import LoopbackServer
from syncd.sandbox.knobs import Knobs
from syncd.sandbox.sheets_auth import ServiceAccount, TokenError, TokenIssuer
from syncd.sandbox.sheets_drive import DriveQueryError, drive_error, export_csv, matches, v2_file
from syncd.sandbox.sheets_fields import FieldMaskError, apply_fields, parse_fields
from syncd.sandbox.sheets_model import SPREADSHEET_MIME, Spreadsheet, Store, new_sheet, new_spreadsheet
from syncd.sandbox.sheets_requests import RequestError, apply_requests
from syncd.sandbox.sheets_values import Cell, from_raw, from_user_entered, render
from syncd.sandbox.tls import LoopbackTLS, make_loopback_tls

UNAUTHENTICATED = (
    "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie "
    "or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
)
INVALID_CREDENTIALS = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other "
    "valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
)
PROJECT_NUMBER = "100000000001"
MAX_REQUEST_BYTES = 10_485_760
"""Google refuses a request body past this size (400 INVALID_ARGUMENT, whatever the call)."""


class Quotas:
    """Per-user per-minute request budgets, counted over a sliding 60-second window.

    Set `read_per_minute` / `write_per_minute` (defaults: Google's published 60/60 per user) or
    `None` for no limit. `clock` is replaceable so a test can move time instead of sleeping.
    """

    def __init__(self, read_per_minute: int | None = 60, write_per_minute: int | None = 60) -> None:
        self.read_per_minute = read_per_minute
        self.write_per_minute = write_per_minute
        self.clock = time.monotonic
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str], deque[float]] = {}

    def reset(self) -> None:
        with self._lock:
            self._seen.clear()

    def take(self, user: str, kind: str) -> bool:
        """Spend one `kind` ("read"/"write") request for `user`; False when the minute's budget is used."""
        limit = self.read_per_minute if kind == "read" else self.write_per_minute
        if limit is None:
            return True
        now = self.clock()
        with self._lock:
            seen = self._seen.setdefault((user, kind), deque())
            while seen and seen[0] <= now - 60:
                seen.popleft()
            if len(seen) >= limit:
                return False
            seen.append(now)
            return True

    def remaining(self, user: str, kind: str) -> int | None:
        limit = self.read_per_minute if kind == "read" else self.write_per_minute
        if limit is None:
            return None
        now = self.clock()
        with self._lock:
            seen = self._seen.get((user, kind), deque())
            return limit - sum(1 for t in seen if t > now - 60)


def quota_error(kind: str) -> api.ApiError:
    metric = "Read requests" if kind == "read" else "Write requests"
    limit = f"{metric} per minute per user"
    message = (
        f"Quota exceeded for quota metric '{metric}' and limit '{limit}' of service "
        f"'sheets.googleapis.com' for consumer 'project_number:{PROJECT_NUMBER}'."
    )
    return api.ApiError(
        429,
        message,
        "RESOURCE_EXHAUSTED",
        [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "RATE_LIMIT_EXCEEDED",
                "domain": "googleapis.com",
                "metadata": {
                    "quota_metric": "sheets.googleapis.com/"
                    + ("read_requests" if kind == "read" else "write_requests"),
                    "quota_limit": ("Read" if kind == "read" else "Write") + "RequestsPerMinutePerUser",
                    "service": "sheets.googleapis.com",
                    "consumer": f"projects/{PROJECT_NUMBER}",
                },
            }
        ],
    )


FAULTS = {
    "500": api.ApiError(500, "Internal error encountered.", "INTERNAL"),
    "503": api.ApiError(503, "The service is currently unavailable.", "UNAVAILABLE"),
}


def _json_response(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json; charset=UTF-8")


def _api_error(exc: api.ApiError) -> Response:
    return _json_response(exc.body(), exc.code)


def _flag(value: str | None) -> bool:
    return value is not None and value.lower() == "true"


class SheetsSandbox:
    """The sandbox server and its back door for tests (create, read and "hand-edit" spreadsheets)."""

    def __init__(
        self,
        data_dir: Path | None = None,
        port: int = 0,
        tls: bool = True,
        seed: Path | dict[str, Any] | None = None,
    ) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="syncd-sheets-")
            data_dir = Path(self._tmp.name)
        self.data_dir = Path(data_dir)
        persistent = self._tmp is None
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store(self.data_dir / "sheets_state.json" if persistent else None)
        self.knobs = Knobs()
        self.quotas = Quotas()
        self._tls: LoopbackTLS | None = make_loopback_tls(self.data_dir / "tls") if tls else None
        self._port = port
        self._server: LoopbackServer | None = None
        self.account = self._load_account()
        self.token = self._load_token()
        self.issuer = TokenIssuer(
            self.account, token_uri="", static_tokens={self.token: self.account.client_email}
        )
        if seed is not None and not self.store.files:
            self.seed(seed)

    # --- lifecycle ----------------------------------------------------------------------------

    def _load_account(self) -> ServiceAccount:
        path = self.data_dir / "service_account_key.json"
        if path.exists():
            return ServiceAccount(**json.loads(path.read_text(encoding="utf-8")))
        account = ServiceAccount.generate()
        path.touch(mode=0o600)
        path.write_text(json.dumps(account.to_json()), encoding="utf-8")
        return account

    def _load_token(self) -> str:
        """The static bearer token, kept in data_dir so a restarted demo sandbox accepts it still."""
        path = self.data_dir / "static_token"
        if path.exists():
            return path.read_text(encoding="utf-8").strip()
        token = "sandbox-static-" + secrets.token_urlsafe(16)
        path.touch(mode=0o600)
        path.write_text(token, encoding="utf-8")
        return token

    def start(self) -> SheetsSandbox:
        self._server = LoopbackServer(self.wsgi, port=self._port, tls=self._tls).start()
        self.issuer.token_uri = self.base_url + "/token"
        self.account.write(self.data_dir / "service_account.json", self.issuer.token_uri)
        user_file = self.data_dir / "authorized_user.json"
        user_file.touch(mode=0o600)
        user_file.write_text(json.dumps(self.issuer.user_info(), indent=2), encoding="utf-8")
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        with self.store.lock:
            self.store.save()

    def __enter__(self) -> SheetsSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the Sheets sandbox is not started")
        return self._server.base_url

    def info(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "ca_file": str(self._tls.ca_file) if self._tls else None,
            "service_account_file": str(self.data_dir / "service_account.json"),
            "authorized_user_file": str(self.data_dir / "authorized_user.json"),
            "token": self.token,
            "client_email": self.account.client_email,
        }

    def session(self) -> requests.Session:
        """A requests session that reaches this sandbox with the static token (for gspread.Client)."""
        return sandbox_session(self.base_url, self._tls.ca_file if self._tls else None, self.token)

    # --- back door ----------------------------------------------------------------------------

    def create_spreadsheet(self, title: str, sheets: dict[str, list[list[Any]]] | None = None) -> str:
        """Create a spreadsheet whose worksheets hold `sheets` (values typed as USER_ENTERED); its id."""
        book = new_spreadsheet(title)
        if sheets:
            book.sheets = []
            for index, (name, rows) in enumerate(sheets.items()):
                width = max((len(r) for r in rows), default=0)
                sheet = new_sheet(
                    name, index, 0 if index == 0 else index * 1000 + 7, max(1000, len(rows)), max(26, width)
                )
                for r, row in enumerate(rows):
                    for c, value in enumerate(row):
                        cell = from_user_entered(value)
                        sheet.put(r, c, cell if isinstance(cell, Cell) else None)
                book.sheets.append(sheet)
        with self.store.lock:
            self.store.files[book.id] = book
            self.store.save()
        return book.id

    def values(
        self, spreadsheet_id: str, sheet: str, render_option: str = "FORMATTED_VALUE"
    ) -> list[list[Any]]:
        """The sheet's values as `values.get` would return them (trailing empties trimmed)."""
        with self.store.lock:
            found = self._book(spreadsheet_id).sheet_by_title(sheet)
            if found is None:
                raise KeyError(sheet)
            rows, cols = found.used_extent()
            out = []
            for r in range(rows):
                line = [render(found.cell(r, c), render_option, "SERIAL_NUMBER") for c in range(cols)]
                while line and line[-1] == "":
                    line.pop()
                out.append(line)
            return out

    def set_values(
        self,
        spreadsheet_id: str,
        sheet: str,
        top_left: tuple[int, int],
        rows: list[list[Any]],
        raw: bool = False,
    ) -> None:
        """A person editing cells in the browser: 0-based (row, col); records each row's edit time."""
        now = time.time()
        with self.store.lock:
            book = self._book(spreadsheet_id)
            found = book.sheet_by_title(sheet)
            if found is None:
                raise KeyError(sheet)
            r0, c0 = top_left
            found.grow(r0 + len(rows), c0 + max((len(r) for r in rows), default=0))
            for i, row in enumerate(rows):
                for j, value in enumerate(row):
                    cell = from_raw(value) if raw else from_user_entered(value)
                    if isinstance(cell, Cell) or cell is None:
                        found.put(r0 + i, c0 + j, cell)
                found.edited[r0 + i] = now
            book.modified = now
            self.store.save()

    def edit_times(self, spreadsheet_id: str, sheet: str) -> dict[int, float]:
        """0-based row -> epoch seconds of the last back-door edit of that row."""
        with self.store.lock:
            found = self._book(spreadsheet_id).sheet_by_title(sheet)
            return dict(found.edited) if found else {}

    def deny_access(self, spreadsheet_id: str) -> None:
        """Make a spreadsheet belong to someone else: every call on it answers 403."""
        with self.store.lock:
            self._book(spreadsheet_id).private = True

    def reset(self) -> None:
        """Forget every spreadsheet, quota use and call count: an empty Drive, without a restart."""
        with self.store.lock:
            self.store.files.clear()
            self.store.save()
        self.quotas.reset()
        self.knobs.reset_counts()
        self.knobs.clear_faults()

    def spreadsheet_ids(self) -> list[str]:
        with self.store.lock:
            return list(self.store.files)

    def _book(self, spreadsheet_id: str) -> Spreadsheet:
        book = self.store.files.get(spreadsheet_id)
        if book is None:
            raise KeyError(spreadsheet_id)
        return book

    def seed(self, seed: Path | dict[str, Any]) -> dict[str, str]:
        """Load spreadsheets: {title: {worksheet: rows}}, a YAML file of that shape, or a CSV file
        (one spreadsheet named after the file, one worksheet "Sheet1"). Returns title -> id."""
        if isinstance(seed, dict):
            data = seed
        elif seed.suffix.lower() == ".csv":
            with seed.open(newline="", encoding="utf-8") as fh:
                data = {seed.stem: {"Sheet1": list(csv.reader(fh))}}
        else:
            data = YAML(typ="safe").load(seed.read_text(encoding="utf-8")) or {}
        ids = {}
        for title, sheets in data.items():
            ids[str(title)] = self.create_spreadsheet(
                str(title),
                {str(name): [list(r) for r in (rows or [])] for name, rows in (sheets or {}).items()},
            )
        return ids

    # --- HTTP ---------------------------------------------------------------------------------

    def wsgi(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        raw_path = (environ.get("RAW_URI") or environ.get("REQUEST_URI") or request.path).split("?", 1)[0]
        response = self.dispatch(request, raw_path, environ)
        if response is None:
            return []
        result: Iterable[bytes] = response(environ, start_response)
        return result

    def dispatch(self, request: Request, path: str, environ: dict[str, Any]) -> Response | None:
        if path == "/token" and request.method == "POST":
            try:
                return _json_response(self.issuer.exchange(request.form.to_dict()))
            except TokenError as exc:
                return _json_response(exc.body, 400)
        if path.startswith("/sheets/v4/"):
            path = path[len("/sheets") :]
        service = "sheets" if path.startswith("/v4/") else "drive"
        kind, handler, args = self._route(request.method, path)
        if handler is None:
            return _json_response(
                {"error": {"code": 404, "message": "Not Found", "status": "NOT_FOUND"}}, 404
            )
        user = self._authenticate(request)
        if isinstance(user, Response):
            return user
        fault = self.knobs.on_call(kind)
        if fault == "timeout":
            time.sleep(self.knobs.stall_seconds)
            fault = None
        if fault == "drop":
            sock = environ.get("werkzeug.socket")
            if isinstance(sock, socket.socket):
                sock.shutdown(socket.SHUT_RDWR)
            return None
        if fault == "429":
            return _api_error(quota_error("read" if request.method == "GET" else "write"))
        if fault in FAULTS:
            return _api_error(FAULTS[fault])
        if service == "sheets":
            budget = "read" if request.method == "GET" else "write"
            if not self.quotas.take(user, budget):
                return _api_error(quota_error(budget))
        try:
            body = self._json_body(request)
            with self.store.lock:
                response: Response = handler(request, body, user, *args)
                if request.method != "GET":
                    self.store.save()
            return response
        except api.ApiError as exc:
            return _api_error(exc)

    def _authenticate(self, request: Request) -> str | Response:
        header = request.headers.get("Authorization", "")
        if not header:
            return _api_error(api.ApiError(401, UNAUTHENTICATED, "UNAUTHENTICATED"))
        scheme, _, token = header.partition(" ")
        user = self.issuer.user_of(token.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            return _api_error(api.ApiError(401, INVALID_CREDENTIALS, "UNAUTHENTICATED"))
        return user

    @staticmethod
    def _json_body(request: Request) -> dict[str, Any]:
        if request.method in ("GET", "DELETE") or not request.content_length:
            return {}
        if request.content_length > MAX_REQUEST_BYTES:
            raise api.bad_request(f"Request payload size exceeds the limit: {MAX_REQUEST_BYTES} bytes.")
        if request.mimetype != "application/json":
            return {}
        try:
            body = json.loads(request.get_data(as_text=True) or "{}")
        except json.JSONDecodeError as exc:
            raise api.bad_request(f"Invalid JSON payload received. {exc.msg}.") from exc
        if not isinstance(body, dict):
            raise api.bad_request("Invalid JSON payload received. Expected an object.")
        return body

    def _route(self, method: str, path: str) -> tuple[str, Any, tuple[str, ...]]:
        parts = path.split("/")
        if path == "/v4/spreadsheets" and method == "POST":
            return "spreadsheets.create", self._create, ()
        if path.startswith("/v4/spreadsheets/"):
            rest = path[len("/v4/spreadsheets/") :]
            sid, slash, tail = rest.partition("/")
            if not slash:
                if sid.endswith(":batchUpdate") and method == "POST":
                    return (
                        "spreadsheets.batchUpdate",
                        self._batch_update,
                        (unquote(sid[: -len(":batchUpdate")]),),
                    )
                if method == "GET":
                    return "spreadsheets.get", self._get, (unquote(sid),)
                return "", None, ()
            sid = unquote(sid)
            verbs = {
                ("values:batchGet", "GET"): ("values.batchGet", self._batch_get),
                ("values:batchUpdate", "POST"): ("values.batchUpdate", self._batch_update_values),
                ("values:batchClear", "POST"): ("values.batchClear", self._batch_clear),
            }
            if (tail, method) in verbs:
                kind, fn = verbs[(tail, method)]
                return kind, fn, (sid,)
            if tail.startswith("values/"):
                rng = tail[len("values/") :]
                if method == "POST" and rng.endswith(":append"):
                    return "values.append", self._append, (sid, unquote(rng[: -len(":append")]))
                if method == "POST" and rng.endswith(":clear"):
                    return "values.clear", self._clear, (sid, unquote(rng[: -len(":clear")]))
                if method == "GET":
                    return "values.get", self._values_get, (sid, unquote(rng))
                if method == "PUT":
                    return "values.update", self._values_update, (sid, unquote(rng))
            return "", None, ()
        if parts[:4] == ["", "drive", "v3", "files"]:
            if len(parts) == 4:
                if method == "GET":
                    return "drive.files.list", self._drive_list, ()
                if method == "POST":
                    return "drive.files.create", self._drive_create, ()
            elif len(parts) == 5:
                fid = unquote(parts[4])
                if method == "GET":
                    return "drive.files.get", self._drive_get, (fid,)
                if method == "DELETE":
                    return "drive.files.delete", self._drive_delete, (fid,)
            elif len(parts) == 6:
                fid, verb = unquote(parts[4]), parts[5]
                if verb == "copy" and method == "POST":
                    return "drive.files.copy", self._drive_copy, (fid,)
                if verb == "export" and method == "GET":
                    return "drive.files.export", self._drive_export, (fid,)
                if verb == "comments" and method == "GET":
                    return "drive.comments.list", self._drive_comments, (fid,)
        if parts[:5] == ["", "upload", "drive", "v2", "files"] and len(parts) == 6 and method == "PUT":
            return "drive.v2.files.update", self._drive_upload, (unquote(parts[5]),)
        return "", None, ()

    # --- Sheets handlers ------------------------------------------------------------------------

    def _sheet_book(self, sid: str) -> Spreadsheet:
        book = self.store.files.get(sid)
        if book is None:
            raise api.ApiError(404, "Requested entity was not found.", "NOT_FOUND")
        if book.private:
            raise api.ApiError(403, "The caller does not have permission", "PERMISSION_DENIED")
        return book

    @staticmethod
    def _params(request: Request) -> dict[str, str | None]:
        return {k: request.args.get(k) for k in request.args}

    def _touch(self, book: Spreadsheet) -> None:
        book.modified = time.time()

    def _create(self, request: Request, body: dict[str, Any], user: str) -> Response:
        props = body.get("properties") or {}
        book = new_spreadsheet(str(props.get("title") or "Untitled spreadsheet"))
        for key in ("locale", "timeZone", "autoRecalc"):
            if key in props:
                book.properties[key] = props[key]
        if body.get("sheets"):
            book.sheets = []
            for i, item in enumerate(body["sheets"]):
                p = item.get("properties", {})
                grid = p.get("gridProperties", {})
                book.sheets.append(
                    new_sheet(
                        p.get("title") or f"Sheet{i + 1}",
                        i,
                        int(p.get("sheetId", 0 if i == 0 else 1000 + i)),
                        int(grid.get("rowCount", 1000)),
                        int(grid.get("columnCount", 26)),
                    )
                )
        self.store.files[book.id] = book
        return _json_response(api.spreadsheet_json(book, [], False))

    def _get(self, request: Request, body: dict[str, Any], user: str, sid: str) -> Response:
        book = self._sheet_book(sid)
        fields = request.args.get("fields")
        try:
            mask = parse_fields(fields) if fields else None
        except FieldMaskError as exc:
            raise api.bad_request(f"Invalid field selection {fields}") from exc
        # A mask that names sheets.data asks for grid data whatever includeGridData says; otherwise
        # (no mask, or a mask taking `sheets` whole) includeGridData decides.
        sheets_mask = mask.get("sheets") if mask is not None and "sheets" in mask else None
        if mask is not None and sheets_mask is not None:
            wants_data = "data" in sheets_mask
        elif mask is not None and "sheets" not in mask:
            wants_data = False
        else:
            wants_data = _flag(request.args.get("includeGridData"))
        full = api.spreadsheet_json(book, request.args.getlist("ranges"), wants_data)
        return _json_response(apply_fields(full, mask) if mask is not None else full)

    def _batch_update(self, request: Request, body: dict[str, Any], user: str, sid: str) -> Response:
        book = self._sheet_book(sid)
        requests_ = body.get("requests")
        if not isinstance(requests_, list) or not requests_:
            raise api.bad_request("Must specify at least one request.")
        try:
            replies = apply_requests(book, requests_)
        except RequestError as exc:
            raise api.bad_request(str(exc)) from exc
        self._touch(book)
        out: dict[str, Any] = {"spreadsheetId": book.id, "replies": replies}
        if _flag(str(body.get("includeSpreadsheetInResponse", ""))):
            out["updatedSpreadsheet"] = api.spreadsheet_json(
                book, body.get("responseRanges") or [], _flag(str(body.get("responseIncludeGridData", "")))
            )
        return _json_response(out)

    def _values_get(self, request: Request, body: dict[str, Any], user: str, sid: str, rng: str) -> Response:
        return _json_response(api.values_get(self._sheet_book(sid), rng, self._params(request)))

    def _batch_get(self, request: Request, body: dict[str, Any], user: str, sid: str) -> Response:
        book = self._sheet_book(sid)
        params = self._params(request)
        out: dict[str, Any] = {"spreadsheetId": book.id}
        ranges = request.args.getlist("ranges")
        if ranges:
            out["valueRanges"] = [api.values_get(book, r, params) for r in ranges]
        return _json_response(out)

    def _values_update(
        self, request: Request, body: dict[str, Any], user: str, sid: str, rng: str
    ) -> Response:
        book = self._sheet_book(sid)
        snapshot = book.snapshot()
        try:
            result = api.update(
                book,
                rng,
                body,
                request.args.get("valueInputOption"),
                include_values=_flag(request.args.get("includeValuesInResponse")),
                params=self._params(request),
            )
        except api.ApiError:
            book.restore(snapshot)
            raise
        self._touch(book)
        return _json_response(api.public(result))

    def _batch_update_values(self, request: Request, body: dict[str, Any], user: str, sid: str) -> Response:
        book = self._sheet_book(sid)
        out = api.batch_update_values(book, body)
        self._touch(book)
        return _json_response(out)

    def _append(self, request: Request, body: dict[str, Any], user: str, sid: str, rng: str) -> Response:
        book = self._sheet_book(sid)
        snapshot = book.snapshot()
        try:
            out = api.append(book, rng, body, self._params(request))
        except api.ApiError:
            book.restore(snapshot)
            raise
        self._touch(book)
        return _json_response(out)

    def _clear(self, request: Request, body: dict[str, Any], user: str, sid: str, rng: str) -> Response:
        book = self._sheet_book(sid)
        cleared = api.clear(book, rng)
        self._touch(book)
        return _json_response({"spreadsheetId": book.id, "clearedRange": cleared})

    def _batch_clear(self, request: Request, body: dict[str, Any], user: str, sid: str) -> Response:
        book = self._sheet_book(sid)
        ranges = body.get("ranges") or []
        if not isinstance(ranges, list):
            raise api.invalid_value("ranges", ranges)
        for r in ranges:  # validate all before clearing any: the call is all-or-nothing
            api.resolve(book, str(r))
        cleared = [api.clear(book, str(r)) for r in ranges]
        self._touch(book)
        return _json_response({"spreadsheetId": book.id, "clearedRanges": cleared})

    # --- Drive handlers -------------------------------------------------------------------------

    def _drive_fields(self, request: Request, data: dict[str, Any], default: str) -> Response:
        fields = request.args.get("fields") or default
        try:
            mask = parse_fields(fields)
        except FieldMaskError as exc:
            raise api.bad_request(f"Invalid field selection {fields}") from exc
        return _json_response(apply_fields(data, mask))

    def _drive_list(self, request: Request, body: dict[str, Any], user: str) -> Response:
        q = request.args.get("q", "")
        try:
            found = [b for b in self.store.files.values() if not b.private and matches(b, q)]
        except DriveQueryError:
            return _json_response(drive_error(400, "Invalid Value", "invalid", "q"), 400)
        found.sort(key=lambda b: b.modified, reverse=True)
        size = max(1, min(int(request.args.get("pageSize") or 100), 1000))
        start = int(request.args.get("pageToken") or 0)
        page = found[start : start + size]
        data: dict[str, Any] = {"kind": "drive#fileList", "incompleteSearch": False}
        if start + size < len(found):
            data["nextPageToken"] = str(start + size)
        data["files"] = [b.drive_file() for b in page]
        return self._drive_fields(
            request, data, "kind,nextPageToken,incompleteSearch,files(kind,id,name,mimeType)"
        )

    def _drive_create(self, request: Request, body: dict[str, Any], user: str) -> Response:
        mime = body.get("mimeType")
        if mime != SPREADSHEET_MIME:
            return _json_response(
                drive_error(400, "The sandbox Drive only holds spreadsheets.", "badRequest"), 400
            )
        book = new_spreadsheet(str(body.get("name") or "Untitled spreadsheet"))
        self.store.files[book.id] = book
        return self._drive_fields(request, book.drive_file(), "kind,id,name,mimeType")

    def _drive_get(self, request: Request, body: dict[str, Any], user: str, fid: str) -> Response:
        book = self.store.files.get(fid)
        if book is None or book.private:
            return _json_response(drive_error(404, f"File not found: {fid}.", "notFound", "fileId"), 404)
        return self._drive_fields(request, book.drive_file(), "kind,id,name,mimeType")

    def _drive_delete(self, request: Request, body: dict[str, Any], user: str, fid: str) -> Response:
        book = self.store.files.get(fid)
        if book is None or book.private:
            return _json_response(drive_error(404, f"File not found: {fid}.", "notFound", "fileId"), 404)
        del self.store.files[fid]
        return Response(b"", status=204, content_type="text/html")

    def _drive_copy(self, request: Request, body: dict[str, Any], user: str, fid: str) -> Response:
        book = self.store.files.get(fid)
        if book is None or book.private:
            return _json_response(drive_error(404, f"File not found: {fid}.", "notFound", "fileId"), 404)
        copy_ = book.snapshot()
        copy_.id = new_spreadsheet("").id
        copy_.properties["title"] = body.get("name") or f"Copy of {book.title}"
        copy_.created = copy_.modified = time.time()
        self.store.files[copy_.id] = copy_
        return self._drive_fields(request, copy_.drive_file(), "kind,id,name,mimeType")

    def _drive_export(self, request: Request, body: dict[str, Any], user: str, fid: str) -> Response:
        book = self.store.files.get(fid)
        if book is None or book.private:
            return _json_response(drive_error(404, f"File not found: {fid}.", "notFound", "fileId"), 404)
        if request.args.get("mimeType") != "text/csv":
            return _json_response(
                drive_error(400, "The sandbox exports text/csv only.", "badRequest", "mimeType"), 400
            )
        return Response(export_csv(book), content_type="text/csv")

    def _drive_comments(self, request: Request, body: dict[str, Any], user: str, fid: str) -> Response:
        book = self.store.files.get(fid)
        if book is None or book.private:
            return _json_response(drive_error(404, f"File not found: {fid}.", "notFound", "fileId"), 404)
        # The sandbox stores no comments: the list is always empty.
        return self._drive_fields(request, {"kind": "drive#commentList", "comments": []}, "kind,comments")

    def _drive_upload(self, request: Request, body: dict[str, Any], user: str, fid: str) -> Response:
        book = self.store.files.get(fid)
        if book is None or book.private:
            return _json_response(drive_error(404, f"File not found: {fid}.", "notFound", "fileId"), 404)
        rows = list(csv.reader(io.StringIO(request.get_data(as_text=True))))
        # Converting an upload replaces the whole spreadsheet with one sheet named after the file.
        sheet = new_sheet(
            book.title,
            0,
            1 + secrets.randbelow(2_000_000_000),
            max(1000, len(rows)),
            max(26, max((len(r) for r in rows), default=0)),
        )
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                cell = from_user_entered(value)
                sheet.put(r, c, cell if isinstance(cell, Cell) else None)
        book.sheets = [sheet]
        book.named_ranges = []
        self._touch(book)
        return _json_response(v2_file(book, user))


def sandbox_session(base_url: str, ca_file: Path | None, token: str | None) -> requests.Session:
    """A requests session for gspread that sends Google API calls to `base_url` (a running sandbox).

    `trust_env` is off so REQUESTS_CA_BUNDLE (set on these machines) cannot override `ca_file`.
    """
    session = requests.Session()
    session.trust_env = False
    if ca_file is not None:
        session.verify = str(ca_file)
    if token:
        session.headers["Authorization"] = f"Bearer {token}"
    mount_endpoint_override(session, base_url)
    return session
