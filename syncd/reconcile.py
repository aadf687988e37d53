"""Full comparison of both sides of a mapping, and repair through the engine.

A pass only sees what change feeds report. Reconcile reads both streams in full (not from the
cursor) and compares them with the journal's links, so it finds what feeds never report: rows
deleted by hand, records edited behind syncd's back, links to records that no longer exist, two
records claiming one match value. Repair hands what it found back to the engine (`SyncPass.replan`)
so the mapping's own rules and policies decide what is written; nothing is written here directly.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from syncd.engine import Connections, PassResult, SyncPass, same
from syncd.errors import RecordError
from syncd.journal import Journal, Link
from syncd.mapping import CompiledMapping
from syncd.project import Project
from syncd.records import JSONValue, Record

KINDS = (
    "missing-in-target",  # a source record the mapping covers has no target record
    "missing-in-source",  # a linked source record is gone (a hard delete no feed reported) or a target row has no source
    "dangling-link",  # a link points at a target record that no longer exists
    "differs",  # both exist and a mapped field disagrees
    "duplicate",  # two records on one side share a match value
    "unlinked",  # both sides hold the match value but the journal never linked them
)


@dataclass
class Drift:
    kind: str
    source_key: str | None = None
    target_key: str | None = None
    match_value: str | None = None
    field: str | None = None
    source_value: JSONValue = None
    target_value: JSONValue = None
    detail: str = ""


@dataclass
class ReconcileReport:
    mapping: str
    source_count: int = 0
    target_count: int = 0
    linked: int = 0
    drift: list[Drift] = field(default_factory=list)
    repairs: list[PassResult] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(KINDS, 0)
        for d in self.drift:
            out[d.kind] += 1
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "mapping": self.mapping,
            "source_count": self.source_count,
            "target_count": self.target_count,
            "linked": self.linked,
            "counts": self.counts(),
            "drift": [asdict(d) for d in self.drift],
            "repairs": [{"outcome": r.outcome, "counts": dict(r.counts)} for r in self.repairs],
        }


def _read_all(conns: Connections, connection: str, stream: str) -> Iterator[Record]:
    for batch in conns.get(connection).read(stream, None):
        for rec in batch.records:
            if not rec.deleted:
                yield rec


def reconcile(
    project: Project, journal: Journal, mapping_name: str, *, repair: bool = False, dry_run: bool = False
) -> ReconcileReport:
    m = project.mapping(mapping_name)
    spec = m.spec
    report = ReconcileReport(m.name)
    conns = Connections(project)
    try:
        sources = {r.key: r for r in _read_all(conns, spec.source_connection, spec.source_stream)}
        targets = {r.key: r for r in _read_all(conns, spec.target_connection, spec.target_stream)}
        report.source_count, report.target_count = len(sources), len(targets)
        links = journal.links(m.name)
        report.linked = sum(1 for lk in links if lk.state == "active")
        resolver = SyncPass(project, journal, m, conns, dry_run=True)
        plan = _compare(m, resolver, sources, targets, links, report)
        if repair:
            report.repairs = _repair(project, journal, m, conns, plan, dry_run)
    finally:
        conns.close()
    return report


@dataclass
class _Plan:
    replan: list[Record] = field(default_factory=list)
    bases: dict[str, dict[str, JSONValue]] = field(default_factory=dict)
    target_views: list[Record] = field(default_factory=list)
    forget_links: list[str] = field(default_factory=list)
    conflicts: list[tuple[str, str, dict[str, dict[str, JSONValue]]]] = field(default_factory=list)


def _compare(
    m: CompiledMapping,
    resolver: SyncPass,
    sources: dict[str, Record],
    targets: dict[str, Record],
    links: list[Link],
    report: ReconcileReport,
) -> _Plan:
    plan = _Plan()
    drift = report.drift
    by_source = {lk.source_key: lk for lk in links}
    by_target = {lk.target_key: lk for lk in links}

    src_by_match: dict[str, list[str]] = defaultdict(list)
    covered: dict[str, Record] = {}
    for key, rec in sources.items():
        try:
            if not m.keeps(rec.fields):
                continue
        except RecordError:
            continue
        covered[key] = rec
        mv = m.source_match_value(rec.fields)
        if mv is not None:
            src_by_match[mv].append(key)
    tgt_by_match: dict[str, list[str]] = defaultdict(list)
    for key, trec in targets.items():
        mv = m.target_match_value(trec.fields)
        if mv is not None:
            tgt_by_match[mv].append(key)
    for side, groups in (("source", src_by_match), ("target", tgt_by_match)):
        for mv, keys in sorted(groups.items()):
            if len(keys) > 1:
                drift.append(
                    Drift("duplicate", match_value=mv, detail=f"{side} records {', '.join(sorted(keys))}")
                )

    for lk in links:
        if lk.state != "active":
            continue
        src, tgt = sources.get(lk.source_key), targets.get(lk.target_key)
        if src is None:
            drift.append(
                Drift(
                    "missing-in-source",
                    lk.source_key,
                    lk.target_key,
                    lk.match_value,
                    detail="linked source record no longer exists",
                )
            )
            plan.replan.append(Record(lk.source_key, {}, deleted=True))
        elif tgt is None:
            drift.append(
                Drift(
                    "dangling-link",
                    lk.source_key,
                    lk.target_key,
                    lk.match_value,
                    detail="linked target record no longer exists",
                )
            )
            if lk.source_key in covered:
                plan.forget_links.append(lk.source_key)
                plan.replan.append(src)
        elif lk.source_key in covered:
            _compare_values(m, resolver, src, tgt, lk, plan, drift)

    for key, rec in covered.items():
        if key in by_source:
            continue
        mv = m.source_match_value(rec.fields)
        existing = tgt_by_match.get(mv or "", [])
        if existing:
            drift.append(Drift("unlinked", key, existing[0], mv, detail="both sides hold the match value"))
        else:
            drift.append(Drift("missing-in-target", key, None, mv))
        plan.replan.append(rec)

    for key, trec in targets.items():
        if key in by_target:
            continue
        mv = m.target_match_value(trec.fields)
        if mv is not None and mv in src_by_match:
            continue  # reported above as unlinked
        drift.append(Drift("missing-in-source", None, key, mv, detail="target record has no source record"))
    return plan


def _compare_values(
    m: CompiledMapping,
    resolver: SyncPass,
    src: Record,
    tgt: Record,
    lk: Link,
    plan: _Plan,
    drift: list[Drift],
) -> None:
    try:
        mapped = m.apply(src.fields, resolver.resolve_lookups([src]))
    except RecordError as exc:
        drift.append(
            Drift("differs", src.key, tgt.key, lk.match_value, exc.field, detail=f"cannot map: {exc}")
        )
        return
    differing = {
        name: (value, tgt.fields.get(name))
        for name, value in mapped.items()
        if not same(value, tgt.fields.get(name))
    }
    if not differing:
        return
    for name, (s, t) in differing.items():
        drift.append(Drift("differs", src.key, tgt.key, lk.match_value, name, s, t))
    policy = m.spec.conflict
    target_wins = m.two_way and (
        policy == "target-wins"
        or (
            policy == "newest-wins"
            and src.modified_at
            and tgt.modified_at
            and tgt.modified_at > src.modified_at
        )
    )
    if m.two_way and policy == "manual":
        fields = {n: {"base": lk.base.get(n), "source": s, "target": t} for n, (s, t) in differing.items()}
        plan.conflicts.append((src.key, tgt.key, fields))
        return
    if target_wins:
        # The engine sees the source as agreed and the target as changed: the target's values flow back.
        plan.bases[src.key] = dict(mapped)
        plan.target_views.append(tgt)
    else:
        # The engine sees the target's values as agreed and the source as changed: the source's flow out.
        plan.bases[src.key] = {**mapped, **{n: t for n, (_, t) in differing.items()}}
    plan.replan.append(src)


def _repair(
    project: Project, journal: Journal, m: CompiledMapping, conns: Connections, plan: _Plan, dry_run: bool
) -> list[PassResult]:
    if plan.conflicts and not dry_run:
        with journal.tx():
            for source_key, target_key, fields in plan.conflicts:
                journal.add_conflict(m.name, source_key, target_key, fields)
    if not plan.replan:
        return []
    sync = SyncPass(project, journal, m, conns, dry_run=dry_run)
    return [
        sync.replan(plan.replan, bases=plan.bases, target_records=plan.target_views, forget=plan.forget_links)
    ]
