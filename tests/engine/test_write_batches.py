"""How a pass groups records into write calls and journal transactions, and what an idle pass costs.

The systems here are in-memory connectors put in place of the company's CSV connections, so each
test can count write calls and shape the reads (page sizes, checkpoints) exactly.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import pytest

from syncd.engine import KEPT_CHANGES, Connections, SyncPass
from syncd.journal import Journal
from syncd.records import Batch, Cursor, Op, Record, StreamInfo, WriteOp, WriteResult
from tests.engine.conftest import Company

ONE_WAY = """\
version: 1
name: clients
source: crm.Account
target: roster.Clients
direction: one-way
match: {source: AccountNumber, target: "Account No"}
fields:
  "Account No": AccountNumber
  "Client": Name
%s"""


class PagedSource:
    """A source of `n` accounts read in pages of `page`; every page (or only the last) is a checkpoint."""

    Settings: ClassVar[Any] = None

    def __init__(self, n: int, page: int, every_page_checkpoint: bool = True) -> None:
        self.n, self.page, self.every = n, page, every_page_checkpoint

    def streams(self) -> list[StreamInfo]:
        return []

    def read(self, stream: str, cursor: Cursor | None) -> Iterator[Batch]:
        start = int(cursor) if isinstance(cursor, int) else 0
        for first in range(start, self.n, self.page):
            last = min(first + self.page, self.n)
            records = [
                Record(f"A{i}", {"AccountNumber": f"ACC-{i}", "Name": f"Client {i}"})
                for i in range(first, last)
            ]
            checkpoint = self.every or last == self.n
            yield Batch(records, last if checkpoint else None)
        if start >= self.n:
            yield Batch([], self.n)

    def write(self, stream: str, ops: Sequence[WriteOp]) -> list[WriteResult]:
        raise AssertionError("a one-way pass never writes its source")

    def close(self) -> None:
        pass


class RecordingTarget:
    """Accepts every op and remembers each write call's size; may state a preferred batch."""

    Settings: ClassVar[Any] = None

    def __init__(self, preferred: int | None = None, fail_on_call: int | None = None) -> None:
        if preferred is not None:
            self.write_batch_size = preferred
        self.calls: list[int] = []
        self.fail_on_call = fail_on_call

    def streams(self) -> list[StreamInfo]:
        return []

    def read(self, stream: str, cursor: Cursor | None) -> Iterator[Batch]:
        yield Batch([], None)

    def write(self, stream: str, ops: Sequence[WriteOp]) -> list[WriteResult]:
        self.calls.append(len(ops))
        if self.fail_on_call == len(self.calls):
            raise RuntimeError("the target went away mid-pass")
        return [
            WriteResult(True, key=op.match[1] if op.match else op.key, created=op.op is Op.CREATE)
            for op in ops
        ]

    def close(self) -> None:
        pass


def run(company: Company, source: Any, target: Any, journal: Journal, **kwargs: Any) -> Any:
    project = company.project()
    conns = Connections(project)
    conns._open.update({"crm": source, "roster": target})
    return SyncPass(project, journal, project.mappings["clients"], conns, **kwargs).run()


def setup(company: Company, extra: str = "") -> None:
    company.setup([])
    company.write_mappings(clients=ONE_WAY % extra)


def test_small_reads_are_merged_into_the_targets_preferred_write_batch(company: Company) -> None:
    setup(company)
    target = RecordingTarget(preferred=1000)
    with company.journal() as journal:
        result = run(company, PagedSource(2500, page=200), target, journal)
    assert target.calls == [1000, 1000, 500]
    assert result.counts["created"] == 2500


def test_a_mappings_batch_size_overrides_the_targets_preference(company: Company) -> None:
    setup(company, "batch_size: 300\n")
    target = RecordingTarget(preferred=1000)
    with company.journal() as journal:
        run(company, PagedSource(700, page=500), target, journal)
    assert target.calls == [300, 300, 100]


def test_a_target_without_a_preference_gets_batches_of_200(company: Company) -> None:
    setup(company)
    target = RecordingTarget()
    with company.journal() as journal:
        run(company, PagedSource(450, page=1000), target, journal)
    assert target.calls == [200, 200, 50]


def test_the_cursor_never_moves_past_a_record_whose_write_is_not_recorded(company: Company) -> None:
    setup(company)
    with company.journal() as journal:
        with pytest.raises(RuntimeError):
            run(
                company, PagedSource(2500, page=300), RecordingTarget(preferred=1000, fail_on_call=2), journal
            )
        cursor, _ = journal.get_cursor("clients", "source")
        assert cursor == 900  # the last checkpoint inside the first write batch of 1,000 records
        assert journal.count_links("clients") == 1000


def test_a_pass_over_many_records_keeps_a_bounded_list_of_changes_but_counts_them_all(
    company: Company,
) -> None:
    setup(company)
    n = KEPT_CHANGES + 500
    with company.journal() as journal:
        result = run(company, PagedSource(n, page=400), RecordingTarget(preferred=300), journal)
    assert len(result.changes) == KEPT_CHANGES
    assert result.changes_dropped == 500
    assert result.written[("to_target", "create")] == n


def test_a_dry_run_keeps_every_planned_change(company: Company) -> None:
    setup(company)
    n = KEPT_CHANGES + 5
    with company.journal() as journal:
        result = run(company, PagedSource(n, page=400), RecordingTarget(), journal, dry_run=True)
    assert len(result.changes) == n


def test_an_idle_pass_writes_nothing_to_the_journal_but_its_run(company: Company) -> None:
    setup(company)
    with company.journal() as journal:
        run(company, PagedSource(300, page=100), RecordingTarget(), journal)
        statements: list[str] = []
        journal.conn.set_trace_callback(statements.append)
        run(company, PagedSource(300, page=100), RecordingTarget(), journal)
        journal.conn.set_trace_callback(None)
    assert {table for verb, table in map(written_table, statements) if verb in {"INSERT", "UPDATE"}} == {
        "runs"
    }
    assert {table for verb, table in map(written_table, statements) if verb == "DELETE"} <= {
        "events"
    }  # pruning


def written_table(statement: str) -> tuple[str, str]:
    """("INSERT", "runs") for "INSERT INTO runs ...", ("SELECT", "") for a statement that writes nothing."""
    words = statement.replace("(", " ").split()
    verb = words[0].upper() if words else ""
    if verb == "UPDATE":
        return verb, words[1]
    if verb in {"INSERT", "DELETE"}:
        return verb, words[words.index("INTO" if verb == "INSERT" else "FROM") + 1]
    return verb, ""
