"""The Sheets connector against the Sheets sandbox over HTTPS, with service-account auth as in production.

The sandbox's back door plays the person editing the sheet; the connector is only reached through
its protocol methods.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.sheets import SheetsConnector, SheetsSettings
from connectors.sheets.connector import row_hash
from connectors.sheets.settings import SYNCD_ID
from connectors.sheets.table import SheetTable
from syncd.errors import BudgetExhausted, ConfigError
from syncd.records import (
    Batch,
    Op,
    Record,
    Telemetry,
    WriteOp,
    content_hash,
    preferred_write_batch,
    set_telemetry,
    telemetry,
)
from syncd.sandbox.knobs import FaultPlan
from syncd.sandbox.sheets import SheetsSandbox

logging.getLogger("werkzeug").setLevel(logging.WARNING)

ROSTER = [["Email", "Name", "City"], ["ann@x.org", "Ann", "Oslo"], ["bob@x.org", "Bob", "Rome"]]
INJECTIONS = ['=HYPERLINK("https://evil.example","click")', "+cmd|' /C calc'!A0", "@SUM(1)", "-2+3", " =1+1"]


@pytest.fixture(scope="module")
def server() -> Iterator[SheetsSandbox]:
    with SheetsSandbox() as sandbox:
        sandbox.quotas.read_per_minute = sandbox.quotas.write_per_minute = None
        yield sandbox


@pytest.fixture
def sheets(server: SheetsSandbox) -> Iterator[SheetsSandbox]:
    server.knobs.clear_faults()
    server.knobs.reset_counts()
    yield server
    server.knobs.clear_faults()


def connect(server: SheetsSandbox, key: str, **extra: Any) -> SheetsConnector:
    info = server.info()
    settings = SheetsSettings(
        spreadsheet=key,
        service_account_file=Path(info["service_account_file"]),
        endpoint=info["base_url"],
        ca_file=Path(info["ca_file"]),
        backoff_seconds=0.001,
        backoff_max_seconds=0.01,
        **extra,
    )
    connector = SheetsConnector("roster", settings, Path("."))
    connector.client.sleep = lambda seconds: None
    return connector


def read_all(connector: SheetsConnector, stream: str, cursor: Any = None) -> tuple[list[Record], Batch]:
    batches = list(connector.read(stream, cursor))
    return [r for b in batches for r in b.records], batches[-1]


def test_oauth_user_credentials_work_too(sheets: SheetsSandbox) -> None:
    key = sheets.create_spreadsheet("s", {"Clients": ROSTER})
    info = sheets.info()
    settings = SheetsSettings(
        spreadsheet=f"https://docs.google.com/spreadsheets/d/{key}/edit#gid=0",
        oauth_token_file=Path(info["authorized_user_file"]),
        endpoint=info["base_url"],
        ca_file=Path(info["ca_file"]),
    )
    records, _ = read_all(SheetsConnector("roster", settings, Path(".")), "Clients")
    assert [r.key for r in records] == ["ann@x.org", "bob@x.org"]


def test_settings_need_exactly_one_way_to_authenticate() -> None:
    with pytest.raises(ValueError, match="exactly one of"):
        SheetsSettings(spreadsheet="1" * 44)
    with pytest.raises(ValueError, match="only for a sandbox"):
        SheetsSettings(spreadsheet="1" * 44, access_token="t")


def test_streams_list_worksheets_with_their_headers(sheets: SheetsSandbox) -> None:
    key = sheets.create_spreadsheet("s", {"Clients": ROSTER, "Orders": [["No", "Qty"]]})
    infos = {i.name: i for i in connect(sheets, key).streams()}
    assert infos["Clients"].key_field == "Email"
    assert infos["Clients"].field_names() == ["Email", "Name", "City"]
    assert infos["Orders"].field_names() == ["No", "Qty"]
    assert infos["Clients"].capabilities == {"find", "add-columns"}


def test_a_field_without_a_column_gets_one_at_the_right_end(sheets: SheetsSandbox) -> None:
    key = sheets.create_spreadsheet("s", {"Clients": [["Email", "Name"], ["ann@x.org", "Ann"]]})
    session = sheets.session()
    resize = {"sheetId": 0, "gridProperties": {"columnCount": 2}}
    session.post(
        f"https://sheets.googleapis.com/v4/spreadsheets/{key}:batchUpdate",
        json={
            "requests": [
                {"updateSheetProperties": {"properties": resize, "fields": "gridProperties.columnCount"}}
            ]
        },
    )
    connector = connect(sheets, key)
    assert connector.write("Clients", [WriteOp(Op.UPDATE, {"Phone": "555"}, key="ann@x.org")])[0].ok
    assert sheets.values(key, "Clients") == [["Email", "Name", "Phone"], ["ann@x.org", "Ann", "555"]]


def test_first_read_returns_every_row_and_a_second_nothing(sheets: SheetsSandbox) -> None:
    key = sheets.create_spreadsheet("s", {"Clients": ROSTER})
    connector = connect(sheets, key)
    records, last = read_all(connector, "Clients")
    assert [(r.key, dict(r.fields)) for r in records] == [
        ("ann@x.org", {"Email": "ann@x.org", "Name": "Ann", "City": "Oslo"}),
        ("bob@x.org", {"Email": "bob@x.org", "Name": "Bob", "City": "Rome"}),
    ]
    assert read_all(connector, "Clients", last.cursor)[0] == []


def test_a_read_is_one_values_call_per_worksheet(sheets: SheetsSandbox) -> None:
    key = sheets.create_spreadsheet("s", {"Clients": ROSTER})
    sheets.knobs.reset_counts()
    read_all(connect(sheets, key), "Clients")
    assert sheets.knobs.calls == {"values.batchGet": 1}


def test_only_changed_rows_come_out_and_deleted_rows_are_reported(sheets: SheetsSandbox) -> None:
    key = sheets.create_spreadsheet("s", {"Clients": ROSTER})
    connector = connect(sheets, key)
    _, last = read_all(connector, "Clients")
    sheets.set_values(key, "Clients", (1, 2), [["Bergen"]])
    sheets.set_values(key, "Clients", (2, 0), [["", "", ""]])
    records, _ = read_all(connector, "Clients", last.cursor)
    assert [(r.key, r.deleted, r.fields.get("City")) for r in records] == [
        ("ann@x.org", False, "Bergen"),
        ("bob@x.org", True, None),
    ]


def test_a_row_with_a_blank_key_is_reported_not_skipped(sheets: SheetsSandbox) -> None:
    key = sheets.create_spreadsheet("s", {"Clients": [*ROSTER, ["", "Nobody", "Paris"]]})
    records, last = read_all(connect(sheets, key), "Clients")
    assert len(records) == 2
    assert [(p.category, p.place) for p in last.problems] == [("bad-input", "Clients!A4")]


def test_duplicate_headers_are_an_error_naming_both_cells(sheets: SheetsSandbox) -> None:
    key = sheets.create_spreadsheet("s", {"Clients": [["Email", "Name", "Email"], ["a", "b", "c"]]})
    with pytest.raises(ConfigError, match=r"Clients!A1 and Clients!C1 are both headed 'Email'"):
        read_all(connect(sheets, key), "Clients")


def test_a_blank_header_over_data_is_an_error_naming_the_cells(sheets: SheetsSandbox) -> None:
    key = sheets.create_spreadsheet("s", {"Clients": [["Email", "", "City"], ["a", "b", "c"]]})
    with pytest.raises(ConfigError, match=r"Clients!B1 has no header but B2 holds data"):
        read_all(connect(sheets, key), "Clients")


def test_a_column_inserted_between_passes_changes_nothing_and_writes_still_land(
    sheets: SheetsSandbox,
) -> None:
    key = sheets.create_spreadsheet("s", {"Clients": ROSTER})
    connector = connect(sheets, key)
    _, last = read_all(connector, "Clients")
    session = sheets.session()
    insert = {
        "insertDimension": {"range": {"sheetId": 0, "dimension": "COLUMNS", "startIndex": 1, "endIndex": 2}}
    }
    session.post(
        f"https://sheets.googleapis.com/v4/spreadsheets/{key}:batchUpdate", json={"requests": [insert]}
    )
    sheets.set_values(key, "Clients", (0, 1), [["Phone"]])
    assert read_all(connector, "Clients", last.cursor)[0] == []
    assert connector.write("Clients", [WriteOp(Op.UPDATE, {"City": "Turin"}, key="bob@x.org")])[0].ok
    assert sheets.values(key, "Clients")[2] == ["bob@x.org", "", "Bob", "Turin"]


def test_a_row_edited_inside_the_settle_delay_waits(sheets: SheetsSandbox) -> None:
    key = sheets.create_spreadsheet("s", {"Clients": ROSTER})
    connector = connect(sheets, key, settle_seconds=30)
    now = [1000.0]
    connector.clock = lambda: now[0]
    _, last = read_all(connector, "Clients")  # first sight: everything pending
    now[0] += 31
    records, last = read_all(connector, "Clients", last.cursor)
    assert len(records) == 2
    sheets.set_values(key, "Clients", (1, 1), [["Ann Marie"]])
    now[0] += 5
    records, last = read_all(connector, "Clients", last.cursor)
    assert records == []
    now[0] += 31
    records, _ = read_all(connector, "Clients", last.cursor)
    assert [(r.key, r.fields["Name"]) for r in records] == [("ann@x.org", "Ann Marie")]


def test_three_neighbouring_rows_changed_is_one_write_call(sheets: SheetsSandbox) -> None:
    key = sheets.create_spreadsheet("s", {"Clients": [*ROSTER, ["cy@x.org", "Cy", "Nice"]]})
    connector = connect(sheets, key)
    sheets.knobs.reset_counts()
    ops = [
        WriteOp(Op.UPDATE, {"City": "A"}, key="ann@x.org"),
        WriteOp(Op.UPDATE, {"Name": "B"}, key="bob@x.org"),
        WriteOp(Op.UPDATE, {"City": "C"}, key="cy@x.org"),
    ]
    assert all(r.ok for r in connector.write("Clients", ops))
    assert sheets.knobs.calls == {"values.batchGet": 1, "values.batchUpdate": 1}
    assert sheets.values(key, "Clients")[1:] == [
        ["ann@x.org", "Ann", "A"],
        ["bob@x.org", "B", "Rome"],
        ["cy@x.org", "Cy", "C"],
    ]


def test_new_rows_are_one_append_and_a_repeat_creates_no_duplicate(sheets: SheetsSandbox) -> None:
    key = sheets.create_spreadsheet("s", {"Clients": ROSTER})
    connector = connect(sheets, key)
    ops = [
        WriteOp(Op.CREATE, {"Email": "cy@x.org", "Name": "Cy"}, match=("Email", "cy@x.org")),
        WriteOp(Op.CREATE, {"Email": "di@x.org", "Name": "Di"}, match=("Email", "di@x.org")),
    ]
    sheets.knobs.reset_counts()
    first = connector.write("Clients", ops)
    assert [(r.ok, r.key, r.created) for r in first] == [(True, "cy@x.org", True), (True, "di@x.org", True)]
    assert sheets.knobs.calls["values.append"] == 1
    sheets.knobs.reset_counts()
    connector.write("Clients", ops)
    assert sheets.knobs.calls == {"values.batchGet": 1}
    assert [row[0] for row in sheets.values(key, "Clients")] == [
        "Email",
        "ann@x.org",
        "bob@x.org",
        "cy@x.org",
        "di@x.org",
    ]


def test_the_first_write_to_an_empty_worksheet_lays_down_the_header(sheets: SheetsSandbox) -> None:
    key = sheets.create_spreadsheet("s", {"Clients": []})
    connector = connect(sheets, key)
    op = WriteOp(Op.CREATE, {"Email": "ann@x.org", "Name": "Ann"}, match=("Email", "ann@x.org"))
    assert connector.write("Clients", [op])[0].ok
    assert sheets.values(key, "Clients") == [["Email", "Name"], ["ann@x.org", "Ann"]]


def test_formula_payloads_never_become_formulas(sheets: SheetsSandbox) -> None:
    key = sheets.create_spreadsheet("s", {"Clients": ROSTER})
    connector = connect(sheets, key)
    ops = [
        WriteOp(Op.CREATE, {"Email": f"p{i}@x.org", "Name": text}, match=("Email", f"p{i}@x.org"))
        for i, text in enumerate(INJECTIONS)
    ]
    assert all(r.ok for r in connector.write("Clients", ops))
    stored = sheets.values(key, "Clients", "FORMULA")[3:]
    assert all(str(row[1]).startswith("'") for row in stored), stored
    records, _ = read_all(connector, "Clients")
    assert [r.fields["Name"] for r in records[2:]] == INJECTIONS


def test_a_declared_formula_column_is_written_as_a_formula(sheets: SheetsSandbox) -> None:
    key = sheets.create_spreadsheet("s", {"Clients": [["Email", "Total"], ["ann@x.org", ""]]})
    connector = connect(sheets, key, formulas={"Clients": ["Total"]})
    assert connector.write("Clients", [WriteOp(Op.UPDATE, {"Total": "=2*21"}, key="ann@x.org")])[0].ok
    assert sheets.values(key, "Clients", "FORMULA")[1] == ["ann@x.org", "=2*21"]
    assert sheets.values(key, "Clients")[1] == ["ann@x.org", "42"]


def test_date_columns_stay_dates_in_updated_and_new_rows(sheets: SheetsSandbox) -> None:
    key = sheets.create_spreadsheet("s", {"Orders": [["No", "Due", "Total"], ["1", "2024-02-29", ""]]})
    connector = connect(sheets, key, dates={"Orders": ["Due"]}, formulas={"Orders": ["Total"]})
    results = connector.write(
        "Orders",
        [
            WriteOp(Op.UPDATE, {"Due": "2024-03-01"}, key="1"),
            WriteOp(Op.CREATE, {"No": "2", "Due": "2024-12-24", "Total": "=1+2"}, match=("No", "2")),
        ],
    )
    assert all(r.ok for r in results)
    assert sheets.values(key, "Orders", "UNFORMATTED_VALUE")[1:] == [[1, 45352], ["2", 45650, 3]]
    records, _ = read_all(connector, "Orders")
    assert [r.fields["Due"] for r in records] == ["2024-03-01", "2024-12-24"]


def test_untouched_cells_keep_their_content(sheets: SheetsSandbox) -> None:
    key = sheets.create_spreadsheet(
        "s", {"Clients": [["Email", "Name", "Notes", "City"], ["ann@x.org", "Ann", "VIP", "Oslo"]]}
    )
    connector = connect(sheets, key)
    assert connector.write(
        "Clients", [WriteOp(Op.UPDATE, {"Name": "Anna", "City": "Bergen"}, key="ann@x.org")]
    )[0].ok
    assert sheets.values(key, "Clients")[1] == ["ann@x.org", "Anna", "VIP", "Bergen"]


def test_a_delete_clears_the_row_without_shifting_the_others(sheets: SheetsSandbox) -> None:
    key = sheets.create_spreadsheet("s", {"Clients": ROSTER})
    connector = connect(sheets, key)
    assert connector.write("Clients", [WriteOp(Op.DELETE, {}, key="ann@x.org")])[0].ok
    assert sheets.values(key, "Clients") == [ROSTER[0], [], ROSTER[2]]


def test_one_bad_record_spares_its_batch(sheets: SheetsSandbox) -> None:
    key = sheets.create_spreadsheet("s", {"Clients": ROSTER})
    connector = connect(sheets, key)
    results = connector.write(
        "Clients",
        [
            WriteOp(Op.UPDATE, {"City": "x" * 50_001}, key="ann@x.org"),
            WriteOp(Op.UPDATE, {"City": "Milan"}, key="bob@x.org"),
            WriteOp(Op.UPDATE, {"City": "Nowhere"}, key="nobody@x.org"),
        ],
    )
    assert [(r.ok, r.error.code if r.error else None) for r in results] == [
        (False, "CELL_TOO_LONG"),
        (True, None),
        (False, "NOT_FOUND"),
    ]
    assert sheets.values(key, "Clients")[2] == ["bob@x.org", "Bob", "Milan"]


def test_numbers_dates_and_booleans_round_trip(sheets: SheetsSandbox) -> None:
    key = sheets.create_spreadsheet(
        "s",
        {"Stock": [["Sku", "Count", "Price", "Since", "Active"], ["X", "3", "1.5", "2024-02-29", "TRUE"]]},
    )
    connector = connect(sheets, key)
    records, _ = read_all(connector, "Stock")
    assert dict(records[0].fields) == {
        "Sku": "X",
        "Count": 3,
        "Price": 1.5,
        "Since": "2024-02-29",
        "Active": True,
    }
    assert connector.write("Stock", [WriteOp(Op.UPDATE, dict(records[0].fields), key="X")])[0].ok
    assert sheets.values(key, "Stock", "UNFORMATTED_VALUE")[1][:3] == ["X", 3, 1.5]


def test_find_looks_up_many_values_in_one_read(sheets: SheetsSandbox) -> None:
    key = sheets.create_spreadsheet("s", {"Clients": ROSTER})
    connector = connect(sheets, key)
    sheets.knobs.reset_counts()
    assert connector.find("Clients", "Name", ["Bob", "Zed"]) == {"Bob": "bob@x.org"}
    assert sheets.knobs.calls == {"values.batchGet": 1}


def test_a_sheet_without_a_natural_key_gets_hidden_syncd_ids(sheets: SheetsSandbox) -> None:
    key = sheets.create_spreadsheet("s", {"Notes": [["Text"], ["first"], ["second"]]})
    connector = connect(sheets, key, keys={"Notes": SYNCD_ID})
    records, _ = read_all(connector, "Notes")
    ids = [r.key for r in records]
    assert len(set(ids)) == 2 and all(ids)
    assert [row[1] for row in sheets.values(key, "Notes")] == [SYNCD_ID, *ids]
    again, _ = read_all(connector, "Notes")
    assert [r.key for r in again] == ids


def test_a_429_storm_is_survived_with_every_row_written(sheets: SheetsSandbox) -> None:
    key = sheets.create_spreadsheet("s", {"Clients": ROSTER})
    connector = connect(sheets, key, max_attempts=30)
    sheets.knobs.set_faults(FaultPlan(rate=0.6, kinds=["429"], seed=7))
    ops = [
        WriteOp(Op.CREATE, {"Email": f"n{i}@x.org", "Name": f"N{i}"}, match=("Email", f"n{i}@x.org"))
        for i in range(20)
    ]
    ops += [WriteOp(Op.UPDATE, {"City": "Storm"}, key="ann@x.org")]
    assert all(r.ok for r in connector.write("Clients", ops))
    sheets.knobs.clear_faults()
    values = sheets.values(key, "Clients")
    assert len(values) == 23 and values[1][2] == "Storm"
    assert sum(connector.stats()["retries"].values()) > 0


def test_an_empty_quota_bucket_stops_the_pass_cleanly(sheets: SheetsSandbox) -> None:
    key = sheets.create_spreadsheet("s", {"Clients": ROSTER})
    connector = connect(sheets, key, read_per_minute=1, max_quota_wait_seconds=0)
    read_all(connector, "Clients")
    with pytest.raises(BudgetExhausted):
        read_all(connector, "Clients")


def test_close_twice_is_safe(sheets: SheetsSandbox) -> None:
    connector = connect(sheets, sheets.create_spreadsheet("s", {"Clients": ROSTER}))
    connector.close()
    connector.close()


class RecordingTelemetry(Telemetry):
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def api_call(self, connection: str, operation: str, outcome: str, seconds: float = 0.0) -> None:
        self.events.append(("call", operation, outcome))

    def retry(self, connection: str, operation: str, reason: str) -> None:
        self.events.append(("retry", operation, reason))

    def budget(self, connection: str, budget: str, remaining: float, limit: float | None = None) -> None:
        self.events.append(("budget", budget, f"{limit:.0f}"))


def test_calls_retries_and_budget_are_reported_as_telemetry(sheets: SheetsSandbox) -> None:
    key = sheets.create_spreadsheet("s", {"Clients": ROSTER})
    connector = connect(sheets, key)
    recorder, previous = RecordingTelemetry(), telemetry()
    set_telemetry(recorder)
    try:
        sheets.knobs.set_faults(FaultPlan(on_calls={1}, kinds=["503"]))
        read_all(connector, "Clients")
    finally:
        set_telemetry(previous)
    assert recorder.events == [
        ("budget", "read", "60"),
        ("call", "values.batchGet", "transient"),
        ("retry", "values.batchGet", "5xx"),
        ("budget", "read", "60"),
        ("call", "values.batchGet", "ok"),
    ]


# --- API economy: calls per write, payload size, reuse of find's read, idle reads -------------------


def numbered_roster(count: int) -> list[list[str]]:
    return [ROSTER[0], *([f"r{i}@x.org", f"R{i}", "Oslo"] for i in range(count))]


def request_bodies(connector: SheetsConnector) -> list[int]:
    """Sizes in bytes of the bodies of the write requests the connector sends from now on."""
    sizes: list[int] = []

    def record(response: Any, *args: Any, **kwargs: Any) -> None:
        if response.request.method != "GET":
            sizes.append(len(response.request.body or b""))

    connector.client.http.session.hooks["response"].append(record)
    return sizes


def test_the_engine_is_asked_for_ten_thousand_ops_per_write() -> None:
    assert preferred_write_batch(SheetsConnector) == 10_000


def test_requests_are_sized_by_the_max_request_bytes_setting(sheets: SheetsSandbox) -> None:
    key = sheets.create_spreadsheet("s", {"Clients": ROSTER})
    assert connect(sheets, key).max_payload_bytes == 9_000_000
    assert connect(sheets, key, max_request_bytes=2_000_000).max_payload_bytes == 2_000_000


def test_new_rows_of_several_megabytes_and_past_ten_thousand_go_out_in_one_append(
    sheets: SheetsSandbox,
) -> None:
    key = sheets.create_spreadsheet("s", {"Clients": [ROSTER[0]]})
    connector = connect(sheets, key)
    sizes = request_bodies(connector)
    filler = "x" * 250
    creates = [
        WriteOp(Op.CREATE, {"Email": f"n{i}@x.org", "Name": filler}, match=("Email", f"n{i}@x.org"))
        for i in range(12_000)
    ]
    sheets.knobs.reset_counts()
    results = connector.write("Clients", creates)
    assert all(r.ok for r in results)
    assert sheets.knobs.calls == {"values.batchGet": 1, "values.append": 1}
    assert sizes[0] > 3_000_000  # past the old cuts: 2 MB and 10,000 rows a request
    values = sheets.values(key, "Clients")
    assert len(values) == 12_001 and values[-1] == ["n11999@x.org", filler]


def test_updates_spread_over_the_sheet_and_new_rows_are_one_read_and_two_writes(
    sheets: SheetsSandbox,
) -> None:
    key = sheets.create_spreadsheet("s", {"Clients": numbered_roster(60)})
    connector = connect(sheets, key)
    updates = [WriteOp(Op.UPDATE, {"City": f"C{i}"}, key=f"r{i}@x.org") for i in range(0, 60, 3)]
    creates = [
        WriteOp(Op.CREATE, {"Email": f"n{i}@x.org", "Name": f"N{i}"}, match=("Email", f"n{i}@x.org"))
        for i in range(25)
    ]
    sheets.knobs.reset_counts()
    results = connector.write("Clients", [*updates, *creates])
    assert all(r.ok for r in results)
    assert sheets.knobs.calls == {"values.batchGet": 1, "values.batchUpdate": 1, "values.append": 1}
    values = sheets.values(key, "Clients")
    assert [values[1 + i][2] for i in range(0, 60, 3)] == [f"C{i}" for i in range(0, 60, 3)]
    assert [row[0] for row in values[61:]] == [f"n{i}@x.org" for i in range(25)]


def test_a_write_past_max_request_bytes_is_cut_into_requests_under_it(sheets: SheetsSandbox) -> None:
    key = sheets.create_spreadsheet("s", {"Clients": numbered_roster(40)})
    connector = connect(sheets, key, max_request_bytes=100_000)
    sizes = request_bodies(connector)
    long = "y" * 5_000  # 40 rows of it: about 200 KB of updates and as much of new rows
    updates = [
        WriteOp(Op.UPDATE, {"Name": f"Renamed {i}", "City": long}, key=f"r{i}@x.org") for i in range(40)
    ]
    creates = [
        WriteOp(Op.CREATE, {"Email": f"n{i}@x.org", "Name": long}, match=("Email", f"n{i}@x.org"))
        for i in range(40)
    ]
    sheets.knobs.reset_counts()
    results = connector.write("Clients", [*updates, *creates])
    assert [(r.ok, r.key, r.created) for r in results] == [
        *((True, f"r{i}@x.org", False) for i in range(40)),
        *((True, f"n{i}@x.org", True) for i in range(40)),
    ]
    assert sheets.knobs.calls["values.batchUpdate"] > 1 and sheets.knobs.calls["values.append"] > 1
    assert sizes and max(sizes) <= 100_000
    values = sheets.values(key, "Clients")
    assert values[1:41] == [[f"r{i}@x.org", f"Renamed {i}", long] for i in range(40)]
    assert values[41:] == [[f"n{i}@x.org", long] for i in range(40)]


def test_a_write_past_10_mib_never_reaches_google_as_one_request(sheets: SheetsSandbox) -> None:
    key = sheets.create_spreadsheet("s", {"Clients": [ROSTER[0]]})
    connector = connect(sheets, key, max_request_bytes=10_000_000)
    sizes = request_bodies(connector)
    long = "z" * 45_000  # 250 rows of it: 11.25 MB, past the 10,485,760 bytes Google refuses
    creates = [
        WriteOp(Op.CREATE, {"Email": f"n{i}@x.org", "Name": long}, match=("Email", f"n{i}@x.org"))
        for i in range(250)
    ]
    sheets.knobs.reset_counts()
    assert all(r.ok for r in connector.write("Clients", creates))
    assert sheets.knobs.calls == {"values.batchGet": 1, "values.append": 2}
    assert max(sizes) <= 10_000_000
    assert len(sheets.values(key, "Clients")) == 251


def test_a_refused_request_of_a_cut_write_fails_only_its_own_records(sheets: SheetsSandbox) -> None:
    key = sheets.create_spreadsheet("s", {"Clients": numbered_roster(10)})
    connector = connect(sheets, key, max_request_bytes=100_000)  # four rows of 24,000 characters
    connector.find("Clients", "Email", ["r0@x.org"])
    # Meanwhile someone shrinks the grid: the last row the connector saw is gone.
    resize = {"sheetId": 0, "gridProperties": {"rowCount": 10}}
    sheets.session().post(
        f"https://sheets.googleapis.com/v4/spreadsheets/{key}:batchUpdate",
        json={
            "requests": [
                {"updateSheetProperties": {"properties": resize, "fields": "gridProperties.rowCount"}}
            ]
        },
    )
    city = "P" * 24_000
    results = connector.write(
        "Clients", [WriteOp(Op.UPDATE, {"City": city}, key=f"r{i}@x.org") for i in range(10)]
    )
    assert [r.ok for r in results] == [True] * 9 + [False]
    # Three requests of four, four and two rows; only the last is refused and retried op by op.
    assert sheets.knobs.calls["values.batchUpdate"] == 3 + 2
    assert results[9].error is not None and results[9].error.code == "INVALID_ARGUMENT"
    assert [row[2] for row in sheets.values(key, "Clients")[1:]] == [city] * 9


def test_a_write_right_after_find_uses_finds_read(sheets: SheetsSandbox) -> None:
    key = sheets.create_spreadsheet("s", {"Clients": ROSTER})
    connector = connect(sheets, key)
    sheets.knobs.reset_counts()
    found = connector.find("Clients", "Email", ["bob@x.org", "cy@x.org"])
    ops = [
        WriteOp(Op.UPDATE, {"City": "Milan"}, key=found["bob@x.org"]),
        WriteOp(Op.CREATE, {"Email": "cy@x.org", "Name": "Cy"}, match=("Email", "cy@x.org")),
    ]
    assert all(r.ok for r in connector.write("Clients", ops))
    assert sheets.knobs.calls == {"values.batchGet": 1, "values.batchUpdate": 1, "values.append": 1}
    assert sheets.values(key, "Clients")[2:] == [["bob@x.org", "Bob", "Milan"], ["cy@x.org", "Cy"]]


def test_finds_read_serves_one_write_only(sheets: SheetsSandbox) -> None:
    key = sheets.create_spreadsheet("s", {"Clients": ROSTER})
    connector = connect(sheets, key)
    connector.find("Clients", "Email", ["ann@x.org"])
    connector.write("Clients", [WriteOp(Op.UPDATE, {"City": "Bergen"}, key="ann@x.org")])
    sheets.knobs.reset_counts()
    connector.write("Clients", [WriteOp(Op.UPDATE, {"City": "Milan"}, key="bob@x.org")])
    assert sheets.knobs.calls["values.batchGet"] == 1


def test_a_write_long_after_find_reads_the_sheet_again(sheets: SheetsSandbox) -> None:
    key = sheets.create_spreadsheet("s", {"Clients": ROSTER})
    connector = connect(sheets, key)
    now = [100.0]
    connector.monotonic = lambda: now[0]
    connector.find("Clients", "Email", ["ann@x.org"])
    sheets.set_values(key, "Clients", (3, 0), [["cy@x.org", "Cy", "Nice"]])  # added after find read
    now[0] += connector.table_reuse_seconds + 1
    sheets.knobs.reset_counts()
    op = WriteOp(Op.CREATE, {"Email": "cy@x.org", "City": "Lyon"}, match=("Email", "cy@x.org"))
    assert connector.write("Clients", [op])[0].created is False
    assert sheets.knobs.calls == {"values.batchGet": 1, "values.batchUpdate": 1}
    assert sheets.values(key, "Clients")[3:] == [["cy@x.org", "Cy", "Lyon"]]


def test_a_new_pass_forgets_what_find_read(sheets: SheetsSandbox) -> None:
    key = sheets.create_spreadsheet("s", {"Clients": ROSTER})
    connector = connect(sheets, key)
    connector.find("Clients", "Email", ["ann@x.org"])
    connector.new_pass()
    sheets.knobs.reset_counts()
    connector.write("Clients", [WriteOp(Op.UPDATE, {"City": "Bergen"}, key="ann@x.org")])
    assert sheets.knobs.calls["values.batchGet"] == 1


def test_an_unchanged_sheet_reads_as_nothing_without_looking_at_its_rows(
    sheets: SheetsSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = sheets.create_spreadsheet("s", {"Clients": ROSTER})
    connector = connect(sheets, key)
    _, last = read_all(connector, "Clients")
    monkeypatch.setattr(connector, "_parse", lambda *args: pytest.fail("the rows were parsed"))
    sheets.knobs.reset_counts()
    records, again = read_all(connector, "Clients", last.cursor)
    assert records == [] and again.problems == []
    assert again.cursor == last.cursor
    assert sheets.knobs.calls == {"values.batchGet": 1}


def test_a_read_hands_on_each_batch_before_it_scans_the_rows_after_it(sheets: SheetsSandbox) -> None:
    rows = [["Email", "Name"], *([f"c{i}@x.org", f"C{i}"] for i in range(7))]
    key = sheets.create_spreadsheet("s", {"Clients": rows})
    connector = connect(sheets, key, batch_size=3)
    scanned: list[str] = []
    real_fields_of = SheetTable.fields_of

    def fields_of(table: SheetTable, row: list[Any], formulas: frozenset[str]) -> dict[str, Any]:
        scanned.append(row[0])
        return real_fields_of(table, row, formulas)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SheetTable, "fields_of", fields_of)
        batches = connector.read("Clients", None)
        first = next(batches)
        assert [r.key for r in first.records] == ["c0@x.org", "c1@x.org", "c2@x.org"]
        assert first.cursor is None and len(scanned) == 3
        rest = list(batches)
    assert [len(b.records) for b in rest] == [3, 1]
    assert rest[0].cursor is None and rest[-1].cursor is not None


def test_a_change_after_an_unchanged_read_is_still_seen(sheets: SheetsSandbox) -> None:
    key = sheets.create_spreadsheet("s", {"Clients": ROSTER})
    connector = connect(sheets, key)
    _, last = read_all(connector, "Clients")
    _, last = read_all(connector, "Clients", last.cursor)
    sheets.set_values(key, "Clients", (2, 2), [["Naples"]])
    records, _ = read_all(connector, "Clients", last.cursor)
    assert [(r.key, r.fields["City"]) for r in records] == [("bob@x.org", "Naples")]


def test_a_cursor_from_before_the_digest_still_reads_only_changes(sheets: SheetsSandbox) -> None:
    key = sheets.create_spreadsheet("s", {"Clients": ROSTER})
    connector = connect(sheets, key)
    _, last = read_all(connector, "Clients")
    assert isinstance(last.cursor, dict)
    old = {k: v for k, v in last.cursor.items() if k != "digest"}
    records, again = read_all(connector, "Clients", old)
    assert records == []
    assert again.cursor == last.cursor


def test_rows_settling_in_an_unchanged_sheet_are_handed_on_once_settled(sheets: SheetsSandbox) -> None:
    key = sheets.create_spreadsheet("s", {"Clients": ROSTER})
    connector = connect(sheets, key, settle_seconds=30)
    now = [1000.0]
    connector.clock = lambda: now[0]
    _, last = read_all(connector, "Clients")  # first sight: both rows pending
    now[0] += 10
    records, last = read_all(connector, "Clients", last.cursor)
    assert records == []
    now[0] += 25  # 35 s since first seen, and the sheet never changed since
    records, last = read_all(connector, "Clients", last.cursor)
    assert [r.key for r in records] == ["ann@x.org", "bob@x.org"]
    assert read_all(connector, "Clients", last.cursor)[0] == []


def test_row_hashes_are_the_content_hashes_cursors_already_hold() -> None:
    fields = {"Name": "Zoë «x»", "Count": 3, "Price": 1.5, "Active": True, "Tags": ["a"], "Blank": None}
    assert row_hash(fields) == content_hash({k: v for k, v in fields.items() if v is not None})


def creates(first: int, count: int) -> list[WriteOp]:
    return [
        WriteOp(Op.CREATE, {"Email": f"n{i}@x.org", "Name": f"N{i}"}, match=("Email", f"n{i}@x.org"))
        for i in range(first, first + count)
    ]


def test_batches_of_a_pass_that_only_append_read_the_sheet_once(sheets: SheetsSandbox) -> None:
    key = sheets.create_spreadsheet("s", {"Clients": numbered_roster(10)})
    connector = connect(sheets, key)
    connector.new_pass()
    sheets.knobs.reset_counts()
    for first in (0, 5, 10):
        emails = [f"n{i}@x.org" for i in range(first, first + 5)]
        assert connector.find("Clients", "Email", emails) == {}
        assert all(r.ok for r in connector.write("Clients", creates(first, 5)))
    assert sheets.knobs.calls == {"values.batchGet": 1, "values.append": 3}
    assert [row[0] for row in sheets.values(key, "Clients")[11:]] == [f"n{i}@x.org" for i in range(15)]


def test_a_key_appended_by_an_earlier_batch_is_found_not_appended_twice(sheets: SheetsSandbox) -> None:
    key = sheets.create_spreadsheet("s", {"Clients": numbered_roster(3)})
    connector = connect(sheets, key)
    connector.write("Clients", creates(0, 2))
    assert connector.find("Clients", "Email", ["n1@x.org"]) == {"n1@x.org": "n1@x.org"}


def test_a_batch_that_updates_after_appends_reads_the_sheet_again(sheets: SheetsSandbox) -> None:
    key = sheets.create_spreadsheet("s", {"Clients": numbered_roster(3)})
    connector = connect(sheets, key)
    connector.write("Clients", creates(0, 2))
    sheets.set_values(
        key, "Clients", (1, 0), [["moved@x.org", "Someone", "Leeds"]]
    )  # a person edits meanwhile
    sheets.knobs.reset_counts()
    results = connector.write("Clients", [WriteOp(Op.UPDATE, {"City": "York"}, key="r1@x.org")])
    assert all(r.ok for r in results)
    assert sheets.knobs.calls["values.batchGet"] == 1
    assert [row[2] for row in sheets.values(key, "Clients") if row[0] == "r1@x.org"] == ["York"]


def test_a_new_pass_reads_the_sheet_again_after_appends(sheets: SheetsSandbox) -> None:
    key = sheets.create_spreadsheet("s", {"Clients": numbered_roster(3)})
    connector = connect(sheets, key)
    connector.write("Clients", creates(0, 2))
    connector.new_pass()
    sheets.knobs.reset_counts()
    connector.find("Clients", "Email", ["n9@x.org"])
    assert sheets.knobs.calls == {"values.batchGet": 1}
