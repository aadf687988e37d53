"""The conformance suite: what every connector promises the engine (ARCHITECTURE.md, "Tests").

Each test runs once per harness registered in conftest.py.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from syncd.records import DEAD_LETTER_CATEGORIES, Batch, Connector, Cursor, Finder, Op, Record, WriteOp

from .harness import Harness


def read(connector: Connector, stream: str, cursor: Cursor | None = None) -> list[Batch]:
    return list(connector.read(stream, cursor))


def records(batches: Iterable[Batch]) -> list[Record]:
    return [record for batch in batches for record in batch.records]


def last_cursor(batches: list[Batch]) -> Cursor:
    cursors = [batch.cursor for batch in batches if batch.cursor is not None]
    assert cursors, "a read must end with a checkpoint the engine can store"
    return cursors[-1]


def current(connector: Connector, stream: str) -> dict[str, Record]:
    """The stream as a full read from scratch sees it."""
    return {r.key: r for r in records(read(connector, stream)) if not r.deleted}


def upsert(harness: Harness, ident: str, version: int = 0, op: Op = Op.UPSERT) -> WriteOp:
    return WriteOp(
        op,
        harness.fields_for(ident, version),
        match=(harness.match_field, ident),
        idempotency_key=f"{ident}-{version}",
    )


# reading


def test_read_without_cursor_returns_every_seeded_record(harness: Harness) -> None:
    keys = harness.seed(5)
    assert sorted(current(harness.connector(), harness.stream)) == sorted(keys)


def test_batches_hold_at_most_batch_size_items(harness: Harness) -> None:
    harness.seed(7)
    batches = read(harness.connector(batch_size=3), harness.stream)
    assert len(batches) >= 3
    assert all(len(batch.records) + len(batch.problems) <= 3 for batch in batches)


def test_a_read_ends_with_a_checkpoint(harness: Harness) -> None:
    harness.seed(7)
    batches = read(harness.connector(batch_size=3), harness.stream)
    assert batches[-1].cursor is not None


def test_read_from_each_checkpoint_repeats_nothing_and_skips_nothing(harness: Harness) -> None:
    harness.seed(10)
    connector = harness.connector(batch_size=3)
    batches = read(connector, harness.stream)
    order = [record.key for record in records(batches)]
    seen = 0
    for batch in batches:
        seen += len(batch.records)
        if batch.cursor is not None:
            resumed = [record.key for record in records(read(connector, harness.stream, batch.cursor))]
            assert resumed == order[seen:]


def test_read_after_cursor_returns_only_the_record_changed_since(harness: Harness) -> None:
    keys = harness.seed(6)
    connector = harness.connector(batch_size=2)
    first = read(connector, harness.stream)
    harness.mutate(keys[3])
    changed = records(read(connector, harness.stream, last_cursor(first)))
    assert [record.key for record in changed] == [keys[3]]
    original = {record.key: record for record in records(first)}[keys[3]]
    assert changed[0].fields != original.fields


def test_read_after_cursor_returns_only_records_added_since(harness: Harness) -> None:
    harness.seed(4)
    connector = harness.connector()
    cursor = last_cursor(read(connector, harness.stream))
    added = harness.seed(2)
    assert sorted(record.key for record in records(read(connector, harness.stream, cursor))) == sorted(added)


def test_streams_describe_what_read_returns(harness: Harness) -> None:
    harness.seed(3)
    connector = harness.connector()
    info = {stream.name: stream for stream in connector.streams()}[harness.stream]
    read_back = current(connector, harness.stream)
    assert read_back
    for record in read_back.values():
        assert set(record.fields) <= set(info.field_names())
        assert info.key_field in record.fields


# writing


def test_write_returns_one_result_per_op_in_order(harness: Harness) -> None:
    ops = [upsert(harness, harness.ident(n)) for n in range(3)]
    results = harness.connector().write(harness.stream, ops)
    assert [result.ok for result in results] == [True, True, True]
    assert len({result.key for result in results}) == 3


def test_written_values_read_back_unchanged(harness: Harness) -> None:
    connector = harness.connector()
    [result] = connector.write(harness.stream, [upsert(harness, "W1", version=2)])
    stored = current(connector, harness.stream)[str(result.key)]
    for name, value in harness.fields_for("W1", version=2).items():
        assert stored.fields[name] == value


def test_repeated_write_changes_nothing(harness: Harness) -> None:
    harness.seed(2)
    connector = harness.connector()
    ops = [upsert(harness, harness.ident(n), version=1) for n in range(4)]
    first = connector.write(harness.stream, ops)
    before = harness.snapshot()
    again = connector.write(harness.stream, ops)
    assert harness.snapshot() == before
    assert [r.key for r in again] == [r.key for r in first]
    assert not any(r.created for r in again)


def test_create_by_match_is_idempotent(harness: Harness) -> None:
    connector = harness.connector()
    op = upsert(harness, "NEW1", op=Op.CREATE)
    [first] = connector.write(harness.stream, [op])
    [second] = connector.write(harness.stream, [op])
    assert first.created and not second.created
    assert second.key == first.key
    matching = [
        r for r in current(connector, harness.stream).values() if r.fields[harness.match_field] == "NEW1"
    ]
    assert len(matching) == 1


def test_one_bad_record_spares_its_batch(harness: Harness) -> None:
    connector = harness.connector()
    ops = [upsert(harness, "GOOD1"), harness.failing_op(), upsert(harness, "GOOD2")]
    good1, bad, good2 = connector.write(harness.stream, ops)
    assert good1.ok and good2.ok
    assert not bad.ok and bad.error is not None
    assert bad.error.category in DEAD_LETTER_CATEGORIES
    assert {str(good1.key), str(good2.key)} <= set(current(connector, harness.stream))


def test_update_changes_only_the_given_fields(harness: Harness) -> None:
    keys = harness.seed(2)
    connector = harness.connector()
    before = current(connector, harness.stream)
    change = {harness.plain_field: "Elsewhere"}
    [result] = connector.write(harness.stream, [WriteOp(Op.UPDATE, change, key=keys[0])])
    after = current(connector, harness.stream)
    assert result.ok
    assert after[keys[0]].fields == {**before[keys[0]].fields, **change}
    assert after[keys[1]] == before[keys[1]]


def test_deleted_record_is_gone_and_deleting_again_is_ok(harness: Harness) -> None:
    keys = harness.seed(3)
    connector = harness.connector()
    delete = WriteOp(Op.DELETE, {}, key=keys[1])
    assert [r.ok for r in connector.write(harness.stream, [delete])] == [True]
    assert [r.ok for r in connector.write(harness.stream, [delete])] == [True]
    assert sorted(current(connector, harness.stream)) == sorted([keys[0], keys[2]])


def test_read_after_cursor_reports_a_record_deleted_since(harness: Harness) -> None:
    keys = harness.seed(3)
    connector = harness.connector()
    cursor = last_cursor(read(connector, harness.stream))
    connector.write(harness.stream, [WriteOp(Op.DELETE, {}, key=keys[0])])
    assert [(r.key, r.deleted) for r in records(read(connector, harness.stream, cursor))] == [(keys[0], True)]


# optional capabilities and lifecycle


def test_find_maps_each_value_to_its_record_key(harness: Harness) -> None:
    keys = harness.seed(3)
    connector = harness.connector()
    info = {stream.name: stream for stream in connector.streams()}[harness.stream]
    if "find" not in info.capabilities:
        pytest.skip("the connector does not offer find")
    assert isinstance(connector, Finder)
    idents = [harness.ident(1), harness.ident(2), "NOT-THERE"]
    assert connector.find(harness.stream, harness.match_field, idents) == {
        harness.ident(1): keys[1],
        harness.ident(2): keys[2],
    }


def test_close_twice_is_safe(harness: Harness) -> None:
    connector = harness.connector()
    connector.close()
    connector.close()
