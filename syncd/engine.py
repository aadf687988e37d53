"""One sync pass of one mapping: read -> map -> plan -> outbox -> write -> record.

The engine owns the loop, the plan and the bookkeeping; connectors only read and write. The order
of steps per batch is what makes a crash harmless:

1. plan every record of the batch against its link (the base = last agreed values);
2. put the planned writes in the outbox (one transaction);
3. call the connector's write;
4. in one transaction, store each result (links and new base, or a dead letter), mark the outbox
   entries done, and advance the cursor.

A crash before 4 leaves the cursor where it was: the batch is read again, and because every write
is idempotent (creates carry their match key) and unchanged records are skipped against the base,
repeating it creates nothing twice. A two-way pass first collects the target's changes, then
merges field by field: a field changed on one side flows to the other; a field changed on both is
a conflict settled by the mapping's policy.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import socket
import threading
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from syncd.errors import BudgetExhausted, RecordError, SyncdError, TransientError
from syncd.journal import Journal, Link
from syncd.mapping import CompiledMapping, get_path, text_of
from syncd.project import Project
from syncd.records import (
    Batch,
    Connector,
    Finder,
    JSONValue,
    Op,
    PassAware,
    ReadProblem,
    Record,
    Watcher,
    WriteOp,
    WriteResult,
    canonical_json,
    content_hash,
    preferred_write_batch,
    to_jsonable,
)

log = logging.getLogger("syncd.engine")

SOURCE, TARGET = "source", "target"
LEASE_TTL = timedelta(minutes=30)  # longer than any pass; a crashed holder's lease lapses after it
RETRIED_CATEGORIES = ("unresolved-reference", "transient-exhausted")


def fault_point(name: str) -> None:
    """Crash here (SIGKILL, no cleanup) when SYNCD_FAULT_POINT names this point.

    Crash tests select a point with SYNCD_FAULT_POINT and, optionally, the how-many-th time it is
    reached with SYNCD_FAULT_AFTER (default 1), then check that a re-run loses and duplicates nothing.
    """
    if os.environ.get("SYNCD_FAULT_POINT") != name:
        return
    remaining = int(os.environ.get("SYNCD_FAULT_AFTER", "1")) - 1
    if remaining <= 0:
        os.kill(os.getpid(), signal.SIGKILL)
    os.environ["SYNCD_FAULT_AFTER"] = str(remaining)


def norm(value: Any) -> Any:
    """The form two systems' values are compared in: 5, 5.0 and "5" agree; None and "" agree."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return text_of(value)
    if isinstance(value, dict | list):
        return canonical_json(value)
    return value


def same(a: Any, b: Any) -> bool:
    return bool(a == b or norm(a) == norm(b))


@dataclass
class Change:
    """One planned write, kept for the dry-run report and the outbox."""

    action: str  # create | update | delete | flag | conflict | dead-letter | link
    side: str  # the side that is written: target, or source for a two-way write-back
    source_key: str | None
    target_key: str | None
    diff: dict[str, tuple[JSONValue, JSONValue]] = field(default_factory=dict)
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "side": self.side,
            "source_key": self.source_key,
            "target_key": self.target_key,
            "changes": {k: {"from": a, "to": b} for k, (a, b) in self.diff.items()},
            "reason": self.reason,
        }


KEPT_CHANGES = 1000
"""Changes a pass that writes keeps for reporting; beyond them only the tallies grow.

A dry run keeps every change (its plan is the point), but a first pass over a million records
must not hold a million Change objects: memory would grow with the data, not the batch.
"""


@dataclass
class PassResult:
    mapping: str
    run_id: int | None
    outcome: str = "ok"  # ok | failures | budget | failed
    counts: Counter[str] = field(default_factory=Counter)
    changes: list[Change] = field(default_factory=list)
    message: str = ""
    newest_change: datetime | None = None  # newest source modified_at seen (for lag)
    written: Counter[tuple[str, str]] = field(default_factory=Counter)  # (direction, action) -> done
    changes_dropped: int = 0  # changes tallied but not kept (beyond KEPT_CHANGES)
    _tallied: int = 0

    @property
    def failed(self) -> bool:
        return self.outcome in ("failures", "failed")

    def tally(self, keep: int | None = KEPT_CHANGES) -> None:
        """Count the changes not yet counted in `written`; then keep at most `keep` of them.

        Called once a batch's outcomes are recorded (a failed write has its reason by then).
        """
        for change in self.changes[self._tallied :]:
            action = _WRITTEN_ACTIONS.get(change.action)
            if action is None or change.reason.startswith("failed:"):
                continue
            direction = "to_source" if change.side == SOURCE else "to_target"
            self.written[(direction, action)] += 1
        if keep is not None and len(self.changes) > keep:
            self.changes_dropped += len(self.changes) - keep
            del self.changes[keep:]
        self._tallied = len(self.changes)


_WRITTEN_ACTIONS = {
    "create": "create",
    "update": "update",
    "flag": "update",
    "delete": "delete",
    "link": "link",
}


@dataclass
class _Pending:
    """A write waiting for its result, and what to record when it comes."""

    change: Change
    op: WriteOp
    source_key: str | None
    target_key: str | None
    agreed: dict[str, JSONValue]  # values both sides hold once this write succeeds
    match_value: str | None
    record: Record | None
    on_ok: str  # link | unlink | mark-source-deleted
    prior: dict[str, JSONValue] = field(default_factory=dict)  # the link's base before this pass


class Connections:
    """The connectors a pass uses, built on first use and closed together."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self._open: dict[str, Connector] = {}

    def get(self, name: str) -> Connector:
        if name not in self._open:
            self._open[name] = self.project.connect(name)
        return self._open[name]

    def end_pass(self) -> None:
        """Close what cannot wait for the next pass; keep connectors that reset per pass (PassAware).

        The daemon keeps one Connections per mapping: a Salesforce or Sheets connector kept open is
        one login (and one describe) per daemon, not per pass. Salesforce limits logins per user
        per hour, and a mail-woken mapping can run every few seconds. Mail and file connectors
        hold nothing worth keeping and an IMAP connection left idle is closed by the server, so
        they are closed and opened again next pass.
        """
        for name, connector in list(self._open.items()):
            if not isinstance(connector, PassAware):
                del self._open[name]
                self._close(connector)

    @staticmethod
    def _close(connector: Connector) -> None:
        try:
            connector.close()
        except Exception:  # closing must never mask the pass's own outcome
            log.debug("closing a connector failed", exc_info=True)

    def close(self) -> None:
        for connector in self._open.values():
            self._close(connector)
        self._open.clear()


ProgressFn = Callable[[int], None]


class SyncPass:
    """One pass of one mapping. Build it, call `run()`, read the PassResult."""

    def __init__(
        self,
        project: Project,
        journal: Journal,
        mapping: CompiledMapping,
        connections: Connections,
        *,
        dry_run: bool = False,
        full: bool = False,
        progress: ProgressFn | None = None,
        stop: threading.Event | None = None,
        now: datetime | None = None,
    ) -> None:
        self.project = project
        self.journal = journal
        self.m = mapping
        self.spec = mapping.spec
        self.conns = connections
        self.dry_run = dry_run
        self.full = full
        self.progress = progress
        self.stop = stop
        self.result = PassResult(mapping.name, None)
        self.source: Connector = connections.get(self.spec.source_connection)
        self.target: Connector = connections.get(self.spec.target_connection)
        self._lookup_cache: dict[tuple[str, str], dict[str, str]] = {}
        self._target_changes: dict[str, Record] = {}
        self._events: list[tuple[str, str, str | None, str | None, Any]] = []
        self._bases: dict[str, dict[str, JSONValue]] = {}
        self._last_counts: Counter[str] = Counter()  # run counts already added to the journal
        self._base_override: dict[str, dict[str, JSONValue]] = {}
        self._forget: set[str] = set()
        self._failed_sources: set[str] = set()
        self._conflicted: set[str] = (
            set()
        )  # source keys left in the conflicts table this pass  # source keys whose outcome this batch was a failure
        self._generation: dict[str, int] = {}  # source key -> generation of a new cycle planned this pass
        self._link_generation: dict[str, int] = {}  # source key -> generation of its current link
        self.period = mapping.period(now) if mapping.spec.once_per else ""
        self.write_batch = self.spec.batch_size or preferred_write_batch(self.target)
        self._upsert: bool | None = None  # see _creates_upsert
        # side -> (the cursor the journal holds, its fields hash): not rewritten when handed back
        self._cursor_now: dict[str, tuple[Any, str | None]] = {}

    # -- the pass ----------------------------------------------------------------------------

    def _lease_name(self) -> str | None:
        """Mail folders are leased to one pass at a time: with post-actions (move, flag) two readers of
        one folder, say an old and a reloaded config, could each act on a message the other handles."""
        if self.dry_run or not isinstance(self.source, Watcher):
            return None
        return f"{self.m.name}:{self.spec.source}"

    def run(self) -> PassResult:
        r = self.result
        lease = self._lease_name()
        owner = f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
        if lease is not None and not self.journal.acquire_lease(lease, owner, LEASE_TTL):
            r.outcome = "failed"
            r.message = (
                f"{self.spec.source} is being read by {self.journal.lease_owner(lease)}; not read twice"
            )
            return r
        try:
            return self._run_leased()
        finally:
            if lease is not None:
                self.journal.release_lease(lease, owner)

    def _run_leased(self) -> PassResult:
        r = self.result
        if not self.dry_run:
            r.run_id = self.journal.start_run(self.m.name)
            self._abandon_stale_outbox()
        try:
            self._run()
        except BudgetExhausted as exc:
            r.outcome, r.message = "budget", f"API budget exhausted; resumes next pass: {exc}"
        except SyncdError as exc:
            r.outcome, r.message = "failed", str(exc)
        if r.outcome in ("ok", "stopped") and r.counts["failed"]:
            r.outcome = "failures"
        r.tally(None if self.dry_run else KEPT_CHANGES)
        if r.run_id is not None:
            self.journal.finish_run(r.run_id, r.outcome, r.message or None, newest_change=r.newest_change)
            self.journal.prune_events(timedelta(days=self.project.settings.events_retention_days))
        return r

    def _run(self) -> None:
        spec = self.spec
        for connector in {id(self.source): self.source, id(self.target): self.target}.values():
            if isinstance(connector, PassAware):
                connector.new_pass()
        src_cursor, fields_hash = self.journal.get_cursor(self.m.name, SOURCE)
        self._cursor_now[SOURCE] = (src_cursor, fields_hash)
        backfill = fields_hash is not None and fields_hash != self.m.fields_hash
        if self.full or backfill:
            if backfill:
                log.info("%s: mapping fields changed; reading the source in full to backfill", self.m.name)
            src_cursor = None
        tgt_cursor_new: Any = None
        if self.m.two_way:
            tgt_cursor, tgt_hash = self.journal.get_cursor(self.m.name, TARGET)
            self._cursor_now[TARGET] = (tgt_cursor, tgt_hash)
            for batch in self.target.read(spec.target_stream, None if self.full else tgt_cursor):
                self._problems(batch.problems, TARGET)
                for rec in batch.records:
                    self._target_changes[rec.key] = rec
                if batch.cursor is not None:
                    tgt_cursor_new = batch.cursor
            fault_point("after-read")
        self._retry_dead_letters()
        if spec.group_by:
            self._forward_groups()
            src_cursor = None
        if not spec.group_by:
            stopped = self._forward_stream(src_cursor)
            if stopped:
                # Asked to stop (SIGTERM): the batch in hand is recorded, the rest waits for next time.
                self.result.outcome, self.result.message = "stopped", "stopped at a batch boundary"
                return
        if self.m.two_way:
            rest = list(self._target_changes.values())
            self._target_changes.clear()
            for start in range(0, max(len(rest), 1), self.write_batch):
                self._backward(rest[start : start + self.write_batch])
            if tgt_cursor_new is not None and not self.dry_run:
                with self.journal.tx():
                    self._set_cursor(TARGET, spec.target_stream, tgt_cursor_new)
        if (
            not self.dry_run
            and src_cursor is None
            and self.journal.get_cursor(self.m.name, SOURCE)[0] is None
        ):
            with self.journal.tx():  # an empty source still records that this mapping version ran
                self.journal.set_cursor(self.m.name, SOURCE, spec.source_stream, None, self.m.fields_hash)

    def _forward_stream(self, src_cursor: Any) -> bool:
        """Read the source and hand it on in write batches; True if asked to stop on the way.

        A write batch (one write call, one journal transaction) is the mapping's `batch_size`, or
        the target's preferred size, whatever size the connector reads in: small reads are merged
        and large ones split, so a Sheets target gets one batchUpdate for a pass of Salesforce pages.
        A cursor is committed with the write batch that holds the last record read before it, so
        it never moves past a record whose outcome is not yet recorded.
        """
        size = self.write_batch
        held: list[Record] = []
        taken = 0  # records handed on so far, counted from the start of the read
        checkpoints: list[tuple[int, Batch]] = []  # (records read up to this cursor, its batch)

        def hand_on(records: list[Record]) -> None:
            nonlocal taken
            taken += len(records)
            done = [c for c in checkpoints if c[0] <= taken]
            del checkpoints[: len(done)]
            self._forward(records, done[-1][1] if done else None)

        read_so_far = 0
        for batch in self.source.read(self.spec.source_stream, src_cursor):
            fault_point("after-read")
            self._problems(batch.problems, SOURCE)
            held.extend(batch.records)
            read_so_far += len(batch.records)
            if batch.cursor is not None:
                checkpoints.append((read_so_far, batch))
            while len(held) >= size:
                chunk, held = held[:size], held[size:]
                hand_on(chunk)
            stopping = self.stop is not None and self.stop.is_set()
            if stopping or (held == [] and checkpoints):
                if held or checkpoints:
                    chunk, held = held, []
                    hand_on(chunk)
                if stopping:
                    return True
        if held or checkpoints:
            hand_on(held)
        return False

    def _abandon_stale_outbox(self) -> None:
        """Outbox entries left pending by a crash: their records are read again (the cursor did not move),
        so they are re-planned, not replayed blindly; mark the old entries so status stays truthful."""
        stale = self.journal.pending_outbox(self.m.name)
        if stale:
            with self.journal.tx():
                self.journal.finish_outbox([row["id"] for row in stale], "abandoned")
            log.info(
                "%s: %d outbox entries from an interrupted pass will be re-planned", self.m.name, len(stale)
            )

    def _problems(self, problems: Sequence[ReadProblem], side: str) -> None:
        if not problems:
            return
        self.result.counts["failed"] += len(problems)
        for p in problems:
            self.result.changes.append(
                Change("dead-letter", side, p.key, None, reason=f"{p.place or ''} {p.message}".strip())
            )
        if self.dry_run:
            return
        with self.journal.tx():
            for p in problems:
                message = f"{p.place}: {p.message}" if p.place else p.message
                self.journal.add_dead_letter(
                    self.m.name, side, p.key, p.category, message, raw=p.raw, run_id=self.result.run_id
                )

    def _retry_dead_letters(self) -> None:
        """Records parked for a reason that may have gone away (a parent not yet synced) try again.

        A pass that reads its source in full (group_by, --full) meets those records anyway, so it
        does not retry them first: each record is planned once per pass.
        """
        if self.dry_run or self.spec.group_by or self.full:
            return
        letters = self.journal.dead_letters(self.m.name, categories=RETRIED_CATEGORIES)
        records = [
            Record(dl.record_key, dl.record)
            for dl in letters
            if dl.side == SOURCE and dl.record is not None and dl.record_key is not None
        ]
        if records:
            self._forward(records, None)

    def replan(
        self,
        records: list[Record],
        *,
        bases: Mapping[str, dict[str, JSONValue]] | None = None,
        target_records: Sequence[Record] = (),
        forget: Collection[str] = (),
    ) -> PassResult:
        """Plan and write these source records now, outside the cursor (dead-letter replay, reconcile repair).

        `bases` replaces the agreed values of some links for this plan only, `target_records` are
        the target's current versions of linked records, and `forget` names source keys whose links
        point at records that are gone (planned as new), so a repair can state what it found in the
        engine's own terms and let the usual merge and policies decide what to write.
        """
        if self.result.run_id is None and not self.dry_run:
            self.result.run_id = self.journal.start_run(self.m.name)
        self._base_override = dict(bases or {})
        self._forget = set(forget)
        for trec in target_records:
            self._target_changes[trec.key] = trec
        try:
            for start in range(0, len(records), self.write_batch):
                self._forward(records[start : start + self.write_batch], None)
        except BudgetExhausted as exc:
            self.result.outcome, self.result.message = "budget", str(exc)
        except SyncdError as exc:
            self.result.outcome, self.result.message = "failed", str(exc)
        finally:
            self._target_changes.clear()
            self._base_override = {}
            self._forget = set()
        if self.result.outcome == "ok" and self.result.counts["failed"]:
            self.result.outcome = "failures"
        if self.result.run_id is not None:
            self.journal.finish_run(self.result.run_id, self.result.outcome, self.result.message or None)
        return self.result

    # -- forward: source records towards the target --------------------------------------------

    def _forward(self, records: list[Record], batch: Batch | None) -> None:
        counts = self.result.counts
        counts["read"] += len(records)
        for rec in records:
            if rec.modified_at is not None and (
                self.result.newest_change is None or rec.modified_at > self.result.newest_change
            ):
                self.result.newest_change = rec.modified_at
        links = self.journal.links_by_source(self.m.name, [r.key for r in records])
        for key, lk in links.items():
            if lk.generation:  # kept only where not 0, so the map stays as small as the cycles
                self._link_generation[key] = lk.generation
        for key, base in self._base_override.items():
            if key in links:
                links[key] = dataclasses.replace(links[key], base=base)
        for key in self._forget:
            links.pop(key, None)
        pendings: list[_Pending] = []
        back: list[_Pending] = []
        failures: list[tuple[Record, RecordError, str]] = []
        live: list[Record] = []
        for rec in records:
            if rec.deleted:
                p = self._plan_source_delete(rec, links.get(rec.key))
                if p:
                    pendings.append(p)
                continue
            try:
                if not self.m.keeps(rec.fields):
                    counts["skipped"] += 1
                    self._left_filter(links.get(rec.key))
                    continue
            except RecordError as exc:
                failures.append((rec, exc, SOURCE))
                continue
            live.append(rec)
        for rec in live:
            # A new cycle (back inside the filter after leaving it, or a new once_per period): the
            # record counts as new, with a generation that keeps the new write's identity distinct.
            link = links.get(rec.key)
            if link is not None and (
                link.state == "filtered-out" or (self.spec.once_per and link.period != self.period)
            ):
                self._generation[rec.key] = link.generation + 1
                del links[rec.key]
        resolved = self.resolve_lookups(live)
        mapped: list[tuple[Record, dict[str, JSONValue]]] = []
        for rec in live:
            try:
                mapped.append((rec, self.m.apply(rec.fields, resolved)))
            except RecordError as exc:
                failures.append((rec, exc, SOURCE))
        unlinked = [(rec, vals) for rec, vals in mapped if rec.key not in links]
        found = {} if not unlinked or self._creates_upsert() else self._find_targets(unlinked)
        for rec, vals in mapped:
            link = links.get(rec.key)
            try:
                if link is None:
                    pendings.extend(self._plan_new(rec, vals, found))
                else:
                    out, out_back = self._plan_linked(rec, vals, link)
                    pendings.extend(out)
                    back.extend(out_back)
            except RecordError as exc:
                failures.append((rec, exc, SOURCE))
        self._failed_sources = {rec.key for rec, _, _ in failures}
        self._execute(pendings, back, failures, batch)
        self._post_actions([rec.key for rec, _ in mapped])

    def _post_actions(self, keys: list[str]) -> None:
        """Mark, flag or move handled source messages, only after their outcomes are committed, so
        a crash leaves a message in place to be read again rather than moved away unrecorded."""
        action = self.spec.post_action
        if action is None or self.dry_run:
            return
        done = [k for k in keys if k not in self._failed_sources and k not in self._conflicted]
        handler = getattr(self.source, "post_action", None)
        if not done or handler is None:
            return
        target = (
            action.folder if action.action == "move" else action.flag if action.action == "flag" else None
        )
        try:
            handler(self.spec.source_stream, done, action.action, target)
        except SyncdError as exc:  # the outcome is recorded; a failed move is retried with the next batch
            log.warning("%s: post-action %s failed: %s", self.m.name, action.action, exc)

    def _forward_groups(self) -> None:
        """Read the whole source, fold it into one record per `group_by` value, and plan those.

        A group's record has its first member's fields (the client's name and email, say) plus
        `items`, every member's fields in source order, and `count`. Reading in full is the price
        of a group being complete; group mappings are for reports over streams of report size.
        """
        spec = self.spec
        assert spec.group_by is not None
        groups: dict[str, list[Record]] = {}
        for batch in self.source.read(spec.source_stream, None):
            self._problems(batch.problems, SOURCE)
            for rec in batch.records:
                if rec.deleted:
                    continue
                value = text_of(get_path(rec.fields, spec.group_by))
                if value is not None:
                    groups.setdefault(value, []).append(rec)
        fault_point("after-read")
        records = []
        for value, members in groups.items():
            fields = {**members[0].fields, "items": [dict(m.fields) for m in members], "count": len(members)}
            times = [m.modified_at for m in members if m.modified_at is not None]
            records.append(Record(value, fields, max(times) if times else None))
        for start in range(0, len(records), self.write_batch):
            self._forward(records[start : start + self.write_batch], None)

    def _left_filter(self, link: Link | None) -> None:
        if link is None or link.state != "active" or self.spec.on_filter_exit != "unlink" or self.dry_run:
            return
        with self.journal.tx():
            self.journal.set_link_state(self.m.name, link.source_key, "filtered-out")

    def _plan_source_delete(self, rec: Record, link: Link | None) -> _Pending | None:
        policy = self.spec.deletes
        if link is None or link.state != "active":
            self.result.counts["skipped"] += 1
            return None
        if policy == "propagate":
            change = Change("delete", TARGET, rec.key, link.target_key)
            op = WriteOp(
                Op.DELETE, {}, key=link.target_key, idempotency_key=self._idem("delete", link.target_key, {})
            )
            return _Pending(change, op, rec.key, link.target_key, link.base, link.match_value, None, "unlink")
        if policy == "flag":
            assert self.spec.flag_field is not None
            fields = {self.spec.flag_field: self.spec.flag_value}
            change = Change(
                "flag",
                TARGET,
                rec.key,
                link.target_key,
                {self.spec.flag_field: (link.base.get(self.spec.flag_field), self.spec.flag_value)},
            )
            op = WriteOp(
                Op.UPDATE,
                fields,
                key=link.target_key,
                idempotency_key=self._idem("flag", link.target_key, fields),
            )
            return _Pending(
                change, op, rec.key, link.target_key, link.base, link.match_value, None, "mark-source-deleted"
            )
        # ignore: remember the source is gone so reconcile can report it; write nothing
        if not self.dry_run:
            with self.journal.tx():
                self.journal.set_link_state(self.m.name, rec.key, "source-deleted")
        self.result.counts["skipped"] += 1
        return None

    def resolve_lookups(self, records: Sequence[Record]) -> dict[str, dict[str, str]]:
        """One batched lookup per lookup field for all distinct values of the batch, cached per pass."""
        wanted: dict[str, set[str]] = {}
        for rec in records:
            for target_field, value in self.m.lookup_values(rec.fields).items():
                wanted.setdefault(target_field, set()).add(value)
        resolved: dict[str, dict[str, str]] = {}
        for f in self.m.lookups:
            spec = f.lookup
            assert spec is not None
            values = wanted.get(f.target, set())
            cache_id = (
                (spec.mapping or "", spec.stream or "")
                if spec.mapping
                else (spec.stream or "", spec.by or "")
            )
            cache = self._lookup_cache.setdefault(cache_id, {})
            missing = [v for v in values if v not in cache]
            if missing:
                cache.update(self._lookup(spec.mapping, spec.stream, spec.by, missing))
            resolved[f.target] = {v: cache[v] for v in values if v in cache}
        return resolved

    def _lookup(
        self, mapping: str | None, stream: str | None, by: str | None, values: list[str]
    ) -> dict[str, str]:
        if mapping is not None:
            other = self.project.mapping(mapping)
            want = SOURCE if other.spec.source_connection == self.spec.target_connection else TARGET
            return self.journal.resolve_through_links(mapping, values, want)
        assert stream is not None and by is not None
        conn_name, stream_name = stream.split(".", 1)
        connector = self.conns.get(conn_name)
        if not isinstance(connector, Finder):
            raise RecordError(
                "unresolved-reference", f"connection {conn_name!r} cannot search by field", code="NO_FIND"
            )
        return connector.find(stream_name, by, values)

    def _creates_upsert(self) -> bool:
        """Whether the target's create already matches on the match field (a Salesforce external id).

        Then looking the never-linked records up first is one query per batch spent to learn what
        the upsert learns anyway: the source's values win on first contact either way. A dry run
        still looks up, so its plan can say "link" rather than "create"; a two-way mapping or one
        with `updates: false` still looks up, because there the existing record's values matter.
        """
        if self._upsert is None:
            check = getattr(self.target, "creates_match", None)
            self._upsert = bool(
                callable(check)
                and self.spec.updates
                and not self.m.two_way
                and not self.dry_run
                and check(self.spec.target_stream, self.spec.match.target)
            )
        return self._upsert

    def _find_targets(self, unlinked: Sequence[tuple[Record, dict[str, JSONValue]]]) -> dict[str, str]:
        """match value -> existing target key, for records we have never linked (one batched call)."""
        values = {v for rec, _ in unlinked if (v := self.m.source_match_value(rec.fields)) is not None}
        if not values:
            return {}
        found: dict[str, str] = {}
        for key, trec in self._target_changes.items():
            mv = self.m.target_match_value(trec.fields)
            if mv in values and not trec.deleted:
                found[mv] = key
        rest = [v for v in values if v not in found]
        if rest and isinstance(self.target, Finder):
            found.update(self.target.find(self.spec.target_stream, self.spec.match.target, rest))
        return found

    def _plan_new(self, rec: Record, vals: dict[str, JSONValue], found: Mapping[str, str]) -> list[_Pending]:
        match_value = self.m.source_match_value(rec.fields)
        if match_value is None:
            raise RecordError(
                "bad-input",
                f"match field {self.spec.match.source!r} is empty; the record cannot be matched",
                code="NO_MATCH_VALUE",
                field=self.spec.match.source,
            )
        existing = found.get(match_value)
        if existing is not None:
            # Adopt the record the target already has. The source's values win on first contact.
            trec = self._target_changes.pop(existing, None)
            current = {k: trec.fields.get(k) for k in vals} if trec else {}
            diff = {
                k: (current.get(k), v) for k, v in vals.items() if not trec or not same(current.get(k), v)
            }
            fields = {k: v for k, (_, v) in diff.items()} if self.spec.updates else {}
            change = Change(
                "link" if not fields else "update", TARGET, rec.key, existing, diff, "matched existing record"
            )
            op = WriteOp(
                Op.UPDATE, fields, key=existing, idempotency_key=self._idem("update", existing, fields)
            )
            return [_Pending(change, op, rec.key, existing, vals, match_value, rec, "link")]
        diff = {k: (None, v) for k, v in vals.items()}
        change = Change("create", TARGET, rec.key, None, diff)
        op = WriteOp(
            Op.CREATE,
            dict(vals),
            match=(self.spec.match.target, match_value),
            idempotency_key=self._idem(
                "create",
                match_value,
                {"fields": vals, "cycle": [self._generation.get(rec.key, 0), self.period]},
            ),
        )
        return [_Pending(change, op, rec.key, None, vals, match_value, rec, "link")]

    def _plan_linked(
        self, rec: Record, vals: dict[str, JSONValue], link: Link
    ) -> tuple[list[_Pending], list[_Pending]]:
        base = link.base
        if not self.spec.updates:  # notifications: what was sent stays sent
            self.result.counts["skipped"] += 1
            return [], []
        trec = self._target_changes.pop(link.target_key, None)
        if trec is not None and trec.deleted:
            self._mark_target_deleted(link)
            trec = None
        to_target: dict[str, JSONValue] = {}
        to_source: dict[str, JSONValue] = {}
        conflicts: dict[str, dict[str, JSONValue]] = {}
        back_names = {f.target for f in self.m.back_fields}
        for name, s in vals.items():
            b, known = base.get(name), name in base
            t = trec.fields.get(name) if trec is not None else None
            s_changed = not known or not same(s, b)
            t_changed = trec is not None and known and name in back_names and not same(t, b)
            if s_changed and t_changed:
                if not same(s, t):
                    conflicts[name] = {"base": b, "source": s, "target": t}
            elif s_changed:
                if trec is None or not same(s, t):
                    to_target[name] = s
            elif t_changed:
                to_source[name] = t
            elif trec is not None and name not in back_names and not same(s, t):
                to_target[name] = s  # a read-only column edited in the target is put back
        if conflicts:
            winner = self._settle(conflicts, rec, trec)
            if winner is None:
                return self._manual_conflict(rec, link, conflicts), []
            for name, c in conflicts.items():
                if winner == SOURCE:
                    to_target[name] = c["source"]
                else:
                    to_source[name] = c["target"]
        if to_source and trec is not None:
            to_source = {n: self.m.normalise(n, v) for n, v in to_source.items()}
            to_target.update({n: v for n, v in to_source.items() if not same(v, trec.fields.get(n))})
        new_base = {name: to_source.get(name, s) for name, s in vals.items()}
        out: list[_Pending] = []
        back: list[_Pending] = []
        if to_target:
            diff = {k: (base.get(k), v) for k, v in to_target.items()}
            change = Change(
                "update", TARGET, rec.key, link.target_key, diff, "conflict settled" if conflicts else ""
            )
            op = WriteOp(
                Op.UPDATE,
                to_target,
                key=link.target_key,
                idempotency_key=self._idem("update", link.target_key, to_target),
            )
            agreed = {k: v for k, v in new_base.items() if k not in to_source}
            out.append(
                _Pending(change, op, rec.key, link.target_key, agreed, link.match_value, rec, "link", base)
            )
        if to_source:
            fields = self.m.invert({**new_base, **to_source}, to_source)
            diff = {k: (base.get(k), v) for k, v in to_source.items()}
            change = Change(
                "update", SOURCE, rec.key, link.target_key, diff, "conflict settled" if conflicts else ""
            )
            op = WriteOp(
                Op.UPDATE, fields, key=rec.key, idempotency_key=self._idem("update-source", rec.key, fields)
            )
            agreed = {k: v for k, v in new_base.items() if k not in to_target}
            back.append(
                _Pending(change, op, rec.key, link.target_key, agreed, link.match_value, rec, "link", base)
            )
        if not to_target and not to_source:
            if new_base != base and not self.dry_run:
                with self.journal.tx():  # e.g. a field removed from the mapping: keep the base tidy
                    self._save_link(rec.key, link.target_key, new_base, link.match_value)
            self.result.counts["skipped"] += 1
        return out, back

    def _settle(
        self, conflicts: dict[str, dict[str, JSONValue]], rec: Record, trec: Record | None
    ) -> str | None:
        policy = self.spec.conflict
        self.result.counts["conflicts"] += 1
        if policy == "source-wins":
            return SOURCE
        if policy == "target-wins":
            return TARGET
        if policy == "newest-wins":
            s_time, t_time = rec.modified_at, trec.modified_at if trec else None
            if s_time is not None and t_time is not None and t_time > s_time:
                return TARGET
            return SOURCE  # without both times, the source (the system of record) wins
        return None

    def _manual_conflict(
        self, rec: Record, link: Link, conflicts: dict[str, dict[str, JSONValue]]
    ) -> list[_Pending]:
        self._conflicted.add(rec.key)
        self.result.changes.append(
            Change(
                "conflict",
                TARGET,
                rec.key,
                link.target_key,
                {k: (c["source"], c["target"]) for k, c in conflicts.items()},
                "manual: left for a person",
            )
        )
        if not self.dry_run:
            with self.journal.tx():
                self.journal.add_conflict(self.m.name, rec.key, link.target_key, conflicts)
        return []

    def _mark_target_deleted(self, link: Link) -> None:
        if not self.dry_run:
            with self.journal.tx():
                self.journal.set_link_state(self.m.name, link.source_key, "target-deleted")

    # -- backward: target-only changes of a two-way mapping towards the source ------------------

    def _backward(self, records: list[Record]) -> None:
        if not records:
            return
        counts = self.result.counts
        counts["read"] += len(records)
        links = self.journal.links_by_target(self.m.name, [r.key for r in records])
        back_names = [f.target for f in self.m.back_fields]
        readonly_names = [n for n in self.m.target_fields if n not in back_names]
        back: list[_Pending] = []
        restores: list[_Pending] = []
        failures: list[tuple[Record, RecordError, str]] = []
        unlinked: list[Record] = []
        for trec in records:
            link = links.get(trec.key)
            if trec.deleted:
                if link is not None:
                    back.extend(self._plan_target_delete(trec, link))
                continue
            if link is None:
                unlinked.append(trec)
                continue
            if link.state != "active":
                counts["skipped"] += 1
                continue
            changed = {
                n: self.m.normalise(n, trec.fields.get(n))
                for n in back_names
                if not same(trec.fields.get(n), link.base.get(n))
            }
            restore = {
                n: link.base[n]
                for n in readonly_names
                if n in link.base and not same(trec.fields.get(n), link.base[n])
            }
            # What a person typed, normalised as the mapping would (" Ann@X.com" -> "ann@x.com"),
            # goes to both sides in this pass, instead of echoing back one pass later.
            restore.update({n: v for n, v in changed.items() if not same(v, trec.fields.get(n))})
            changed = {n: v for n, v in changed.items() if not same(v, link.base.get(n))}
            if restore:  # read-only columns edited in the target are put back from the agreed values
                diff = {k: (trec.fields.get(k), v) for k, v in restore.items()}
                op = WriteOp(
                    Op.UPDATE, restore, key=trec.key, idempotency_key=self._idem("restore", trec.key, restore)
                )
                restores.append(
                    _Pending(
                        Change("update", TARGET, link.source_key, trec.key, diff, "restored or normalised"),
                        op,
                        link.source_key,
                        trec.key,
                        {},
                        link.match_value,
                        None,
                        "link",
                        link.base,
                    )
                )
            if not changed:
                counts["skipped"] += 0 if restore else 1
                continue
            try:
                fields = self.m.invert({**link.base, **changed}, changed)
            except RecordError as exc:
                failures.append((trec, exc, TARGET))
                continue
            diff = {k: (link.base.get(k), v) for k, v in changed.items()}
            change = Change("update", SOURCE, link.source_key, trec.key, diff)
            op = WriteOp(
                Op.UPDATE,
                fields,
                key=link.source_key,
                idempotency_key=self._idem("update-source", link.source_key, fields),
            )
            back.append(
                _Pending(
                    change, op, link.source_key, trec.key, changed, link.match_value, trec, "link", link.base
                )
            )
        back.extend(self._plan_reverse_creates(unlinked, failures))
        self._execute(restores, back, failures, None)

    def _plan_target_delete(self, trec: Record, link: Link) -> list[_Pending]:
        if self.spec.deletes == "propagate" and link.state == "active":
            change = Change("delete", SOURCE, link.source_key, trec.key)
            op = WriteOp(
                Op.DELETE,
                {},
                key=link.source_key,
                idempotency_key=self._idem("delete-source", link.source_key, {}),
            )
            return [
                _Pending(change, op, link.source_key, trec.key, link.base, link.match_value, None, "unlink")
            ]
        self._mark_target_deleted(link)
        self.result.counts["skipped"] += 1
        return []

    def _plan_reverse_creates(
        self, records: list[Record], failures: list[tuple[Record, RecordError, str]]
    ) -> list[_Pending]:
        """Rows that appeared in the target of a two-way mapping: link them to a matching source record,
        or create one in the source."""
        if not records:
            return []
        values = {v for r in records if (v := self.m.target_match_value(r.fields)) is not None}
        found: dict[str, str] = {}
        if values and isinstance(self.source, Finder):
            found = self.source.find(self.spec.source_stream, self.spec.match.source, list(values))
        out: list[_Pending] = []
        back_names = [f.target for f in self.m.back_fields]
        for trec in records:
            mv = self.m.target_match_value(trec.fields)
            if mv is None:
                failures.append(
                    (
                        trec,
                        RecordError(
                            "bad-input",
                            f"match field {self.spec.match.target!r} is empty; the record cannot be matched",
                            code="NO_MATCH_VALUE",
                            field=self.spec.match.target,
                        ),
                        TARGET,
                    )
                )
                continue
            base = {n: trec.fields.get(n) for n in self.m.target_fields}
            if mv in found:
                # Known on both sides but never linked: link now; the next source read settles values.
                change = Change("link", SOURCE, found[mv], trec.key, reason="matched existing record")
                self.result.changes.append(change)
                if not self.dry_run:
                    with self.journal.tx():
                        self._save_link(found[mv], trec.key, base, mv)
                self.result.counts["linked"] += 1
                continue
            try:
                fields = self.m.invert(base, back_names)
            except RecordError as exc:
                failures.append((trec, exc, TARGET))
                continue
            change = Change("create", SOURCE, None, trec.key, {k: (None, v) for k, v in fields.items()})
            op = WriteOp(
                Op.CREATE,
                fields,
                match=(self.spec.match.source, mv),
                idempotency_key=self._idem("create-source", mv, fields),
            )
            out.append(_Pending(change, op, None, trec.key, base, mv, None, "link"))
        return out

    # -- writing and recording ----------------------------------------------------------------

    def _execute(
        self,
        forward: list[_Pending],
        back: list[_Pending],
        failures: list[tuple[Record, RecordError, str]],
        batch: Batch | None,
    ) -> None:
        for p in [*forward, *back]:
            self.result.changes.append(p.change)
        for rec, exc, side in failures:
            self.result.changes.append(
                Change("dead-letter", side, rec.key, None, reason=f"{exc.category}: {exc}")
            )
        if self.dry_run:
            self.result.counts["failed"] += len(failures)
            self._count_planned([*forward, *back])
            return
        writes = [(p, TARGET) for p in forward if p.op.fields or p.op.op is not Op.UPDATE] + [
            (p, SOURCE) for p in back
        ]
        noop_links = [p for p in forward if p.op.op is Op.UPDATE and not p.op.fields]
        outbox_ids: dict[str, list[int]] = {}
        with self.journal.tx() if writes else contextlib.nullcontext():
            for side, items in (
                (TARGET, [p for p, s in writes if s == TARGET]),
                (SOURCE, [p for p, s in writes if s == SOURCE]),
            ):
                stream = self.spec.target_stream if side == TARGET else self.spec.source_stream
                outbox_ids[side] = self.journal.add_outbox(
                    self.result.run_id or 0,
                    self.m.name,
                    side,
                    stream,
                    [
                        {
                            "op": p.op.op.value,
                            "source_key": p.source_key,
                            "target_key": p.target_key,
                            "fields": p.op.fields,
                            "idempotency_key": p.op.idempotency_key,
                        }
                        for p in items
                    ],
                )
        fault_point("after-outbox")
        results: dict[str, list[WriteResult]] = {}
        for side, connector, stream in (
            (TARGET, self.target, self.spec.target_stream),
            (SOURCE, self.source, self.spec.source_stream),
        ):
            ops = [p.op for p, s in writes if s == side]
            if ops:
                results[side] = self._write(connector, stream, ops)
        fault_point("after-write")
        with self.journal.tx():
            for side in (TARGET, SOURCE):
                items = [p for p, s in writes if s == side]
                for p, res in zip(items, results.get(side, []), strict=True):
                    self._record(p, res, side)
                if outbox_ids.get(side):
                    self.journal.finish_outbox(outbox_ids[side])
            for p in noop_links:
                self._record(p, WriteResult(True, key=p.target_key), TARGET)
            for rec, exc, side in failures:
                self._dead_letter(rec, exc, side)
            if self._events:
                self.journal.add_events(self.result.run_id or 0, self.m.name, self._events)
                self._events.clear()
            self.journal.add_run_counts(self.result.run_id or 0, self._run_counts_delta())
            fault_point("during-commit")
            if batch is not None and batch.cursor is not None:
                self._set_cursor(SOURCE, self.spec.source_stream, batch.cursor)
        self._bases.clear()  # only the two writes of one record in this batch share a base
        self.result.tally(None if self.dry_run else KEPT_CHANGES)
        if self.progress is not None:
            self.progress(self.result.counts["read"])

    def _set_cursor(self, side: str, stream: str, cursor: Any) -> None:
        """Store a cursor unless the journal already holds this one: an idle pass writes only its run.

        A connector that found nothing new hands back the very cursor it was given, which is
        recognised without comparing (a Sheets cursor of 100k row hashes costs 0.15 s to hash).
        """
        held, fields_hash = self._cursor_now.get(side, (None, None))
        if fields_hash == self.m.fields_hash and (
            cursor is held or content_hash(to_jsonable(cursor)) == content_hash(to_jsonable(held))
        ):
            return
        self.journal.set_cursor(self.m.name, side, stream, cursor, self.m.fields_hash)
        self._cursor_now[side] = (cursor, self.m.fields_hash)

    def _run_counts_delta(self) -> dict[str, int]:
        keys = ("read", "created", "updated", "deleted", "skipped", "failed", "conflicts")
        previous = self._last_counts
        delta = {k: self.result.counts[k] - previous[k] for k in keys if self.result.counts[k] - previous[k]}
        self._last_counts = Counter({k: self.result.counts[k] for k in keys})
        return delta

    def _count_planned(self, pendings: Iterable[_Pending]) -> None:
        for p in pendings:
            action = {"create": "created", "update": "updated", "delete": "deleted", "flag": "updated"}.get(
                p.change.action, "skipped"
            )
            self.result.counts[action] += 1

    def _write(self, connector: Connector, stream: str, ops: list[WriteOp]) -> list[WriteResult]:
        try:
            results = connector.write(stream, ops)
        except TransientError as exc:
            from syncd.records import RecordFailure

            failure = RecordFailure("transient-exhausted", exc.code, str(exc))
            return [WriteResult(False, error=failure) for _ in ops]
        if len(results) != len(ops):
            raise SyncdError(f"connector returned {len(results)} results for {len(ops)} operations")
        return results

    def _record(self, p: _Pending, res: WriteResult, side: str) -> None:
        counts = self.result.counts
        if not res.ok:
            if p.source_key is not None:
                self._failed_sources.add(p.source_key)
            err = res.error
            category = err.category if err else "validation"
            message = (
                f"{err.code}: {err.message}" if err and err.code else (err.message if err else "write failed")
            )
            letter_side, key = (SOURCE, p.source_key) if side == TARGET else (TARGET, p.target_key)
            record = dict(p.record.fields) if p.record is not None else None
            self.journal.add_dead_letter(
                self.m.name,
                letter_side,
                key,
                category,
                message,
                code=err.code if err else None,
                record=to_jsonable(record) if record is not None else None,
                run_id=self.result.run_id,
            )
            counts["failed"] += 1
            p.change.reason = f"failed: {message}"
            return
        action = p.change.action
        if side == TARGET:
            target_key = res.key or p.target_key
            source_key = p.source_key
        else:
            source_key = res.key or p.source_key
            target_key = p.target_key
        if p.on_ok == "unlink":
            if source_key is not None:
                self.journal.delete_link(self.m.name, source_key)
            counts["deleted"] += 1
        elif p.on_ok == "mark-source-deleted":
            if source_key is not None:
                self.journal.set_link_state(self.m.name, source_key, "source-deleted")
            counts["updated"] += 1
        else:
            assert source_key is not None and target_key is not None
            # Two writes of one record (to each side) each add only what they made true.
            start = self._bases.get(source_key, p.prior)
            keep = set(self.m.target_fields)
            merged = {k: v for k, v in {**start, **p.agreed}.items() if k in keep}
            self._bases[source_key] = merged
            self._save_link(source_key, target_key, merged, p.match_value)
            if action == "create" and side == TARGET and not res.created and self._creates_upsert():
                p.change.action, p.change.reason = "update", "matched existing record"
                counts["updated"] += 1
            elif action == "create":
                counts["created"] += 1
            elif action == "link":
                counts["linked"] += 1
            else:
                counts["updated"] += 1
        if p.source_key is not None:
            self.journal.resolve_dead_letters(self.m.name, SOURCE, [p.source_key])
        if p.target_key is not None:
            self.journal.resolve_dead_letters(self.m.name, TARGET, [p.target_key])
        self._events.append(
            (action, side, source_key, target_key, {k: v for k, (_, v) in p.change.diff.items()})
        )

    def _save_link(
        self, source_key: str, target_key: str, base: dict[str, JSONValue], match_value: str | None
    ) -> None:
        generation = self._generation.get(source_key, self._link_generation.get(source_key, 0))
        self.journal.save_link(
            self.m.name,
            source_key,
            target_key,
            base,
            None,  # the journal hashes the JSON it stores: one encoding of the base, not two
            None,
            None,
            match_value,
            generation=generation,
            period=self.period,
        )

    def _dead_letter(self, rec: Record, exc: RecordError, side: str) -> None:
        self.result.counts["failed"] += 1
        message = f"{exc.field}: {exc.message}" if exc.field else exc.message
        self.journal.add_dead_letter(
            self.m.name,
            side,
            rec.key,
            exc.category,
            message,
            code=exc.code or None,
            field=exc.field,
            record=to_jsonable(dict(rec.fields)),
            run_id=self.result.run_id,
        )

    def _idem(self, action: str, key: str | None, fields: Mapping[str, Any]) -> str:
        return content_hash([self.m.name, action, key, to_jsonable(dict(fields))])


def run_pass(
    project: Project,
    journal: Journal,
    mapping_name: str,
    *,
    dry_run: bool = False,
    full: bool = False,
    progress: ProgressFn | None = None,
    connections: Connections | None = None,
    stop: threading.Event | None = None,
) -> PassResult:
    """Run one pass of one mapping, opening (and closing) its connectors unless given."""
    own = connections is None
    conns = connections or Connections(project)
    try:
        return SyncPass(
            project,
            journal,
            project.mapping(mapping_name),
            conns,
            dry_run=dry_run,
            full=full,
            progress=progress,
            stop=stop,
        ).run()
    finally:
        if own:
            conns.close()


def replay_dead_letters(
    project: Project, journal: Journal, ids: Sequence[int] | None, mapping: str | None
) -> list[PassResult]:
    """Re-plan the records of the given open dead letters (all open ones when `ids` is None)."""
    by_mapping: dict[str, list[Record]] = {}
    for dl in journal.dead_letters(mapping, ids=ids):
        if dl.side == SOURCE and dl.record is not None and dl.record_key is not None:
            by_mapping.setdefault(dl.mapping, []).append(Record(dl.record_key, dl.record))
    results = []
    for name, records in by_mapping.items():
        conns = Connections(project)
        try:
            results.append(SyncPass(project, journal, project.mapping(name), conns).replan(records))
        finally:
            conns.close()
    return results


def resolve_conflict(project: Project, journal: Journal, conflict_id: int, take: str) -> str:
    """Settle an open conflict by taking one side's values for its fields, and write them to the other side.

    Returns a one-line description of what was written. The link's base is updated in the same
    transaction as the conflict's resolution, so the next pass sees the pair in agreement.
    """
    found = journal.conflicts(state="open", ids=[conflict_id])
    if not found:
        raise SyncdError(f"no open conflict with id {conflict_id}")
    c = found[0]
    m = project.mapping(c.mapping)
    values = {name: v[take] for name, v in c.fields.items()}
    links = journal.links_by_source(m.name, [c.source_key])
    if c.source_key not in links:
        raise SyncdError(
            f"conflict {conflict_id}: the link {c.source_key} -> {c.target_key} no longer exists"
        )
    link = links[c.source_key]
    conns = Connections(project)
    try:
        if take == SOURCE:
            connector, stream, key, fields = (
                conns.get(m.spec.target_connection),
                m.spec.target_stream,
                c.target_key,
                values,
            )
        else:
            connector, stream, key = conns.get(m.spec.source_connection), m.spec.source_stream, c.source_key
            fields = m.invert({**link.base, **values}, values)
        op = WriteOp(
            Op.UPDATE, dict(fields), key=key, idempotency_key=content_hash([m.name, "resolve", conflict_id])
        )
        result = connector.write(stream, [op])[0]
    finally:
        conns.close()
    if not result.ok:
        err = result.error
        raise SyncdError(
            f"conflict {conflict_id}: writing failed: {err.code + ': ' if err and err.code else ''}"
            f"{err.message if err else ''}"
        )
    base = {**link.base, **values}
    with journal.tx():
        journal.save_link(m.name, link.source_key, link.target_key, base, None, None, None, link.match_value)
        journal.resolve_conflict(conflict_id, f"took {take}")
    other = TARGET if take == SOURCE else SOURCE
    return f"conflict {conflict_id}: wrote the {take}'s {', '.join(values)} to the {other}"
