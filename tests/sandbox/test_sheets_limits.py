"""Quotas, fault knobs, call counts and error answers of the Sheets sandbox, as a client sees them."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import requests

from syncd.sandbox.knobs import FaultPlan
from syncd.sandbox.sheets import MAX_REQUEST_BYTES, SheetsSandbox

logging.getLogger("werkzeug").setLevel(logging.WARNING)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def sheets_server() -> Iterator[SheetsSandbox]:
    with SheetsSandbox() as server:
        yield server


@pytest.fixture
def server(sheets_server: SheetsSandbox) -> Iterator[SheetsSandbox]:
    sheets_server.reset()
    clock = FakeClock()
    sheets_server.quotas.clock = clock
    sheets_server.quotas.read_per_minute = sheets_server.quotas.write_per_minute = 60
    yield sheets_server
    sheets_server.reset()


@pytest.fixture
def http(server: SheetsSandbox) -> requests.Session:
    return server.session()


@pytest.fixture
def key(server: SheetsSandbox) -> str:
    return server.create_spreadsheet("limits", {"S": [["a", "b"]]})


def url(server: SheetsSandbox, key: str, tail: str = "") -> str:
    return f"https://sheets.googleapis.com/v4/spreadsheets/{key}{tail}"


def test_read_quota_answers_429_resource_exhausted_after_the_limit(
    server: SheetsSandbox, http: requests.Session, key: str
) -> None:
    server.quotas.read_per_minute = 3
    statuses = [http.get(url(server, key, "/values/S")).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    error = http.get(url(server, key, "/values/S")).json()["error"]
    assert error["status"] == "RESOURCE_EXHAUSTED"
    assert error["message"].startswith(
        "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute per user'"
    )


def test_quota_is_back_after_a_minute(server: SheetsSandbox, http: requests.Session, key: str) -> None:
    server.quotas.read_per_minute = 1
    assert http.get(url(server, key)).status_code == 200
    assert http.get(url(server, key)).status_code == 429
    server.quotas.clock.now += 60.5  # type: ignore[attr-defined]
    assert http.get(url(server, key)).status_code == 200


def test_writes_have_their_own_quota(server: SheetsSandbox, http: requests.Session, key: str) -> None:
    server.quotas.read_per_minute = 1
    server.quotas.write_per_minute = 1
    assert http.get(url(server, key)).status_code == 200
    body = {"values": [["x"]]}
    assert (
        http.put(url(server, key, "/values/S!A2"), params={"valueInputOption": "RAW"}, json=body).status_code
        == 200
    )
    answer = http.put(url(server, key, "/values/S!A3"), params={"valueInputOption": "RAW"}, json=body)
    assert answer.status_code == 429
    assert "'Write requests per minute per user'" in answer.json()["error"]["message"]


def test_quota_is_counted_per_user(server: SheetsSandbox, key: str) -> None:
    server.quotas.read_per_minute = 1
    assert server.quotas.take("someone-else", "read")
    assert server.session().get(url(server, key)).status_code == 200


def test_fault_on_a_call_number_answers_503_once(
    server: SheetsSandbox, http: requests.Session, key: str
) -> None:
    server.knobs.set_faults(FaultPlan(on_calls={2}, kinds=["503"]))
    statuses = [http.get(url(server, key)).status_code for _ in range(3)]
    assert statuses == [200, 503, 200]


def test_fault_kinds_answer_as_google_does(server: SheetsSandbox, http: requests.Session, key: str) -> None:
    server.knobs.set_faults(FaultPlan(on_calls={1}, kinds=["500"]))
    assert http.get(url(server, key)).json()["error"]["status"] == "INTERNAL"
    server.knobs.set_faults(FaultPlan(on_calls={1}, kinds=["429"]))
    assert http.get(url(server, key)).json()["error"]["status"] == "RESOURCE_EXHAUSTED"


def test_a_dropped_call_closes_the_connection(
    server: SheetsSandbox, http: requests.Session, key: str
) -> None:
    server.knobs.set_faults(FaultPlan(on_calls={1}, kinds=["drop"]))
    with pytest.raises(requests.ConnectionError):
        http.get(url(server, key), timeout=10)
    assert http.get(url(server, key), timeout=10).status_code == 200


def test_faults_can_target_one_call_kind(server: SheetsSandbox, http: requests.Session, key: str) -> None:
    server.knobs.set_faults(FaultPlan(rate=1.0, kinds=["503"], only={"values.batchUpdate"}))
    assert http.get(url(server, key, "/values/S")).status_code == 200
    answer = http.post(url(server, key, "/values:batchUpdate"), json={"valueInputOption": "RAW", "data": []})
    assert answer.status_code == 503


def test_calls_are_counted_by_kind(server: SheetsSandbox, http: requests.Session, key: str) -> None:
    http.get(url(server, key))
    http.get(url(server, key, "/values:batchGet"), params={"ranges": ["S!A1", "S!B1"]})
    http.post(
        url(server, key, "/values/S:append"), params={"valueInputOption": "RAW"}, json={"values": [["c"]]}
    )
    assert server.knobs.calls == {"spreadsheets.get": 1, "values.batchGet": 1, "values.append": 1}


def test_unknown_spreadsheet_is_not_found(server: SheetsSandbox, http: requests.Session) -> None:
    answer = http.get(url(server, "nope"))
    assert answer.status_code == 404
    assert answer.json() == {
        "error": {"code": 404, "message": "Requested entity was not found.", "status": "NOT_FOUND"}
    }


def test_someone_elses_spreadsheet_is_permission_denied(
    server: SheetsSandbox, http: requests.Session, key: str
) -> None:
    server.deny_access(key)
    answer = http.get(url(server, key))
    assert answer.status_code == 403
    assert answer.json()["error"]["status"] == "PERMISSION_DENIED"


def test_a_call_without_a_token_is_unauthenticated(server: SheetsSandbox, key: str) -> None:
    http = server.session()
    del http.headers["Authorization"]
    answer = http.get(url(server, key))
    assert answer.status_code == 401
    assert answer.json()["error"]["status"] == "UNAUTHENTICATED"


def test_a_call_with_an_unknown_token_is_unauthenticated(server: SheetsSandbox, key: str) -> None:
    http = server.session()
    http.headers["Authorization"] = "Bearer made-up"
    assert http.get(url(server, key)).status_code == 401


def test_values_that_are_not_a_list_of_lists_are_refused(
    server: SheetsSandbox, http: requests.Session, key: str
) -> None:
    answer = http.put(
        url(server, key, "/values/S!A1"), params={"valueInputOption": "RAW"}, json={"values": "X"}
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == (
        "Invalid value at 'data.values' (type.googleapis.com/google.protobuf.ListValue), \"X\""
    )


def test_a_write_without_value_input_option_is_refused(
    server: SheetsSandbox, http: requests.Session, key: str
) -> None:
    answer = http.put(url(server, key, "/values/S!A1"), json={"values": [["x"]]})
    assert answer.status_code == 400
    assert server.values(key, "S") == [["a", "b"]]


def test_unknown_batch_update_request_is_refused_and_nothing_applies(
    server: SheetsSandbox, http: requests.Session, key: str
) -> None:
    requests_ = [{"addSheet": {"properties": {"title": "new"}}}, {"frobnicate": {}}]
    answer = http.post(url(server, key, ":batchUpdate"), json={"requests": requests_})
    assert answer.status_code == 400
    assert 'Unknown name "frobnicate"' in answer.json()["error"]["message"]
    titles = [s["properties"]["title"] for s in http.get(url(server, key)).json()["sheets"]]
    assert titles == ["S"]


def test_writing_more_rows_than_a_closed_range_holds_is_refused(
    server: SheetsSandbox, http: requests.Session, key: str
) -> None:
    answer = http.put(
        url(server, key, "/values/S!A1:B1"),
        params={"valueInputOption": "RAW"},
        json={"values": [["1"], ["2"]]},
    )
    assert answer.status_code == 400
    assert (
        answer.json()["error"]["message"]
        == "Requested writing within range [S!A1:B1], but tried writing to row [2]"
    )


def limit_sized_append(size: int) -> str:
    """A values.append body of exactly `size` bytes: rows of 40,000-character cells, the last padded."""
    full = ["x" * 40_000]
    count = (size - len(json.dumps({"values": [["x"]]}))) // len(json.dumps([full, ["x"]]))
    body = json.dumps({"values": [*([full] * count), ["x"]]})
    body = json.dumps({"values": [*([full] * count), ["x" * (1 + size - len(body))]]})
    assert len(body) == size
    return body


def post_append(server: SheetsSandbox, http: requests.Session, key: str, body: bytes) -> requests.Response:
    return http.post(
        url(server, key, "/values/S!A1:append"),
        params={"valueInputOption": "RAW"},
        data=body,
        headers={"Content-Type": "application/json"},
    )


def test_a_request_body_over_10_mib_is_refused_as_google_does(
    server: SheetsSandbox, http: requests.Session, key: str
) -> None:
    body = limit_sized_append(MAX_REQUEST_BYTES + 1)
    answer = post_append(server, http, key, body)
    assert answer.status_code == 400
    assert answer.json()["error"] == {
        "code": 400,
        "message": "Request payload size exceeds the limit: 10485760 bytes.",
        "status": "INVALID_ARGUMENT",
    }
    assert server.values(key, "S") == [["a", "b"]]


def test_a_request_body_of_exactly_10_mib_is_accepted(
    server: SheetsSandbox, http: requests.Session, key: str
) -> None:
    body = limit_sized_append(MAX_REQUEST_BYTES)
    answer = post_append(server, http, key, body)
    assert answer.status_code == 200
    assert len(server.values(key, "S")) == 1 + len(json.loads(body)["values"])
