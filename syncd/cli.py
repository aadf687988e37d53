"""The `syncd` command.

Exit codes mean something to scripts and service managers: 0 all good, 1 the run recorded
failures (dead letters, conflicts, a mapping that failed), 2 the configuration is wrong.
Every command that shows data has `--json` for scripts.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from syncd import __version__
from syncd.errors import ConfigError, SyncdError
from syncd.journal import Journal, JournalError

EXIT_OK, EXIT_FAILURES, EXIT_CONFIG = 0, 1, 2
CONFIG_CANDIDATES = ("syncd.yaml", "config/syncd.yaml")

# Wide when piped: tables in CI logs and files should not be squeezed to 80 columns.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, soft_wrap=True)  # messages never wrapped: paths stay whole


class Ctx:
    def __init__(self, config: str | None, as_json: bool, verbose: int = 0, log_format: str = "auto") -> None:
        self.config = config
        self.as_json = as_json
        self.verbose = verbose
        self.log_format = log_format

    def config_path(self) -> Path:
        if self.config:
            return Path(self.config)
        if os.environ.get("SYNCD_CONFIG"):
            return Path(os.environ["SYNCD_CONFIG"])
        for candidate in CONFIG_CANDIDATES:
            if Path(candidate).exists():
                return Path(candidate)
        raise ConfigError(
            f"no config file: give --config, set SYNCD_CONFIG, or create {CONFIG_CANDIDATES[0]}"
        )

    def project(self) -> Any:
        from syncd.project import load_project

        return load_project(self.config_path())

    @contextmanager
    def journal(self, project: Any, *, writes: bool = False) -> Iterator[Journal]:
        """The journal; `writes` also takes the daemon's lock, so a command that syncs or repairs
        never runs a mapping at the same time as a running `syncd run` (read-only commands don't)."""
        from syncd.service import JournalLock

        lock = JournalLock(project.journal_path) if writes else None
        if lock is not None:
            lock.acquire()
        journal = Journal(project.journal_path)
        try:
            yield journal
        finally:
            journal.close()
            if lock is not None:
                lock.release()


def emit_json(value: Any) -> None:
    click.echo(json.dumps(value, default=str, ensure_ascii=False))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-c",
    "--config",
    metavar="PATH",
    help="syncd.yaml to use (default: $SYNCD_CONFIG, ./syncd.yaml, ./config/syncd.yaml).",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Machine-readable output (one JSON document or JSON lines)."
)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option(
    "--log-format",
    type=click.Choice(["auto", "text", "json"]),
    default="auto",
    show_default=True,
    help="Log lines as text or JSON; auto is text, except `syncd run` without a terminal (a service) logs JSON.",
)
@click.version_option(__version__, prog_name="syncd")
@click.pass_context
def cli(ctx: click.Context, config: str | None, as_json: bool, verbose: int, log_format: str) -> None:
    """syncd keeps Salesforce, spreadsheets and mailboxes in agreement."""
    from syncd.logs import setup_logging

    level = max(logging.WARNING - 10 * verbose, logging.DEBUG)
    setup_logging(level, "json" if log_format == "json" else "text")
    ctx.obj = Ctx(config, as_json, verbose, log_format)


# -- validate ---------------------------------------------------------------------------------


@cli.command()
@click.option(
    "--online", is_flag=True, help="Also check stream and field names against the live connections."
)
@click.pass_obj
def validate(c: Ctx, online: bool) -> int:
    """Check syncd.yaml and every mapping file; list every problem with file:line:col."""
    project = c.project()
    problems: list[str] = []
    if online:
        from syncd.online import online_problems

        problems = online_problems(project)
    if c.as_json:
        emit_json({"ok": not problems, "mappings": sorted(project.mappings), "problems": problems})
    else:
        for p in problems:
            err.print(p, markup=False)
        if not problems:
            out.print(
                f"ok: {len(project.connections)} connections, {len(project.mappings)} mappings "
                f"({', '.join(sorted(project.mappings))})",
                markup=False,
            )
    return EXIT_CONFIG if problems else EXIT_OK


# -- sync -------------------------------------------------------------------------------------


@cli.command()
@click.argument("mappings", nargs=-1)
@click.option(
    "--once",
    is_flag=True,
    default=True,
    help="Run one pass of each mapping and exit (the default; `syncd run` keeps going).",
)
@click.option("--dry-run", is_flag=True, help="Print the plan per record and write nothing.")
@click.option(
    "--full",
    is_flag=True,
    help="Ignore the cursors: read both sides in full (unchanged records are still skipped).",
)
@click.pass_obj
def sync(c: Ctx, mappings: Sequence[str], once: bool, dry_run: bool, full: bool) -> int:
    """Run a sync pass of MAPPINGS (all, in lookup order, when none are named)."""
    from syncd.engine import Connections, PassResult, run_pass

    project = c.project()
    names = list(mappings) or project.lookup_order()
    for name in names:
        project.mapping(name)
    results: list[PassResult] = []
    with c.journal(project, writes=not dry_run) as journal:
        conns = Connections(project)
        try:
            for name in names:
                with _progress(name, enabled=not c.as_json and err.is_terminal) as progress:
                    results.append(
                        run_pass(
                            project,
                            journal,
                            name,
                            dry_run=dry_run,
                            full=full,
                            progress=progress,
                            connections=conns,
                        )
                    )
        finally:
            conns.close()
    if c.as_json:
        for r in results:
            doc: dict[str, Any] = {
                "mapping": r.mapping,
                "run_id": r.run_id,
                "outcome": r.outcome,
                "counts": dict(r.counts),
                "message": r.message,
            }
            if dry_run:
                doc["plan"] = [ch.to_json() for ch in r.changes]
            emit_json(doc)
    else:
        if dry_run:
            for r in results:
                _print_plan(r)
        _print_results(results, dry_run)
    if any(r.failed for r in results):
        return EXIT_FAILURES
    return EXIT_OK


@contextmanager
def _progress(name: str, enabled: bool) -> Iterator[Any]:
    if not enabled:
        yield None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err, transient=True
    ) as bar:
        task = bar.add_task(f"{name}: starting")

        def update(read: int) -> None:
            bar.update(task, description=f"{name}: {read} records read")

        yield update


def _print_plan(r: Any) -> None:
    out.print(f"[bold]{r.mapping}[/bold] (dry run: nothing written)")
    if not r.changes:
        out.print("  nothing to do")
    for ch in r.changes:
        who = ch.target_key or ch.source_key or "?"
        reason = f" ({ch.reason})" if ch.reason else ""
        out.print(f"  {ch.action:<11} {ch.side:<6} {who}{reason}", markup=False)
        for field, (old, new) in ch.diff.items():
            out.print(f"      {field}: {old!r} -> {new!r}", markup=False)


def _print_results(results: Sequence[Any], dry_run: bool) -> None:
    table = Table(title="planned (dry run)" if dry_run else None)
    for col in (
        "mapping",
        "read",
        "created",
        "updated",
        "deleted",
        "skipped",
        "failed",
        "conflicts",
        "outcome",
    ):
        table.add_column(col, justify="left" if col in ("mapping", "outcome") else "right")
    for r in results:
        table.add_row(
            r.mapping,
            *(
                str(r.counts.get(k, 0))
                for k in ("read", "created", "updated", "deleted", "skipped", "failed", "conflicts")
            ),
            r.outcome,
        )
    out.print(table)
    for r in results:
        if r.message:
            err.print(f"{r.mapping}: {r.message}", markup=False)


# -- inspection -------------------------------------------------------------------------------


@cli.command()
@click.argument("connection")
@click.argument("stream", required=False)
@click.pass_obj
def fields(c: Ctx, connection: str, stream: str | None) -> int:
    """List the streams of CONNECTION, or the fields of one STREAM, as the live system describes them."""
    project = c.project()
    if connection not in project.connections:
        raise ConfigError(f"no connection named {connection!r} (known: {', '.join(project.connections)})")
    connector = project.connect(connection)
    try:
        streams = connector.streams()
    finally:
        connector.close()
    if stream is not None:
        streams = [s for s in streams if s.name == stream]
        if not streams:
            raise SyncdError(f"{connection} has no stream {stream!r}")
    if c.as_json:
        emit_json(
            [
                {
                    "name": s.name,
                    "key_field": s.key_field,
                    "capabilities": sorted(s.capabilities),
                    "fields": [
                        vars(f) if hasattr(f, "__dict__") else {k: getattr(f, k) for k in f.__slots__}
                        for f in s.fields
                    ],
                }
                for s in streams
            ]
        )
        return EXIT_OK
    for s in streams:
        if stream is None:
            out.print(f"{connection}.{s.name}  key: {s.key_field}  fields: {len(s.fields)}", markup=False)
            continue
        table = Table(title=f"{connection}.{s.name} (key: {s.key_field})")
        for col in ("field", "type", "createable", "updateable", "external id"):
            table.add_column(col)
        for f in s.fields:
            table.add_row(f.name, f.type, _yes(f.createable), _yes(f.updateable), _yes(f.external_id))
        out.print(table)
    return EXIT_OK


def _yes(flag: bool) -> str:
    return "yes" if flag else ""


@cli.command()
@click.pass_obj
def transforms(c: Ctx) -> int:
    """List the transforms a mapping may use, with what they do."""
    from syncd.transforms import TRANSFORMS

    if c.as_json:
        emit_json({name: spec.doc for name, spec in sorted(TRANSFORMS.items())})
        return EXIT_OK
    for name, spec in sorted(TRANSFORMS.items()):
        first, _, rest = spec.doc.strip().partition("\n")
        out.print(f"[bold]{name}[/bold]  {first}")
        for line in rest.strip().splitlines():
            out.print(f"    {line}", markup=False)
    return EXIT_OK


@cli.command()
@click.argument("mapping")
@click.argument("key", required=False)
@click.pass_obj
def links(c: Ctx, mapping: str, key: str | None) -> int:
    """The identity map of MAPPING: which source record is which target record (optionally for one KEY)."""
    project = c.project()
    project.mapping(mapping)
    with c.journal(project) as journal:
        found = journal.links(mapping, key)
    if c.as_json:
        emit_json(
            [
                {
                    "source_key": lk.source_key,
                    "target_key": lk.target_key,
                    "state": lk.state,
                    "match_value": lk.match_value,
                    "base": lk.base,
                }
                for lk in found
            ]
        )
        return EXIT_OK
    table = Table(title=f"links of {mapping}")
    for col in ("source key", "target key", "match value", "state"):
        table.add_column(col)
    for lk in found:
        table.add_row(lk.source_key, lk.target_key, lk.match_value or "", lk.state)
    out.print(table)
    if key is not None:
        for lk in found:
            for name, value in lk.base.items():
                out.print(f"  {name}: {value!r}", markup=False)
    return EXIT_OK


@cli.group("dead-letters")
def dead_letters() -> None:
    """Records that could not be synced, with the reason; replay them once the cause is fixed."""


@dead_letters.command("list")
@click.option("--mapping", "-m")
@click.option("--all", "show_all", is_flag=True, help="Include resolved ones.")
@click.pass_obj
def dead_letters_list(c: Ctx, mapping: str | None, show_all: bool) -> int:
    """List open dead letters."""
    project = c.project()
    with c.journal(project) as journal:
        letters = journal.dead_letters(mapping, state=None if show_all else "open")
    if c.as_json:
        emit_json(
            [
                {
                    "id": d.id,
                    "mapping": d.mapping,
                    "side": d.side,
                    "key": d.record_key,
                    "category": d.category,
                    "code": d.code,
                    "field": d.field,
                    "message": d.message,
                    "state": d.state,
                    "attempts": d.attempts,
                    "first_seen": d.first_seen,
                    "last_seen": d.last_seen,
                }
                for d in letters
            ]
        )
        return EXIT_OK
    table = Table(title="dead letters")
    for col in ("id", "mapping", "side", "key", "category", "message", "attempts", "state"):
        table.add_column(col)
    for d in letters:
        table.add_row(
            str(d.id), d.mapping, d.side, d.record_key or "", d.category, d.message, str(d.attempts), d.state
        )
    out.print(table)
    return EXIT_OK


@dead_letters.command("replay")
@click.argument("ids", nargs=-1, type=int)
@click.option("--mapping", "-m")
@click.option("--all", "replay_all", is_flag=True, help="Replay every open dead letter (of --mapping).")
@click.pass_obj
def dead_letters_replay(c: Ctx, ids: Sequence[int], mapping: str | None, replay_all: bool) -> int:
    """Try the records of dead letters IDS again (or --all)."""
    from syncd.engine import replay_dead_letters

    if not ids and not replay_all:
        raise click.UsageError("give dead-letter ids, or --all")
    project = c.project()
    with c.journal(project, writes=True) as journal:
        results = replay_dead_letters(project, journal, list(ids) if ids else None, mapping)
        still_open = len(journal.dead_letters(mapping, ids=list(ids) if ids else None))
    if c.as_json:
        emit_json(
            {
                "results": [
                    {"mapping": r.mapping, "outcome": r.outcome, "counts": dict(r.counts)} for r in results
                ],
                "still_open": still_open,
            }
        )
    else:
        _print_results(results, False)
        out.print(f"{still_open} dead letters still open", markup=False)
    return EXIT_FAILURES if still_open else EXIT_OK


@cli.group()
def conflicts() -> None:
    """Fields changed on both sides of a two-way mapping that the `manual` policy left for a person."""


@conflicts.command("list")
@click.option("--mapping", "-m")
@click.pass_obj
def conflicts_list(c: Ctx, mapping: str | None) -> int:
    """List open conflicts with the base, source and target value of each field."""
    project = c.project()
    with c.journal(project) as journal:
        found = journal.conflicts(mapping)
    if c.as_json:
        emit_json(
            [
                {
                    "id": x.id,
                    "mapping": x.mapping,
                    "source_key": x.source_key,
                    "target_key": x.target_key,
                    "fields": x.fields,
                    "created_at": x.created_at,
                }
                for x in found
            ]
        )
        return EXIT_OK
    if not found:
        out.print("no open conflicts")
    for x in found:
        out.print(f"[bold]#{x.id}[/bold] {x.mapping}: {x.source_key} <-> {x.target_key}  ({x.created_at})")
        for name, v in x.fields.items():
            out.print(
                f"    {name}: base {v['base']!r}, source {v['source']!r}, target {v['target']!r}",
                markup=False,
            )
    return EXIT_OK


@conflicts.command("resolve")
@click.argument("conflict_id", type=int)
@click.option("--take", type=click.Choice(["source", "target"]), required=True, help="Whose values win.")
@click.pass_obj
def conflicts_resolve(c: Ctx, conflict_id: int, take: str) -> int:
    """Settle conflict CONFLICT_ID by taking one side's values and writing them to the other."""
    from syncd.engine import resolve_conflict

    project = c.project()
    with c.journal(project, writes=True) as journal:
        message = resolve_conflict(project, journal, conflict_id, take)
    if c.as_json:
        emit_json({"id": conflict_id, "resolved": True, "message": message})
    else:
        out.print(message, markup=False)
    return EXIT_OK


@cli.command()
@click.pass_obj
def status(c: Ctx) -> int:
    """Per mapping: last pass, outcome, counts, lag, pending outbox, dead letters, conflicts.

    Read from the journal only, so it works while `syncd run` is running.
    """
    project = c.project()
    with c.journal(project) as journal:
        last = journal.last_runs()
        rows = []
        for name in project.lookup_order():
            run = last.get(name) or {}
            rows.append(
                {
                    "mapping": name,
                    "last_pass": run.get("finished_at") or run.get("started_at"),
                    "outcome": run.get("outcome"),
                    **{k: run.get(k) for k in ("read", "created", "updated", "deleted", "skipped", "failed")},
                    "lag_seconds": _lag_seconds(run),
                    **journal.counts(name),
                }
            )
    needs_person = any(r["dead_letters"] or r["conflicts"] or r["outcome"] == "failed" for r in rows)
    if c.as_json:
        emit_json(rows)
        return EXIT_FAILURES if needs_person else EXIT_OK
    table = Table(title="syncd status")
    cols = (
        "mapping",
        "last_pass",
        "outcome",
        "created",
        "updated",
        "failed",
        "lag_seconds",
        "pending",
        "dead_letters",
        "conflicts",
        "links",
    )
    for col in cols:
        table.add_column("lag" if col == "lag_seconds" else col.replace("_", " "))
    for r in rows:
        table.add_row(
            *(_duration(r[k]) if k == "lag_seconds" else "" if r[k] is None else str(r[k]) for k in cols)
        )
    out.print(table)
    return EXIT_FAILURES if needs_person else EXIT_OK


def _lag_seconds(run: dict[str, Any]) -> float | None:
    """How far behind its source the mapping was when its last pass ended: the pass's end minus the
    newest source change it carried; 0 when it read nothing new; None when unknown (no pass yet,
    still running, or a source that does not tell when records changed)."""
    from datetime import UTC, datetime

    finished = run.get("finished_at")
    if not finished:
        return None
    if run.get("newest_change"):
        newest = datetime.fromisoformat(run["newest_change"])
        if newest.tzinfo is None:
            newest = newest.replace(tzinfo=UTC)
        return round(max(0.0, (datetime.fromisoformat(finished) - newest).total_seconds()), 3)
    return 0.0 if not run.get("read") else None


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    whole = int(seconds)
    if whole < 60:
        return f"{seconds:.0f}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


@cli.command("run")
@click.pass_obj
def run_command(c: Ctx) -> int:
    """Run as a service: every mapping on its schedule, metrics and probes on metrics.listen.

    SIGTERM/SIGINT finish the batches in hand and exit 0; SIGHUP (or an edited config or mapping
    file) reloads the config when it is valid and keeps the old one when it is not.
    """
    from syncd.logs import setup_logging
    from syncd.service import Daemon

    level = max(logging.INFO - 10 * c.verbose, logging.DEBUG)
    fmt = c.log_format
    if fmt == "auto":
        fmt = "text" if sys.stderr.isatty() else "json"
    setup_logging(level, "json" if fmt == "json" else "text")
    return Daemon(c.config_path()).run()


@cli.command()
@click.option(
    "--write", "do_write", is_flag=True, help="Regenerate config/schema/*.json (in a source checkout)."
)
@click.pass_obj
def schema(c: Ctx, do_write: bool) -> int:
    """Print (or --write) the JSON Schemas of syncd.yaml and mapping files, for editor autocompletion."""
    from syncd import schema as schemas

    if do_write:
        for path in schemas.write():
            out.print(f"wrote {path}", markup=False)
        return EXIT_OK
    emit_json({name: json.loads(text) for name, text in schemas.rendered().items()})
    return EXIT_OK


@cli.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to put the demo company (default: a new temporary folder).",
)
@click.option(
    "--keep-running",
    is_flag=True,
    help="Afterwards leave the sandboxes and a `syncd run` daemon up for exploring, until Ctrl-C.",
)
@click.pass_obj
def demo(c: Ctx, directory: Path | None, keep_running: bool) -> int:
    """Start the sandboxes, seed a small company, run the shipped mappings through a coordinator's day,
    and show what happened."""
    from syncd.demo import run_demo

    return run_demo(directory, out, as_json=c.as_json, keep_running=keep_running)


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table")
@click.pass_obj
def report(c: Ctx, fmt: str) -> int:
    """The coordinator's KPIs: email response time, case resolution, open cases by age, orders waiting,
    low-stock items (read from the journal and the systems)."""
    from syncd.report import build_report, print_report

    project = c.project()
    with c.journal(project) as journal:
        result = build_report(project, journal)
    if c.as_json or fmt == "json":
        emit_json(result.to_json())
    elif fmt == "csv":
        import csv

        writer = csv.writer(sys.stdout)
        writer.writerow(["kpi", "value", "unit"])
        writer.writerows(result.rows())
    else:
        print_report(result, out)
    return EXIT_OK


@cli.command()
@click.argument("mapping")
@click.option("--repair", is_flag=True, help="Fix what the mapping's policies allow, through the engine.")
@click.option("--dry-run", is_flag=True, help="With --repair: print what would be written, write nothing.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table")
@click.pass_obj
def reconcile(c: Ctx, mapping: str, repair: bool, dry_run: bool, fmt: str) -> int:
    """Compare both sides of MAPPING in full and report drift (exit 1 when there is any)."""
    from syncd.reconcile import reconcile as run_reconcile

    project = c.project()
    with c.journal(project, writes=repair and not dry_run) as journal:
        report = run_reconcile(project, journal, mapping, repair=repair, dry_run=dry_run)
    if c.as_json or fmt == "json":
        emit_json(report.to_json())
    elif fmt == "csv":
        import csv

        writer = csv.writer(sys.stdout)
        writer.writerow(
            [
                "kind",
                "source_key",
                "target_key",
                "match_value",
                "field",
                "source_value",
                "target_value",
                "detail",
            ]
        )
        for d in report.drift:
            writer.writerow(
                [
                    d.kind,
                    d.source_key,
                    d.target_key,
                    d.match_value,
                    d.field,
                    d.source_value,
                    d.target_value,
                    d.detail,
                ]
            )
    else:
        out.print(
            f"{mapping}: {report.source_count} source, {report.target_count} target, {report.linked} linked",
            markup=False,
        )
        table = Table(title="drift" if report.drift else "no drift")
        for col in ("kind", "source key", "target key", "field", "source value", "target value", "detail"):
            table.add_column(col)
        for d in report.drift:
            table.add_row(
                d.kind,
                d.source_key or "",
                d.target_key or "",
                d.field or "",
                "" if d.source_value is None else repr(d.source_value),
                "" if d.target_value is None else repr(d.target_value),
                d.detail,
            )
        if report.drift:
            out.print(table)
        for r in report.repairs:
            if dry_run:
                _print_plan(r)
            _print_results([r], dry_run)
    return EXIT_FAILURES if report.drift else EXIT_OK


@cli.command()
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="First line of output: one JSON object, how to reach each service.",
)
@click.option(
    "--port-base",
    type=click.IntRange(1, 65532),
    help="Fixed ports: Salesforce N, Sheets N+1, IMAP N+2, SMTP N+3 (default: free ports).",
)
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep records, sheets, mail and credentials here between runs (default: a temporary folder).",
)
@click.option(
    "--seed",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="YAML with salesforce / sheets / mail sections, loaded into a new --data folder.",
)
@click.option(
    "--mail-tls", is_flag=True, help="Serve IMAPS and SMTPS (implicit TLS) instead of plain IMAP and SMTP."
)
@click.pass_obj
def sandbox(
    c: Ctx, as_json: bool, port_base: int | None, data_dir: Path | None, seed: Path | None, mail_tls: bool
) -> int:
    """Serve local stand-ins of Salesforce, Google Sheets, IMAP and SMTP until SIGTERM or Ctrl-C."""
    from syncd.sandbox.serve import Sandboxes, StopSignals

    with StopSignals() as stop, Sandboxes(data_dir, port_base, seed, mail_tls) as running:
        info = running.info()
        if as_json or c.as_json:
            emit_json(info)
        else:
            for name, service in info.items():
                where = (
                    service.get("instance_url")
                    or service.get("base_url")
                    or f"{service['host']}:{service['port']}"
                )
                out.print(f"{name:<11} {where}", markup=False)
            out.print(f"credentials and CA files: {running.info_file}; stop with Ctrl-C", markup=False)
        sys.stdout.flush()
        stop.wait()
    return EXIT_OK


# -- entry points -----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run the CLI in-process and return its exit code (tests call this directly)."""
    try:
        result = cli.main(args=argv, prog_name="syncd", standalone_mode=False)
    except ConfigError as exc:
        for problem in exc.problems:
            err.print(str(problem), markup=False)
        return EXIT_CONFIG
    except JournalError as exc:
        err.print(f"error: {exc}", markup=False)
        return EXIT_CONFIG
    except SyncdError as exc:
        err.print(f"error: {exc}", markup=False)
        return EXIT_FAILURES
    except click.exceptions.Abort:
        err.print("aborted")
        return 130
    except click.ClickException as exc:
        exc.show()
        return EXIT_CONFIG if isinstance(exc, click.UsageError) else EXIT_FAILURES
    if isinstance(result, int):
        return result
    return EXIT_OK


def run() -> None:
    """Console-script entry point."""
    sys.exit(main(sys.argv[1:]))
