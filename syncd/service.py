"""`syncd run`: the long-running daemon that runs every mapping on its own schedule.

What it promises an operator:

- each mapping runs on its interval (spread by jitter) or cron schedule; a mapping whose source can
  be watched (IMAP IDLE) is also woken at once when its source changes;
- different mappings run in parallel up to `service.concurrency`; one mapping never twice at once;
  a mapping whose lookups go through another waits for that one when both are due;
- a mapping whose pass fails as a whole (system down, credentials refused) backs off, capped and
  exponentially, and is reported; the others keep running;
- SIGTERM/SIGINT stop scheduling, let each running pass finish the batch in hand and commit, and
  exit 0 within `service.grace_seconds`;
- SIGHUP, or a changed config or mapping file, loads and validates the new config; a valid one is
  applied mapping by mapping (added, removed, changed) without disturbing the others, an invalid
  one is reported and the old one kept;
- one daemon per journal, enforced by an fcntl lock on `<journal>.lock`.

Every pass gets its own Journal (its own SQLite connection); WAL and the busy timeout let them
commit side by side. All state that matters lives in the journal; what is kept in memory here
(next due times, back-off) is cheap to lose on a restart.
"""

from __future__ import annotations

import fcntl
import glob
import logging
import os
import random
import signal
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import IO, Any

from croniter import croniter

from syncd import __version__
from syncd.config import ServiceSettings, interval_seconds
from syncd.engine import Connections, PassResult, run_pass
from syncd.errors import ConfigError, SyncdError
from syncd.journal import Journal
from syncd.logs import secret_filter, secrets_of
from syncd.metrics import (
    HttpServer,
    JournalCollector,
    KpiCollector,
    Metrics,
    PrometheusTelemetry,
    WatchIdleCollector,
    make_app,
    serve,
)
from syncd.plugins import load_connector_class
from syncd.project import Project, load_project
from syncd.records import Watcher, content_hash, set_telemetry, telemetry
from syncd.report import Report, build_report

log = logging.getLogger("syncd.service")


class AlreadyRunning(SyncdError):
    """Another daemon holds the journal's lock."""


class JournalLock:
    """An exclusive fcntl lock on `<journal>.lock`, held for the daemon's lifetime.

    flock is released by the kernel when the process dies, however it dies, so a crashed daemon
    never leaves a stale lock behind; the pid written inside is only for the error message.
    """

    def __init__(self, journal_path: Path) -> None:
        self.path = journal_path.with_name(journal_path.name + ".lock")
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 (held open while locked)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise AlreadyRunning(
                f"another syncd (pid {holder}) is already running on this journal ({self.path}); "
                "stop it first, or give this one its own journal"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def journal_writable(path: Path) -> tuple[bool, str]:
    """Can a write transaction start on the journal? Busy counts as writable: someone is writing."""
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True, timeout=1)
    except sqlite3.Error as exc:
        return False, f"cannot open: {exc}"
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return True, "writable"
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            return True, "writable (a pass is committing)"
        return False, str(exc)
    finally:
        conn.close()


def mapping_fingerprint(project: Project, name: str) -> str:
    """Changes when anything a pass of this mapping depends on changes: its spec or its connections.

    Only hashed, never shown: connection settings hold resolved secrets.
    """
    spec = project.mappings[name].spec
    conns = {spec.source_connection, spec.target_connection}
    for f in project.mappings[name].lookups:
        if f.lookup is not None and f.lookup.stream:
            conns.add(f.lookup.stream.split(".", 1)[0])
    return content_hash(
        {
            "spec": spec.model_dump(mode="json", by_alias=True),
            "connections": {
                c: project.connections[c].settings.model_dump(mode="json")
                for c in sorted(conns)
                if c in project.connections
            },
            "retention": project.settings.events_retention_days,
        }
    )


def next_run(schedule: str, after: float, jitter: float, rng: random.Random) -> float:
    """When a mapping with this schedule runs next, as Unix time: an interval spread by +-jitter, or
    the cron expression's next time (cron times are exact: someone chose them)."""
    seconds = interval_seconds(schedule)
    if seconds is not None:
        return after + seconds * (1 + rng.uniform(-jitter, jitter))
    nxt: datetime = croniter(schedule, datetime.fromtimestamp(after, UTC)).get_next(datetime)
    return nxt.timestamp()


@dataclass
class MappingState:
    """What the scheduler knows of one mapping between passes."""

    name: str
    fingerprint: str
    next_due: float
    failures: int = 0
    failing_since: float | None = None
    last_outcome: str | None = None
    last_message: str = ""
    last_end: float | None = None
    woken: bool = False  # a watcher saw a change while the mapping was running or waiting
    watcher_stop: threading.Event | None = None


class Daemon:
    """The scheduler. `run()` blocks until stopped and returns the process exit code.

    Building it loads and checks the config (ConfigError when it is wrong); `run()` takes the
    journal lock. `install_signals=False` lets a test drive it in-process with request_stop().
    """

    def __init__(
        self, config_path: Path, metrics: Metrics | None = None, *, install_signals: bool = True
    ) -> None:
        self.config_path = Path(config_path)
        self.metrics = metrics if metrics is not None else Metrics()
        self.install_signals = install_signals
        self.project: Project = load_project(self.config_path)
        self.settings: ServiceSettings = self.project.settings.service
        self.journal_path = self.project.journal_path
        self._lock = JournalLock(self.journal_path)
        self._mu = threading.Lock()
        self._kick = threading.Event()
        self._stop = threading.Event()
        self._reload_requested = threading.Event()
        self._states: dict[str, MappingState] = {}
        self._running: dict[str, threading.Thread] = {}
        self._pools: dict[str, tuple[Project, Connections]] = {}  # mapping -> connectors kept open
        self._rng = random.Random()
        self._heartbeat = time.monotonic()
        self._started = time.time()
        self._last_reload_ok = True
        self._last_reload_message = ""
        self._files: dict[str, tuple[int, int]] = {}
        self._http: HttpServer | None = None
        self._collector = JournalCollector(
            lambda: Journal(self.journal_path), lambda: list(self.project.mappings)
        )
        self._telemetry = PrometheusTelemetry(self.metrics, self.project.connections)

    # -- the public surface ---------------------------------------------------------------

    def run(self) -> int:
        """Lock the journal, serve metrics, schedule until asked to stop; 0 when every pass ended in time."""
        self._lock.acquire()
        previous_telemetry = telemetry()
        try:
            Journal(self.journal_path).close()  # create or migrate it before any pass or scrape
            self.metrics.registry.register(self._collector)
            self.metrics.registry.register(WatchIdleCollector(self.metrics))
            self.metrics.registry.register(KpiCollector(self._kpi_report))
            set_telemetry(self._telemetry)
            self._apply_secrets()
            listen = self.project.settings.metrics.listen
            try:
                self._http = serve(listen, make_app(self.metrics.registry, self.health, self.readiness))
            except (OSError, ValueError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                raise SyncdError(f"metrics.listen {listen!r}: cannot serve HTTP there: {reason}") from None
            self.metrics.config_loaded_at.set_to_current_time()
            self._files = self._watched_files(self.project)
            now = time.time()
            for name in self.project.lookup_order():
                self._add_mapping(name, now)
            if self.install_signals:
                self._install_signal_handlers()
            log.info(
                "syncd %s running %d mappings; metrics on http://%s/metrics",
                __version__,
                len(self._states),
                self._http.address,
                extra={"listen": self._http.address, "mappings": sorted(self._states)},
            )
            self._loop()
            return self._shutdown()
        finally:
            set_telemetry(previous_telemetry)
            if self._http is not None:
                self._http.close()
            self._collector.close()
            self._lock.release()

    def request_stop(self) -> None:
        self._stop.set()
        self._kick.set()

    def request_reload(self) -> None:
        self._reload_requested.set()
        self._kick.set()

    def wake(self, mapping: str) -> None:
        """Run `mapping` as soon as it is free (its source reported a change)."""
        with self._mu:
            state = self._states.get(mapping)
            if state is not None:
                state.woken = True
        self._kick.set()

    @property
    def address(self) -> str | None:
        return self._http.address if self._http is not None else None

    # -- probes -----------------------------------------------------------------------------

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Alive: the scheduler loop went round recently (a wedged loop is worth a restart)."""
        age = time.monotonic() - self._heartbeat
        limit = max(30.0, 5 * self.settings.reload_poll_seconds)
        alive = age < limit
        return alive, {
            "status": "ok" if alive else "stalled",
            "version": __version__,
            "pid": os.getpid(),
            "uptime_seconds": round(time.time() - self._started, 3),
            "scheduler_heartbeat_age_seconds": round(age, 3),
        }

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Ready: config loaded, journal writable, no mapping failing for longer than the threshold."""
        writable, journal_detail = journal_writable(self.journal_path)
        now = time.time()
        threshold = self.settings.failing_threshold_seconds
        with self._mu:
            failing = [
                {
                    "mapping": s.name,
                    "failing_for_seconds": round(now - s.failing_since, 3),
                    "consecutive_failures": s.failures,
                    "message": secret_filter.redact(s.last_message),
                }
                for s in self._states.values()
                if s.failing_since is not None
            ]
            too_long = [
                s.name
                for s in self._states.values()
                if s.failing_since is not None and now - s.failing_since > threshold
            ]
            mappings = len(self._states)
        ready = writable and not too_long and not self._stop.is_set()
        return ready, {
            "status": "ready" if ready else "not ready",
            "config": {
                "loaded": True,
                "path": str(self.config_path),
                "mappings": mappings,
                "last_reload": "ok" if self._last_reload_ok else "failed",
                "last_reload_problem": self._last_reload_message or None,
            },
            "journal": {"writable": writable, "detail": journal_detail},
            "mappings": {"failing": failing, "threshold_seconds": threshold},
            "stopping": self._stop.is_set(),
        }

    # -- the loop ---------------------------------------------------------------------------

    def _loop(self) -> None:
        next_poll = time.monotonic() + self.settings.reload_poll_seconds
        while not self._stop.is_set():
            self._heartbeat = time.monotonic()
            if self._reload_requested.is_set():
                self._reload_requested.clear()
                self._reload("SIGHUP")
            if time.monotonic() >= next_poll:
                next_poll = time.monotonic() + self.settings.reload_poll_seconds
                if self._watched_files(self.project) != self._files:
                    self._reload("a config or mapping file changed")
            wait = self._launch_due()
            wait = min(wait, max(0.0, next_poll - time.monotonic()))
            self._kick.wait(timeout=max(wait, 0.01))
            self._kick.clear()

    def _launch_due(self) -> float:
        """Start every due mapping that may start now; return seconds until the next one is due."""
        now = time.time()
        soonest = 3600.0
        with self._mu:
            order = [n for n in self.project.lookup_order() if n in self._states]
            due = {n for n in order if self._is_due(self._states[n], now)}
            for name in order:
                state = self._states[name]
                if name not in due:
                    if name not in self._running:
                        soonest = min(soonest, state.next_due - now)
                    continue
                if name in self._running or len(self._running) >= self.settings.concurrency:
                    continue
                if any(dep in self._running or dep in due for dep in self._dependencies(name)):
                    continue  # runs after the mapping its lookups go through, in this same round
                due.discard(name)
                state.woken = False
                self._start_pass(name)
        return soonest

    def _is_due(self, state: MappingState, now: float) -> bool:
        if state.woken and state.failing_since is None:
            return True
        return state.next_due <= now

    def _dependencies(self, name: str) -> set[str]:
        return {
            f.lookup.mapping
            for f in self.project.mappings[name].lookups
            if f.lookup is not None and f.lookup.mapping and f.lookup.mapping != name
        }

    def _start_pass(self, name: str) -> None:
        project = self.project
        thread = threading.Thread(
            target=self._pass_thread, args=(name, project), name=f"syncd-pass-{name}", daemon=True
        )
        self._running[name] = thread
        self.metrics.running.labels(name).set(1)
        thread.start()

    def _pass_thread(self, name: str, project: Project) -> None:
        started = time.time()
        clock = time.monotonic()
        result: PassResult | None = None
        failures: dict[str, int] = {}
        message = ""
        conns = self._connections(name, project)
        try:
            journal = Journal(project.journal_path)
            try:
                result = run_pass(project, journal, name, stop=self._stop, connections=conns)
                if result.run_id is not None and result.counts["failed"]:
                    since = journal.run(result.run_id)["started_at"]
                    failures = {cat: n for (_, cat), n in journal.dead_letter_counts(name, since).items()}
            finally:
                journal.close()
        except SyncdError as exc:  # could not even start: a connector refused to open, the journal broke
            message = str(exc)
        except Exception as exc:  # a bug must cost one mapping a back-off, not the daemon
            message = f"internal error ({type(exc).__name__})"
            log.error("%s: pass crashed: %s", name, message, exc_info=True, extra={"mapping": name})
        ended = time.time()
        if result is None or result.outcome == "failed":
            self._drop_connections(name)  # a failed pass may have left a connector in a bad state
        else:
            conns.end_pass()
        if result is None:
            result = PassResult(name, None, outcome="failed", message=message)
        self.metrics.record_pass(result, time.monotonic() - clock, failures, ended)
        self._finish(name, result, started, ended)

    def _connections(self, name: str, project: Project) -> Connections:
        """The mapping's connectors, kept open from its last pass unless the config changed since.

        One set per mapping, not one shared set: passes of different mappings run in parallel, and
        a connector is used by one pass at a time; a mapping never overlaps itself.
        """
        with self._mu:
            kept = self._pools.get(name)
            if kept is not None and kept[0] is project:
                return kept[1]
            conns = Connections(project)
            self._pools[name] = (project, conns)
        if kept is not None:
            kept[1].close()
        return conns

    def _drop_connections(self, name: str) -> None:
        with self._mu:
            kept = self._pools.pop(name, None)
        if kept is not None:
            kept[1].close()

    def _finish(self, name: str, result: PassResult, started: float, ended: float) -> None:
        with self._mu:
            self._running.pop(name, None)
            self.metrics.running.labels(name).set(0)
            state = self._states.get(name)
            if state is None:  # removed from the config while it ran
                self.metrics.forget_mapping(name)
                kept = self._pools.pop(name, None)
                if kept is not None:
                    kept[1].close()
            else:
                self._reschedule(state, result, started, ended)
        self._kick.set()

    def _reschedule(self, state: MappingState, result: PassResult, started: float, ended: float) -> None:
        """Next due time: the schedule after a pass that ran, a capped exponential back-off after one that failed."""
        state.last_outcome, state.last_message, state.last_end = result.outcome, result.message, ended
        if result.outcome == "failed":
            state.failures += 1
            if state.failing_since is None:
                state.failing_since = started
            delay = min(
                self.settings.backoff_max_seconds,
                self.settings.backoff_initial_seconds * 2 ** (state.failures - 1),
            ) * (1 + self._rng.uniform(0, self.settings.jitter))
            state.next_due = ended + delay
            self.metrics.set_failing(state.name, state.failures)
            log.warning(
                "%s: pass failed (%d in a row): %s; retrying in %.1f s",
                state.name,
                state.failures,
                result.message,
                delay,
                extra={"mapping": state.name, "outcome": "failed", "consecutive_failures": state.failures},
            )
            return
        recovered, state.failures, state.failing_since = state.failures, 0, None
        spec = self.project.mappings[state.name].spec
        state.next_due = next_run(spec.schedule, ended, self.settings.jitter, self._rng)
        self.metrics.set_failing(state.name, 0)
        self._log_pass(result, ended - started, recovered)

    def _log_pass(self, result: PassResult, seconds: float, recovered: int) -> None:
        counts = {k: v for k, v in result.counts.items() if v}
        quiet = result.outcome == "ok" and not any(counts.get(k) for k in ("created", "updated", "deleted"))
        level = logging.DEBUG if quiet and not recovered else logging.INFO
        if result.outcome in ("failures", "budget"):
            level = logging.WARNING if result.outcome == "budget" else logging.INFO
        summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "nothing to do"
        note = f" (recovered after {recovered} failed passes)" if recovered else ""
        log.log(
            level,
            "%s: %s in %.2f s: %s%s",
            result.mapping,
            result.outcome,
            seconds,
            summary,
            note,
            extra={
                "mapping": result.mapping,
                "outcome": result.outcome,
                "counts": counts,
                "seconds": round(seconds, 3),
            },
        )

    # -- mappings coming and going ----------------------------------------------------------

    def _add_mapping(self, name: str, now: float) -> None:
        spec = self.project.mappings[name].spec
        first = (
            now if interval_seconds(spec.schedule) is not None else next_run(spec.schedule, now, 0, self._rng)
        )
        state = MappingState(name, mapping_fingerprint(self.project, name), first)
        self._states[name] = state
        self.metrics.set_failing(name, 0)
        self.metrics.running.labels(name).set(0)
        self._start_watcher(state)

    def _start_watcher(self, state: MappingState) -> None:
        """Mail mappings are woken at once by IMAP IDLE: a thread per watchable source."""
        spec = self.project.mappings[state.name].spec
        conn = self.project.connections.get(spec.source_connection)
        if conn is None or not callable(getattr(load_connector_class(conn.kind), "watch", None)):
            return
        stop = threading.Event()
        state.watcher_stop = stop
        threading.Thread(
            target=self._watch_thread,
            args=(state.name, self.project, stop),
            name=f"syncd-watch-{state.name}",
            daemon=True,
        ).start()

    def _watch_thread(self, name: str, project: Project, stop: threading.Event) -> None:
        spec = project.mappings[name].spec
        delay = 1.0
        while not stop.is_set() and not self._stop.is_set():
            try:
                connector = project.connect(spec.source_connection)
                try:
                    if not isinstance(connector, Watcher):
                        return
                    # The connector reports each sign of life (telemetry.watch_event) itself, liveness
                    # checks included; a yield only means "read me now".
                    for _ in connector.watch(spec.source_stream, stop):
                        self.wake(name)
                        delay = 1.0
                finally:
                    connector.close()
            except Exception as exc:  # the watcher is a shortcut; the schedule still runs the mapping
                log.warning("%s: watching %s failed: %s", name, spec.source, exc, extra={"mapping": name})
            if stop.wait(delay):
                return
            delay = min(delay * 2, self.settings.backoff_max_seconds)

    def _reload(self, why: str) -> None:
        self._files = self._watched_files(self.project)
        try:
            new = load_project(self.config_path)
            problem = self._unappliable(new)
            if problem:
                raise ConfigError(problem)
        except ConfigError as exc:
            self._last_reload_ok, self._last_reload_message = False, str(exc)
            self.metrics.config_reloads.labels("failed").inc()
            self.metrics.config_last_reload_ok.set(0)
            log.error(
                "config reload (%s) refused; still running the previous config:\n%s",
                why,
                exc,
                extra={"reload": "failed"},
            )
            return
        self._files = self._watched_files(new)
        now = time.time()
        with self._mu:
            old = self.project
            self.project = new
            added = [n for n in new.mappings if n not in old.mappings]
            removed = [n for n in old.mappings if n not in new.mappings]
            changed = [
                n
                for n in new.mappings
                if n in old.mappings and self._states[n].fingerprint != mapping_fingerprint(new, n)
            ]
            for name in removed:
                state = self._states.pop(name)
                if state.watcher_stop is not None:
                    state.watcher_stop.set()
                if name not in self._running:
                    self.metrics.forget_mapping(name)
            for name in changed:
                state = self._states[name]
                if state.watcher_stop is not None:
                    state.watcher_stop.set()
                    state.watcher_stop = None
                # A changed mapping starts afresh: due now, no back-off left over from the old version.
                state.fingerprint = mapping_fingerprint(new, name)
                state.next_due, state.failures, state.failing_since = now, 0, None
                self.metrics.set_failing(name, 0)
                self._start_watcher(state)
            for name in added:
                self._add_mapping(name, now)
            self.settings = new.settings.service
        self._telemetry.set_connections(new.connections)
        self._apply_secrets()
        self._last_reload_ok, self._last_reload_message = True, ""
        self.metrics.config_reloads.labels("ok").inc()
        self.metrics.config_last_reload_ok.set(1)
        self.metrics.config_loaded_at.set_to_current_time()
        if new.settings.metrics.listen != old.settings.metrics.listen:
            log.warning("metrics.listen changed; the new address takes effect when syncd restarts")
        log.info(
            "config reloaded (%s): %d added, %d removed, %d changed, %d unchanged",
            why,
            len(added),
            len(removed),
            len(changed),
            len(new.mappings) - len(added) - len(changed),
            extra={"reload": "ok", "added": added, "removed": removed, "changed": changed},
        )
        self._kick.set()

    def _unappliable(self, new: Project) -> str | None:
        if new.journal_path.resolve() != self.journal_path.resolve():
            return (
                f"journal: moving to another journal ({new.journal_path}) needs a restart of syncd; "
                f"still using {self.journal_path}"
            )
        return None

    def _watched_files(self, project: Project) -> dict[str, tuple[int, int]]:
        """(mtime_ns, size) of syncd.yaml and of every file its mapping globs match now."""
        paths = [self.config_path]
        base = project.base_dir
        for pattern in project.settings.mappings:
            full = pattern if Path(pattern).is_absolute() else str(base / pattern)
            paths.extend(Path(p) for p in sorted(glob.glob(full)))
        out: dict[str, tuple[int, int]] = {}
        for path in paths:
            try:
                st = path.stat()
            except OSError:
                continue
            out[str(path)] = (st.st_mtime_ns, st.st_size)
        return out

    def _apply_secrets(self) -> None:
        secret_filter.set_secrets(secrets_of(c.settings for c in self.project.connections.values()))

    # -- stopping ---------------------------------------------------------------------------

    def _install_signal_handlers(self) -> None:
        def stop(signum: int, _frame: FrameType | None) -> None:
            log.info("%s: finishing the batches in hand, then exiting", signal.Signals(signum).name)
            self.request_stop()

        def reload(_signum: int, _frame: FrameType | None) -> None:
            self.request_reload()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, reload)

    def _kpi_report(self) -> Report:
        """`syncd report` of the current config, for the KPI gauges' background refresh."""
        with Journal(self.journal_path) as journal:
            return build_report(self.project, journal)

    def _shutdown(self) -> int:
        with self._mu:
            for state in self._states.values():
                if state.watcher_stop is not None:
                    state.watcher_stop.set()
            running = list(self._running.items())
        deadline = time.monotonic() + self.settings.grace_seconds
        for _name, thread in running:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        left = sorted(name for name, thread in running if thread.is_alive())
        if left:
            log.error(
                "grace period of %.0f s ran out with passes still running: %s; the journal repeats their "
                "last batch next time",
                self.settings.grace_seconds,
                ", ".join(left),
                extra={"unfinished": left},
            )
            return 1
        with self._mu:
            pools, self._pools = list(self._pools.values()), {}
        for _project, conns in pools:
            conns.close()
        log.info("stopped cleanly")
        return 0
