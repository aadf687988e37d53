"""The Sheets connector's one door to the API: auth, endpoint override, quota bucket, retries, counters.

Every call goes through `SheetsClient.call`, so the per-minute budget is spent and the retry policy
applied in exactly one place. gspread's `HTTPClient` does the HTTP (it knows the URLs and raises
`APIError` with the response); gspread's own `BackOffHTTPClient` is not used (its authors call it not
production ready, and it has no jitter).
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import ijson
import requests
from google.auth.transport.requests import AuthorizedSession, Request
from google.oauth2 import credentials as user_credentials
from google.oauth2 import service_account
from gspread.exceptions import APIError
from gspread.http_client import HTTPClient, ParamsType
from gspread.urls import SPREADSHEET_VALUES_BATCH_URL
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from connectors.sheets.settings import SheetsSettings
from connectors.sheets.transport import mount_endpoint_override
from syncd.errors import BudgetExhausted, ConfigError, ConnectionDown, TransientError
from syncd.records import telemetry

log = logging.getLogger(__name__)

SCOPES = ["https://www.googleapis.com/auth/spreadsheets"]
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})

T = TypeVar("T")


class TokenBucket:
    """`per_minute` tokens refilled continuously; `take` waits for one, up to `max_wait` seconds.

    Keeping under the quota ourselves is cheaper than provoking 429s: a 429 still counts against the
    project, and Google asks clients to slow down rather than hammer.
    """

    def __init__(self, per_minute: int, max_wait: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.max_wait = max_wait
        self.clock = clock
        self.sleep: Callable[[float], None] = time.sleep
        self._tokens = self.capacity
        self._stamp = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self.clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def remaining(self) -> float:
        with self._lock:
            self._refill()
            return self._tokens

    def take(self) -> None:
        with self._lock:
            self._refill()
            if self._tokens < 1:
                wait = (1 - self._tokens) / self.rate
                if wait > self.max_wait:
                    raise BudgetExhausted(
                        f"Sheets quota bucket empty ({self.capacity:.0f} per minute); next token in {wait:.0f} s"
                    )
                self.sleep(wait)
                self._refill()
            self._tokens -= 1


@dataclass
class ClientStats:
    """What the metrics exporter reads: calls and retries by call kind, and the bucket levels."""

    calls: Counter[str] = field(default_factory=Counter)
    retries: Counter[str] = field(default_factory=Counter)
    throttled: int = 0


def _status(error: BaseException) -> int | None:
    if isinstance(error, APIError):
        return int(error.response.status_code)
    return None


def _transient(error: BaseException) -> bool:
    if isinstance(error, APIError):
        return _status(error) in TRANSIENT_STATUSES
    return isinstance(error, requests.ConnectionError | requests.Timeout)


def _outcome(error: BaseException) -> str:
    status = _status(error)
    if status == 429:
        return "throttled"
    return "transient" if _transient(error) else "error"


def _reason(error: BaseException | None) -> str:
    """A retry reason from a closed vocabulary (metric label): "429", "5xx" or "connection"."""
    status = _status(error) if error is not None else None
    if status == 429:
        return "429"
    return "5xx" if status is not None else "connection"


def api_message(error: APIError) -> tuple[str, str]:
    """(status, message) of a Google error response, e.g. ("INVALID_ARGUMENT", "Unable to parse range: X")."""
    try:
        body = error.response.json()["error"]
        return str(body.get("status") or error.response.status_code), str(body.get("message", ""))
    except (ValueError, KeyError, TypeError):
        return str(error.response.status_code), error.response.reason or "error"


def parse_value_ranges(body: bytes) -> list[dict[str, Any]]:
    """The `valueRanges` of a values.batchGet response body."""
    return list(json.loads(body).get("valueRanges", []))


def single_value_range(body: bytes) -> tuple[str, Iterator[list[Any]]]:
    """The echoed range and the rows of a values.batchGet body for one range, the rows parsed one
    at a time as they are iterated (ijson's C parser, as fast as json.loads), so a 100,000-row
    worksheet is never held parsed whole. Numbers come back as int or float, as json.loads gives."""
    echoed = next(ijson.items(io.BytesIO(body), "valueRanges.item.range"), "")
    return str(echoed), ijson.items(io.BytesIO(body), "valueRanges.item.values.item", use_float=True)


def build_session(settings: SheetsSettings) -> requests.Session:
    """The HTTP session for the configured auth, with the endpoint override and CA bundle if set."""
    verify: str | bool = str(settings.ca_file) if settings.ca_file else True
    plain = requests.Session()
    if settings.ca_file:
        plain.trust_env = False  # REQUESTS_CA_BUNDLE would otherwise override `verify`
    plain.verify = verify
    if settings.endpoint:
        mount_endpoint_override(plain, settings.endpoint)  # token refreshes go to the endpoint too
    session: requests.Session
    try:
        if settings.service_account_file is not None:
            creds = service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
                str(settings.service_account_file), scopes=SCOPES
            )
            session = AuthorizedSession(creds, auth_request=Request(plain))  # type: ignore[no-untyped-call]
        elif settings.oauth_token_file is not None:
            creds = user_credentials.Credentials.from_authorized_user_file(  # type: ignore[no-untyped-call]
                str(settings.oauth_token_file), scopes=SCOPES
            )
            session = AuthorizedSession(creds, auth_request=Request(plain))  # type: ignore[no-untyped-call]
        else:
            assert settings.access_token is not None
            session = requests.Session()
            session.headers["Authorization"] = f"Bearer {settings.access_token.get_secret_value()}"
    except (OSError, ValueError) as exc:
        # The message names the file, never its content.
        raise ConfigError(f"cannot load the Google credentials: {type(exc).__name__}") from None
    if settings.ca_file:
        session.trust_env = False
    session.verify = verify
    if settings.endpoint:
        mount_endpoint_override(session, settings.endpoint)
    return session


class SheetsClient:
    """One spreadsheet, reached through gspread's HTTP client with our budget and retry policy."""

    def __init__(
        self, settings: SheetsSettings, session: requests.Session | None = None, name: str = "sheets"
    ) -> None:
        self.name = name
        self.settings = settings
        self.spreadsheet_id = settings.spreadsheet_id()
        self.http = HTTPClient(auth=None, session=session or build_session(settings))  # type: ignore[arg-type]
        self.http.set_timeout(settings.timeout_seconds)
        self.reads = TokenBucket(settings.read_per_minute, settings.max_quota_wait_seconds)
        self.writes = TokenBucket(settings.write_per_minute, settings.max_quota_wait_seconds)
        self.stats = ClientStats()
        self.sleep: Callable[[float], None] = time.sleep

    def call(self, kind: str, write: bool, fn: Callable[[], T]) -> T:
        """Run one API call: take a quota token, retry transient failures with jittered backoff.

        Exhausted retries on 429 raise BudgetExhausted (the pass resumes later); on 5xx or a dropped
        connection TransientError; a refusal (4xx) is raised as gspread's APIError for the caller
        to map onto a record error; 401/403 become ConnectionDown.
        """
        bucket = self.writes if write else self.reads

        sink = telemetry()

        def before_sleep(state: RetryCallState) -> None:
            self.stats.retries[kind] += 1
            failed = state.outcome.exception() if state.outcome else None
            sink.retry(self.name, kind, _reason(failed))

        def before(state: RetryCallState) -> None:
            bucket.take()
            sink.budget(self.name, "write" if write else "read", bucket.remaining(), bucket.capacity)
            self.stats.calls[kind] += 1

        def attempt() -> T:
            started = time.monotonic()
            try:
                result = fn()
            except BaseException as exc:
                sink.api_call(self.name, kind, _outcome(exc), time.monotonic() - started)
                raise
            sink.api_call(self.name, kind, "ok", time.monotonic() - started)
            return result

        retrying = Retrying(
            retry=retry_if_exception(_transient),
            wait=wait_random_exponential(
                multiplier=self.settings.backoff_seconds, max=self.settings.backoff_max_seconds
            ),
            stop=stop_after_attempt(self.settings.max_attempts),
            before=before,
            before_sleep=before_sleep,
            sleep=lambda seconds: self.sleep(seconds),
            reraise=True,
        )
        try:
            return retrying(attempt)
        except APIError as exc:
            status, message = api_message(exc)
            code = _status(exc)
            if code == 429:
                self.stats.throttled += 1
                raise BudgetExhausted(f"Sheets {kind}: {status}: {message}") from None
            if code in TRANSIENT_STATUSES:
                raise TransientError(f"Sheets {kind}: {status}: {message}", code=status) from None
            if code in (401, 403):
                raise ConnectionDown(f"Sheets {kind}: {status}: {message}") from None
            raise
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise TransientError(f"Sheets {kind}: {type(exc).__name__}", code="CONNECTION") from None

    # --- the calls the connector makes ------------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        params: ParamsType = {"fields": "sheets.properties"}
        result = self.call(
            "spreadsheets.get", False, lambda: self.http.fetch_sheet_metadata(self.spreadsheet_id, params)
        )
        return dict(result)

    def batch_get(self, ranges: list[str]) -> list[dict[str, Any]]:
        return parse_value_ranges(self.batch_get_bytes(ranges))

    def batch_get_bytes(self, ranges: list[str]) -> bytes:
        """The values.batchGet response body as it came, so a reader can tell an unchanged sheet by a
        hash of these bytes without the cost of parsing them."""
        params: ParamsType = {
            "valueRenderOption": "UNFORMATTED_VALUE",
            "dateTimeRenderOption": "FORMATTED_STRING",
            "ranges": ranges,
        }
        url = SPREADSHEET_VALUES_BATCH_URL % self.spreadsheet_id
        return self.call(
            "values.batchGet", False, lambda: self.http.request("get", url, params=params).content
        )

    def batch_update_values(self, data: list[dict[str, Any]], input_option: str) -> dict[str, Any]:
        body = {"valueInputOption": input_option, "data": data}
        result = self.call(
            "values.batchUpdate", True, lambda: self.http.values_batch_update(self.spreadsheet_id, body)
        )
        return dict(result)

    def append(self, range_: str, rows: list[list[Any]]) -> dict[str, Any]:
        params: ParamsType = {"valueInputOption": "RAW", "insertDataOption": "INSERT_ROWS"}
        body = {"majorDimension": "ROWS", "values": rows}
        result = self.call(
            "values.append", True, lambda: self.http.values_append(self.spreadsheet_id, range_, params, body)
        )
        return dict(result)

    def batch_update(self, requests_: list[dict[str, Any]]) -> dict[str, Any]:
        body = {"requests": requests_}
        result = self.call(
            "spreadsheets.batchUpdate", True, lambda: self.http.batch_update(self.spreadsheet_id, body)
        )
        return dict(result)

    def close(self) -> None:
        self.http.session.close()
