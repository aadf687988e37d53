"""The Salesforce connector against the Salesforce sandbox: reads, cursors, writes, retries, budget."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from connectors.salesforce import SalesforceConnector, SalesforceSettings
from connectors.salesforce.connector import soql_datetime
from syncd.errors import BudgetExhausted, ConfigError
from syncd.records import Batch, Op, Record, WriteOp
from syncd.sandbox.knobs import FaultPlan
from syncd.sandbox.salesforce import SalesforceSandbox

SEED = {
    "objects": {
        "Account": {
            "fields": {"Ext__c": {"type": "string", "length": 40, "externalId": True, "unique": True}}
        }
    }
}

Factory = Callable[..., SalesforceConnector]


@pytest.fixture
def org() -> Iterator[SalesforceSandbox]:
    sandbox = SalesforceSandbox(seed=SEED).start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def connect(org: SalesforceSandbox) -> Iterator[Factory]:
    made: list[SalesforceConnector] = []

    def make(**overrides: Any) -> SalesforceConnector:
        info = org.info()
        settings: dict[str, Any] = {
            "login_url": info["login_url"],
            "username": info["username"],
            "password": info["password"],
            "security_token": info["security_token"],
            "ca_file": info["ca_file"],
            "objects": ("Account", "Contact"),
            "backoff_seconds": 0,
            "bulk_poll_seconds": 0,
        }
        settings.update(overrides)
        connector = SalesforceConnector("crm", SalesforceSettings(**settings), Path("."))
        made.append(connector)
        return connector

    yield make
    for connector in made:
        connector.close()


def records(batches: list[Batch]) -> list[Record]:
    return [r for b in batches for r in b.records]


def test_streams_describe_fields_with_their_write_rules(connect: Factory) -> None:
    account = next(s for s in connect().streams() if s.name == "Account")
    by_name = {f.name: f for f in account.fields}
    assert account.key_field == "Id" and "find" in account.capabilities
    assert by_name["Name"].createable and not by_name["Name"].nullable
    assert by_name["Ext__c"].external_id
    assert not by_name["SystemModstamp"].createable and not by_name["SystemModstamp"].updateable


def test_write_problems_names_fields_describe_refuses(connect: Factory) -> None:
    problems = connect().write_problems("Account", ["Name", "CreatedDate", "Colour__c"], Op.CREATE)
    assert problems == ["Account.CreatedDate: not createable", "Account.Colour__c: no such field"]


@pytest.mark.parametrize("login", ["soap", "oauth-password", "jwt"])
def test_every_login_flow_reads(org: SalesforceSandbox, connect: Factory, login: str) -> None:
    info = org.info()
    org.insert("Account", {"Name": "Visible"})
    overrides: dict[str, Any] = {
        "soap": {},
        "oauth-password": {"client_id": info["client_id"], "client_secret": info["client_secret"]},
        "jwt": {"password": None, "security_token": None, "client_id": info["client_id"],
                "private_key_file": info["jwt_private_key_file"]},
    }[login]  # fmt: skip
    assert [r.fields["Name"] for r in records(list(connect(**overrides).read("Account", None)))] == [
        "Visible"
    ]


def test_read_pages_carry_a_cursor_that_resumes_exactly_after_them(
    org: SalesforceSandbox, connect: Factory
) -> None:
    connector = connect(page_size=200, overlap_seconds=0)
    created = connector.write("Account", [WriteOp(Op.CREATE, {"Name": f"A{i}"}) for i in range(450)])
    batches = list(connector.read("Account", None))
    assert [len(b.records) for b in batches[:3]] == [200, 200, 50]
    middle = batches[0].cursor
    resumed = records(list(connector.read("Account", middle)))
    assert [r.key for r in resumed] == [r.key for r in records(batches)[200:]]
    assert sorted(r.key for r in records(batches)) == sorted(str(c.key) for c in created)


def test_records_sharing_a_system_modstamp_across_a_page_boundary_are_not_skipped(
    org: SalesforceSandbox, connect: Factory
) -> None:
    connector = connect(page_size=200, overlap_seconds=0)
    connector.write("Account", [WriteOp(Op.CREATE, {"Name": f"A{i}"}) for i in range(200)])
    first = list(connector.read("Account", None))
    cursor = first[0].cursor
    connector.write("Account", [WriteOp(Op.CREATE, {"Name": f"B{i}"}) for i in range(300)])
    batches = list(connector.read("Account", cursor))
    got = records(batches)
    assert len(got) == 300 and len({r.key for r in got}) == 300
    stamps = {r.modified_at for r in got}
    assert len(stamps) == 2  # two collection calls, two timestamps, one of them split across pages


def test_a_late_commit_with_an_earlier_timestamp_is_caught_by_the_overlap(
    org: SalesforceSandbox, connect: Factory
) -> None:
    connector = connect(overlap_seconds=60)
    org.insert("Account", {"Name": "First"})
    cursor = list(connector.read("Account", None))[-1].cursor
    assert records(list(connector.read("Account", cursor))) == []
    stamp = org.records("Account")[0]["SystemModstamp"]
    late = org.insert("Account", {"Name": "Late"}, system_modstamp=stamp)
    assert [r.key for r in records(list(connector.read("Account", cursor)))] == [late]


def test_soft_deletes_arrive_as_deleted_records(org: SalesforceSandbox, connect: Factory) -> None:
    connector = connect(overlap_seconds=0)
    record_id = org.insert("Account", {"Name": "Soon gone"})
    cursor = list(connector.read("Account", None))[-1].cursor
    org.delete("Account", record_id)
    [gone] = records(list(connector.read("Account", cursor)))
    assert (gone.key, gone.deleted) == (record_id, True)


def test_hard_deletes_arrive_through_get_deleted(org: SalesforceSandbox, connect: Factory) -> None:
    connector = connect(overlap_seconds=0)
    record_id = org.insert("Account", {"Name": "Purged"})
    cursor = list(connector.read("Account", None))[-1].cursor
    cursor = {**cursor, "deleted_until": "2020-01-01T00:00:00.000Z"}  # a window that started long ago
    org.hard_delete("Account", record_id)
    gone = [r for r in records(list(connector.read("Account", cursor))) if r.deleted]
    assert [r.key for r in gone] == [record_id]


def test_relationship_paths_are_read_as_nested_fields(org: SalesforceSandbox, connect: Factory) -> None:
    account = org.insert("Account", {"Name": "Parent", "AccountNumber": "AN-7"})
    org.insert("Contact", {"LastName": "Child", "AccountId": account})
    connector = connect(select={"Contact": ["Account.AccountNumber", "Owner.Name"]})
    [contact] = records(list(connector.read("Contact", None)))
    assert contact.fields["Account"] == {"AccountNumber": "AN-7"}
    assert contact.fields["Owner"] == {"Name": "Account Coordinator"}


def test_one_bad_record_in_200_fails_alone_with_salesforce_code(
    org: SalesforceSandbox, connect: Factory
) -> None:
    ops = [WriteOp(Op.CREATE, {"Name": f"A{i}"}, match=("Ext__c", f"E{i}")) for i in range(200)]
    ops[77] = WriteOp(Op.CREATE, {"Phone": "no name"}, match=("Ext__c", "E77"))
    results = connect().write("Account", ops)
    assert [i for i, r in enumerate(results) if not r.ok] == [77]
    error = results[77].error
    assert error is not None and (error.category, error.code) == ("validation", "REQUIRED_FIELD_MISSING")
    assert len(org.records("Account")) == 199


def test_a_repeated_upsert_after_a_crash_creates_no_duplicate(
    org: SalesforceSandbox, connect: Factory
) -> None:
    ops = [WriteOp(Op.CREATE, {"Name": f"A{i}"}, match=("Ext__c", f"E{i}")) for i in range(10)]
    first = connect().write("Account", ops)
    again = connect().write("Account", ops)
    assert all(r.created for r in first) and not any(r.created for r in again)
    assert [r.key for r in first] == [r.key for r in again]
    assert len(org.records("Account")) == 10


def test_updates_and_deletes_report_each_record(org: SalesforceSandbox, connect: Factory) -> None:
    live = org.insert("Account", {"Name": "Live"})
    gone = org.insert("Account", {"Name": "Gone"})
    org.delete("Account", gone)
    results = connect().write(
        "Account",
        [
            WriteOp(Op.UPDATE, {"Phone": "1"}, key=live),
            WriteOp(Op.UPDATE, {"Phone": "2"}, key=gone),
            WriteOp(Op.DELETE, {}, key=live),
        ],
    )
    assert [r.ok for r in results] == [True, False, True]
    assert results[1].error is not None and results[1].error.category == "not-found"


def test_large_writes_go_through_bulk_api(org: SalesforceSandbox, connect: Factory) -> None:
    connector = connect(bulk_threshold=5)
    org.knobs.reset_counts()
    ops = [WriteOp(Op.CREATE, {"Name": f"A{i}"}, match=("Ext__c", f"E{i}")) for i in range(12)]
    ops[3] = WriteOp(Op.CREATE, {"Name": "x" * 300}, match=("Ext__c", "E3"))
    results = connector.write("Account", ops)
    assert [r.ok for r in results] == [i != 3 for i in range(12)]
    assert results[3].error is not None and results[3].error.code == "STRING_TOO_LONG"
    assert org.knobs.calls["bulk2_ingest"] >= 4 and org.knobs.calls["composite_sobjects"] == 0
    assert sorted(r["Ext__c"] for r in org.records("Account")) == sorted(f"E{i}" for i in range(12) if i != 3)


def test_find_escapes_values_full_of_quotes_and_backslashes(org: SalesforceSandbox, connect: Factory) -> None:
    tricky = "O'Brien \\' \" 100%_"
    wanted = org.insert("Account", {"Name": "T", "Ext__c": tricky})
    org.insert("Account", {"Name": "U", "Ext__c": "O'Brien"})
    assert connect().find("Account", "Ext__c", [tricky, "absent"]) == {tricky: wanted}


def test_transient_503_is_retried(org: SalesforceSandbox, connect: Factory) -> None:
    connector = connect()
    connector.streams()
    org.knobs.set_faults(FaultPlan(on_calls={1, 2}, kinds=["503"]))
    org.insert("Account", {"Name": "A"})
    assert len(records(list(connector.read("Account", None)))) == 1


def test_dropped_connection_is_retried(org: SalesforceSandbox, connect: Factory) -> None:
    connector = connect()
    connector.streams()
    org.knobs.set_faults(FaultPlan(on_calls={1}, kinds=["drop"]))
    assert connector.write("Account", [WriteOp(Op.CREATE, {"Name": "A"})])[0].ok


def test_unable_to_lock_row_records_are_retried(org: SalesforceSandbox, connect: Factory) -> None:
    connector = connect()
    connector.streams()
    org.knobs.set_faults(FaultPlan(on_calls={1}, kinds=["UNABLE_TO_LOCK_ROW"], only={"composite_sobjects"}))
    results = connector.write("Account", [WriteOp(Op.CREATE, {"Name": f"A{i}"}) for i in range(3)])
    assert all(r.ok for r in results) and len(org.records("Account")) == 3


def test_exhausted_retries_become_transient_exhausted_failures(
    org: SalesforceSandbox, connect: Factory
) -> None:
    connector = connect(max_attempts=2)
    connector.streams()
    org.knobs.set_faults(FaultPlan(rate=1.0, kinds=["503"], only={"composite_sobjects"}))
    [result] = connector.write("Account", [WriteOp(Op.CREATE, {"Name": "A"})])
    assert result.error is not None and result.error.category == "transient-exhausted"


def test_an_expired_session_is_renewed_once(org: SalesforceSandbox, connect: Factory) -> None:
    connector = connect()
    connector.streams()
    org.expire_sessions()
    assert connector.write("Account", [WriteOp(Op.CREATE, {"Name": "A"})])[0].ok
    assert org.knobs.calls["login"] == 2


def test_request_limit_exceeded_stops_the_pass(org: SalesforceSandbox, connect: Factory) -> None:
    connector = connect()
    connector.streams()
    org.set_daily_limit(0)
    with pytest.raises(BudgetExhausted):
        list(connector.read("Account", None))


def test_budget_governor_stops_a_pass_and_the_next_pass_resumes(
    org: SalesforceSandbox, connect: Factory
) -> None:
    org.set_daily_limit(100)
    connector = connect(page_size=200, max_pass_share=0.05, overlap_seconds=0)
    connector.write("Account", [WriteOp(Op.CREATE, {"Name": f"A{i}"}) for i in range(1000)])
    connector.new_pass()
    seen: list[Record] = []
    cursor = None
    with pytest.raises(BudgetExhausted):
        for batch in connector.read("Account", cursor):
            seen += batch.records
            cursor = batch.cursor
    assert 0 < len(seen) < 1000
    connector.new_pass()
    org.set_daily_limit(10_000)
    rest = records(list(connector.read("Account", cursor)))
    assert sorted(r.key for r in seen + rest) == sorted(r["Id"] for r in org.records("Account"))


def test_a_query_salesforce_refuses_is_a_config_error(connect: Factory) -> None:
    with pytest.raises(ConfigError):
        list(connect(select={"Account": ["Nope__r.Name"]}).read("Account", None))


def test_bad_credentials_are_a_config_error_without_the_secret(connect: Factory) -> None:
    with pytest.raises(ConfigError) as caught:
        connect(password="hunter2-wrong").streams()
    assert "hunter2" not in str(caught.value)


def test_close_twice_is_safe(connect: Factory) -> None:
    connector = connect()
    connector.close()
    connector.close()


def test_describe_is_reused_across_passes_so_an_idle_pass_costs_one_query(
    org: SalesforceSandbox, connect: Factory
) -> None:
    connector = connect()
    org.insert("Account", {"Name": "Acme"})
    connector.new_pass()
    list(connector.read("Account", None))
    org.knobs.reset_counts()
    connector.new_pass()
    list(connector.read("Account", None))
    assert dict(org.knobs.calls) == {"query": 1}


def test_describe_older_than_its_max_age_is_read_again_by_the_next_pass(
    org: SalesforceSandbox, connect: Factory
) -> None:
    connector = connect(describe_max_age_seconds=0)
    org.insert("Account", {"Name": "Acme"})
    connector.new_pass()
    list(connector.read("Account", None))
    org.knobs.reset_counts()
    connector.new_pass()
    list(connector.read("Account", None))
    assert org.knobs.calls["describe"] == 1


def test_a_field_removed_since_the_cached_describe_is_described_again_and_read(
    org: SalesforceSandbox, connect: Factory
) -> None:
    connector = connect()
    org.insert("Account", {"Name": "Acme", "AccountNumber": "A-1"})
    list(connector.read("Account", None))
    del org.org.sobject("Account").fields["AccountNumber"]
    org.knobs.reset_counts()
    records = [r for b in connector.read("Account", None) for r in b.records]
    assert [r.fields["Name"] for r in records] == ["Acme"]
    assert "AccountNumber" not in records[0].fields
    assert org.knobs.calls["describe"] == 1


def test_get_deleted_is_asked_at_most_once_per_interval_not_on_every_read(
    org: SalesforceSandbox, connect: Factory
) -> None:
    connector = connect()
    org.insert("Account", {"Name": "Acme"})
    cursor = [b.cursor for b in connector.read("Account", None)][-1]
    assert isinstance(cursor, dict)
    cursor = {**cursor, "deleted_until": soql_datetime(datetime.now(UTC) - timedelta(minutes=5))}
    org.knobs.reset_counts()
    list(connector.read("Account", cursor))
    assert org.knobs.calls["deleted"] == 0
    list(connect(hard_deletes_every_seconds=60).read("Account", cursor))
    assert org.knobs.calls["deleted"] == 1


def records_and_cursor(connector: SalesforceConnector, cursor: Any) -> tuple[list[str], Any]:
    batches = list(connector.read("Account", cursor))
    return [r.fields["Name"] for b in batches for r in b.records], batches[-1].cursor


def quiet_org(org: SalesforceSandbox, connector: SalesforceConnector) -> tuple[Any, Any]:
    """Cursors of a first and a second read of an org whose one record changed 30 s ago."""
    stamp = soql_datetime(datetime.now(UTC) - timedelta(seconds=30))
    org.insert("Account", {"Name": "Acme"}, system_modstamp=stamp)
    _, first = records_and_cursor(connector, None)
    names, second = records_and_cursor(connector, first)
    assert names == []
    return first, second


def test_a_quiet_org_is_not_read_again_for_the_overlap_once_a_read_has_seen_it(
    org: SalesforceSandbox, connect: Factory
) -> None:
    connector = connect(overlap_seconds=10)
    _, second = quiet_org(org, connector)
    assert second.get("checked")  # the read window starts at a read's own time, not the record's
    names, third = records_and_cursor(connector, second)
    assert names == [] and third == second  # nothing came back: an idle pass stores no cursor


def test_a_late_commit_inside_the_overlap_of_a_quiet_read_is_still_read(
    org: SalesforceSandbox, connect: Factory
) -> None:
    connector = connect(overlap_seconds=10)
    _, quiet = quiet_org(org, connector)
    late = soql_datetime(
        datetime.fromisoformat(quiet["checked"].replace("Z", "+00:00")) - timedelta(seconds=5)
    )
    org.insert("Account", {"Name": "Late Ltd"}, system_modstamp=late)
    names, _ = records_and_cursor(connector, quiet)
    assert names == ["Late Ltd"]
