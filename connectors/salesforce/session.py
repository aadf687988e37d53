"""Logging in to Salesforce and making calls: retries, session renewal, the API budget governor.

Every call to the org goes through `OrgSession.call`, so the three policies that must hold for every
call are in one place: transient failures (503, UNABLE_TO_LOCK_ROW, resets, timeouts) are retried with
capped, jittered backoff; an expired session is renewed once and the call repeated; and the API budget
is checked before the call, so a pass stops cleanly (BudgetExhausted) instead of eating the org's daily
allowance that people and other integrations share.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import jwt
import requests
from requests.adapters import HTTPAdapter
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
)
from simple_salesforce.login import SalesforceLogin
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from connectors.salesforce.settings import SalesforceSettings
from syncd.errors import BudgetExhausted, ConfigError, ConnectionDown, TransientError
from syncd.records import telemetry

T = TypeVar("T")

# 500 (UNKNOWN_EXCEPTION) is usually a passing server fault, and repeating a call is safe
# because creates carry their match key (tests/faults found a pass failing on one such answer).
TRANSIENT_STATUS = {429, 500, 502, 503, 504}
TRANSIENT_CODES = {"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE"}


def error_code(exc: SalesforceError) -> str:
    """The `errorCode` of a refused call (simple-salesforce raises one class for many codes)."""
    content = exc.content
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return str(content[0].get("errorCode", ""))
    return ""


def error_message(exc: SalesforceError) -> str:
    content = exc.content
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return str(content[0].get("message", ""))
    return str(content)[:500]


class _DefaultTimeout(HTTPAdapter):
    """Gives every request a timeout, including the ones simple-salesforce makes without one (login)."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().send(request, *args, **kwargs)


class OrgSession:
    """One logged-in session on one org, shared by every call the connector makes."""

    def __init__(self, connection: str, settings: SalesforceSettings) -> None:
        self.connection = connection
        self.settings = settings
        self.http = requests.Session()
        self.server_time: datetime | None = None  # Salesforce's clock at its latest answer
        self.http.hooks["response"].append(self._note_server_time)
        adapter = _DefaultTimeout(settings.timeout_seconds)
        self.http.mount("https://", adapter)
        self.http.mount("http://", adapter)
        if settings.ca_file is not None:
            self.http.verify = str(settings.ca_file)
            self.http.trust_env = False  # REQUESTS_CA_BUNDLE would override `verify`
        self._sf: Salesforce | None = None
        self.used: int | None = None
        self.limit: int | None = None
        self._pass_start: int | None = None

    # --- login ----------------------------------------------------------------------------------

    @property
    def sf(self) -> Salesforce:
        if self._sf is None:
            self._sf = self._login()
        return self._sf

    def _client(self, instance_url: str, session_id: str) -> Salesforce:
        return Salesforce(
            instance_url=instance_url,
            session_id=session_id,
            session=self.http,
            version=self.settings.api_version,
        )

    def _login(self) -> Salesforce:
        s = self.settings
        try:
            if s.session_id is not None:
                assert s.instance_url is not None
                return self._client(s.instance_url, s.session_id.get_secret_value())
            if s.private_key_file is not None:
                return self._token_login(self._jwt_grant())
            if s.client_id is not None and s.client_secret is not None:
                assert s.password is not None
                secret = s.password.get_secret_value() + (
                    s.security_token.get_secret_value() if s.security_token else ""
                )
                return self._token_login(
                    {
                        "grant_type": "password",
                        "client_id": s.client_id,
                        "client_secret": s.client_secret.get_secret_value(),
                        "username": s.username or "",
                        "password": secret,
                    }
                )
            assert s.password is not None
            session_id, instance = SalesforceLogin(
                username=s.username,
                password=s.password.get_secret_value(),
                security_token=s.security_token.get_secret_value() if s.security_token else "",
                session=self.http,
                sf_version=s.api_version,
                scratch_url=s.login_url,
            )
            return self._client(f"https://{instance}", session_id)
        except SalesforceAuthenticationFailed as exc:
            if str(exc.code) in {str(status) for status in TRANSIENT_STATUS}:
                # A login answered 5xx or 429 is the server's trouble, not wrong credentials: retried
                # like any call (one such answer failed a whole pass; found by tests/faults).
                raise TransientError(
                    f"Salesforce login for {self.connection}: HTTP {exc.code}", str(exc.code)
                ) from None
            raise ConfigError(f"Salesforce login for {self.connection} refused: {exc.code}") from None
        except (requests.ConnectionError, requests.Timeout) as exc:  # retried like any call
            raise TransientError(
                f"Salesforce login for {self.connection} failed: {type(exc).__name__}", "CONNECTION"
            ) from None
        except requests.RequestException as exc:
            raise ConnectionDown(
                f"Salesforce login for {self.connection} failed: {type(exc).__name__}"
            ) from None

    def _jwt_grant(self) -> dict[str, str]:
        s = self.settings
        assert s.private_key_file is not None
        key = s.private_key_file.read_bytes()
        claims = {
            "iss": s.client_id,
            "sub": s.username,
            "aud": s.jwt_audience,
            "exp": int((datetime.now(UTC) + timedelta(minutes=3)).timestamp()),
        }
        return {
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": jwt.encode(claims, key, algorithm="RS256"),
        }

    def _token_login(self, form: dict[str, str]) -> Salesforce:
        answer = self.http.post(
            f"{self.settings.login_url}/services/oauth2/token",
            data=form,
            timeout=self.settings.timeout_seconds,
        )
        try:
            body = answer.json()
        except ValueError:
            body = {}
        if answer.status_code != 200 or "access_token" not in body:
            raise SalesforceAuthenticationFailed(
                body.get("error", answer.status_code), body.get("error_description", "")
            )
        return self._client(str(body["instance_url"]), str(body["access_token"]))

    # --- the budget -----------------------------------------------------------------------------

    def new_pass(self) -> None:
        """Start counting this pass's share of the daily limit from the next call."""
        self._pass_start = self.used

    def check_budget(self) -> None:
        if self.used is None or not self.limit:
            return
        s = self.settings
        if self.used >= s.max_org_share * self.limit:
            raise BudgetExhausted(
                f"{self.connection}: the org has used {self.used} of {self.limit} daily API requests "
                f"(stop at {s.max_org_share:.0%})"
            )
        start = self._pass_start if self._pass_start is not None else self.used
        if self.used - start >= s.max_pass_share * self.limit:
            raise BudgetExhausted(
                f"{self.connection}: this pass used {self.used - start} API requests, "
                f"{s.max_pass_share:.0%} of the daily {self.limit}"
            )

    def _note_usage(self, sf: Salesforce) -> None:
        usage = sf.api_usage.get("api-usage") if sf.api_usage else None
        if usage is None:
            return
        used, limit = int(usage.used), int(usage.total)
        if self._pass_start is None:
            self._pass_start = used - 1
        self.used, self.limit = used, limit
        telemetry().budget(self.connection, "daily_api_requests", float(limit - used), float(limit))

    # --- calls ----------------------------------------------------------------------------------

    def _note_server_time(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """Remember the Date header: read windows are placed on Salesforce's clock, never on ours."""
        with contextlib.suppress(KeyError, TypeError, ValueError):
            self.server_time = parsedate_to_datetime(response.headers["Date"])

    def call(self, operation: str, fn: Callable[[Salesforce], T]) -> T:
        """`fn(sf)` with retries for transient failures and one session renewal; errors mapped to syncd's kinds.

        SalesforceError subclasses that are neither transient nor about the session or the budget are
        re-raised for the caller, which knows whether they belong to a record or to the whole call.
        """
        s = self.settings
        retrying = Retrying(
            retry=retry_if_exception_type(TransientError),
            stop=stop_after_attempt(s.max_attempts),
            wait=wait_random_exponential(multiplier=s.backoff_seconds, max=s.backoff_max_seconds),
            reraise=True,
            before_sleep=lambda state: telemetry().retry(self.connection, operation, "transient"),
        )
        result: T = retrying(self._call_once, operation, fn)
        return result

    def _call_once(self, operation: str, fn: Callable[[Salesforce], T]) -> T:
        self.check_budget()
        started = time.monotonic()
        outcome = "error"
        try:
            try:
                result = fn(self.sf)
            except SalesforceExpiredSession:
                if self.settings.session_id is not None:
                    raise ConnectionDown(f"{self.connection}: the configured session expired") from None
                self._sf = None
                result = fn(self.sf)
            outcome = "ok"
            self._note_usage(self.sf)
            return result
        except SalesforceError as exc:
            code = error_code(exc)
            if code == "REQUEST_LIMIT_EXCEEDED" and exc.status == 403:
                outcome = "throttled"
                raise BudgetExhausted(f"{self.connection}: {code}: {error_message(exc)}") from None
            if exc.status in TRANSIENT_STATUS or code in TRANSIENT_CODES:
                outcome = "transient"
                raise TransientError(
                    f"{self.connection} {operation}: HTTP {exc.status} {code}", code or str(exc.status)
                ) from None
            raise
        except (requests.ConnectionError, requests.Timeout) as exc:
            outcome = "transient"
            raise TransientError(
                f"{self.connection} {operation}: {type(exc).__name__}", "CONNECTION"
            ) from None
        finally:
            telemetry().api_call(self.connection, operation, outcome, time.monotonic() - started)

    def rest(self, operation: str, path: str, method: str = "GET", **kwargs: Any) -> Any:
        """A REST call relative to /services/data/vXX.X/, with the configured timeout."""
        return self.call(
            operation,
            lambda sf: sf.restful(path, method=method, timeout=self.settings.timeout_seconds, **kwargs),
        )

    def close(self) -> None:
        self.http.close()
        self._sf = None
