"""Every Prometheus metric syncd exports, defined once, and the one HTTP port that serves them.

The families live in one class so a test can build a fresh registry and check names, help texts
and series counts without a daemon, and so the dashboard and alert tests have one place to compare
their PromQL against. Labels only ever take values from closed sets: mapping and connection names
from the config, a fixed vocabulary of actions, outcomes and reasons, and operation names that a
connector's own code chooses (capped per connection). A record key, an address, a subject or an
error text never becomes a label, so the number of series does not grow with the data.

Gauges that describe the journal (dead letters, open conflicts, outbox pending) are read from it
at scrape time by a custom collector: the journal is the only state, and `syncd sync` or `syncd
dead-letters replay` run by a person change it behind the daemon's back.
"""

from __future__ import annotations

import contextlib
import json
import logging
import platform
import re
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
    make_wsgi_app,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from syncd import __version__
from syncd.engine import PassResult
from syncd.journal import Journal
from syncd.records import DEAD_LETTER_CATEGORIES, Telemetry
from syncd.report import AGE_BUCKETS, Report

log = logging.getLogger("syncd.metrics")

# `_created` series double the series count and no dashboard or alert of ours reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]  # (untyped in prometheus_client)

PASS_OUTCOMES = ("ok", "failures", "budget", "failed", "stopped")
API_OUTCOMES = ("ok", "error", "throttled", "transient")
DIRECTIONS = ("to_target", "to_source")
ACTIONS = ("create", "update", "delete", "link", "skip")
OTHER = "other"

# Passes of a few records take milliseconds, a first load of a big object an hour.
PASS_BUCKETS = (0.05, 0.25, 1, 5, 15, 60, 300, 900, 3600)
API_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    """All of syncd's metric families on one registry (a fresh one unless given)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        # The process's memory, CPU, open files and GC, as every Prometheus exporter has them.
        for standard in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            r.register(standard)
        self.build = Info("syncd_build", "Version of syncd and of the Python running it.", registry=r)
        self.build.info({"version": __version__, "python": platform.python_version()})

        # passes
        self.records_read = Counter(
            "syncd_records_read",
            "Records read from either side by a mapping's passes.",
            ["mapping"],
            registry=r,
        )
        self.records = Counter(
            "syncd_records",
            "Records a mapping wrote (create, update, delete, link) or skipped as unchanged, by the side "
            "written: to_target, or to_source in a two-way mapping. Skips are counted under to_target.",
            ["mapping", "direction", "action"],
            registry=r,
        )
        self.record_failures = Counter(
            "syncd_record_failures",
            "Records that went to dead letters, by reason (the dead letter's category).",
            ["mapping", "reason"],
            registry=r,
        )
        self.conflicts = Counter(
            "syncd_conflicts", "Fields changed on both sides of a two-way mapping.", ["mapping"], registry=r
        )
        self.passes = Counter(
            "syncd_passes",
            "Passes by how they ended (ok, failures, budget, failed, stopped).",
            ["mapping", "outcome"],
            registry=r,
        )
        self.pass_duration = Histogram(
            "syncd_pass_duration_seconds",
            "Wall time of one pass.",
            ["mapping"],
            buckets=PASS_BUCKETS,
            registry=r,
        )
        self.last_success = Gauge(
            "syncd_last_success_timestamp_seconds",
            "When the mapping's last pass that did not fail as a whole ended (Unix time).",
            ["mapping"],
            registry=r,
        )
        self.lag = Gauge(
            "syncd_lag_seconds",
            "How far the mapping was behind its source at its last completed pass: the pass's end minus the "
            "newest source change it carried (0 when it found nothing new).",
            ["mapping"],
            registry=r,
        )
        self.newest_change = Gauge(
            "syncd_newest_change_timestamp_seconds",
            "The newest source change (its modification time) a pass of the mapping has seen (Unix time).",
            ["mapping"],
            registry=r,
        )
        self.failing = Gauge(
            "syncd_mapping_failing",
            "1 while the mapping's passes fail as a whole (system down, credentials refused) and it backs off.",
            ["mapping"],
            registry=r,
        )
        self.consecutive_failures = Gauge(
            "syncd_mapping_consecutive_failures", "Failed passes in a row.", ["mapping"], registry=r
        )
        self.running = Gauge(
            "syncd_mapping_running", "1 while a pass of the mapping runs.", ["mapping"], registry=r
        )

        # outside systems, reported by connectors through syncd.records.Telemetry
        self.api_calls = Counter(
            "syncd_api_calls",
            "Calls to an outside system, by operation and outcome (ok, error, throttled, transient).",
            ["connection", "operation", "outcome"],
            registry=r,
        )
        self.api_call_duration = Histogram(
            "syncd_api_call_duration_seconds",
            "Time one call to an outside system took.",
            ["connection", "operation"],
            buckets=API_BUCKETS,
            registry=r,
        )
        self.api_retries = Counter(
            "syncd_api_retries",
            "Calls repeated after a transient failure.",
            ["connection", "operation", "reason"],
            registry=r,
        )
        self.api_budget_remaining = Gauge(
            "syncd_api_budget_remaining",
            "What is left of an API allowance (Salesforce daily requests, a Sheets quota bucket).",
            ["connection", "budget"],
            registry=r,
        )
        self.api_budget_limit = Gauge(
            "syncd_api_budget_limit", "The size of that API allowance.", ["connection", "budget"], registry=r
        )
        self.watch_events = Counter(
            "syncd_watch_events",
            "Signs of life from a watched stream (IMAP IDLE answered or woke us).",
            ["connection", "stream"],
            registry=r,
        )
        self.watch_last_event = Gauge(
            "syncd_watch_last_event_timestamp_seconds",
            "When a watched stream last showed a sign of life (Unix time).",
            ["connection", "stream"],
            registry=r,
        )
        self.connection_up = Gauge(
            "syncd_connection_up",
            "1 when the outside system answered its last call, 0 when not.",
            ["connection"],
            registry=r,
        )

        # the daemon itself
        self.config_reloads = Counter(
            "syncd_config_reloads",
            "Attempts to apply a changed config, by outcome (ok, failed).",
            ["outcome"],
            registry=r,
        )
        self.config_last_reload_ok = Gauge(
            "syncd_config_last_reload_successful",
            "1 when the last config reload was applied, 0 when it was refused and the old config kept.",
            registry=r,
        )
        self.config_last_reload_ok.set(1)
        self.config_loaded_at = Gauge(
            "syncd_config_loaded_timestamp_seconds",
            "When the config in use was loaded (Unix time).",
            registry=r,
        )
        self.up_since = Gauge(
            "syncd_start_timestamp_seconds", "When this daemon started (Unix time).", registry=r
        )
        self.up_since.set_to_current_time()

    # -- what a pass reports ------------------------------------------------------------------

    def record_pass(
        self, result: PassResult, seconds: float, failures_by_reason: dict[str, int], ended: float
    ) -> None:
        """Count one finished pass: records by direction and action, failures by reason, timing, lag."""
        name = result.mapping
        outcome = result.outcome if result.outcome in PASS_OUTCOMES else OTHER
        self.passes.labels(name, outcome).inc()
        self.pass_duration.labels(name).observe(seconds)
        self.records_read.labels(name).inc(result.counts["read"])
        for (direction, action), n in written_by_direction(result).items():
            self.records.labels(name, direction, action).inc(n)
        if result.counts["skipped"]:
            self.records.labels(name, "to_target", "skip").inc(result.counts["skipped"])
        for reason, n in failures_by_reason.items():
            self.record_failures.labels(name, reason_label(reason)).inc(n)
        if result.counts["conflicts"]:
            self.conflicts.labels(name).inc(result.counts["conflicts"])
        if outcome != "failed":
            self.last_success.labels(name).set(ended)
            if result.newest_change is not None:
                newest = result.newest_change.timestamp()
                self.newest_change.labels(name).set(newest)
                self.lag.labels(name).set(max(0.0, ended - newest))
            elif result.counts["read"] == 0:
                self.lag.labels(name).set(0)

    def set_failing(self, mapping: str, consecutive: int) -> None:
        self.failing.labels(mapping).set(1 if consecutive else 0)
        self.consecutive_failures.labels(mapping).set(consecutive)

    def forget_mapping(self, mapping: str) -> None:
        """A mapping removed from the config: its gauges stop existing (counters keep their history)."""
        for gauge in (
            self.last_success,
            self.lag,
            self.newest_change,
            self.failing,
            self.consecutive_failures,
            self.running,
        ):
            with contextlib.suppress(KeyError):
                gauge.remove(mapping)

    def family_names(self) -> set[str]:
        """Every metric name a PromQL expression may use: family names and their sample names."""
        names: set[str] = set()
        for family in self.registry.collect():
            names.add(family.name)
            names.update(s.name for s in family.samples)
            if family.type == "counter":
                names.add(family.name + "_total")
            if family.type == "histogram":
                names.update(family.name + suffix for suffix in ("_bucket", "_count", "_sum"))
            if family.type == "info":
                names.add(family.name + "_info")
        return names


def written_by_direction(result: PassResult) -> dict[tuple[str, str], int]:
    """(direction, action) -> records written successfully: the pass's own tally.

    A failed write counts as a failure instead; a `flag` (a deletion marked in a field) is an
    update of the target. The tally covers every change, also those a long pass did not keep.
    """
    result.tally(keep=None)
    return dict(result.written)


def reason_label(category: str) -> str:
    return category if category in DEAD_LETTER_CATEGORIES else OTHER


class _BoundedLabel:
    """Label values a connector chooses, accepted up to a cap and then folded into "other".

    Connectors are trusted to pass names from their code, but one that slipped a record id into
    an operation name must cost a few series, not millions.
    """

    TOKEN = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._seen: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    def __call__(self, scope: str, value: str) -> str:
        if not self.TOKEN.match(value):
            return OTHER
        with self._lock:
            seen = self._seen.setdefault(scope, set())
            if value in seen:
                return value
            if len(seen) >= self.cap:
                return OTHER
            seen.add(value)
            return value


class PrometheusTelemetry(Telemetry):
    """The sink connectors report to while the daemon runs (installed with `set_telemetry`)."""

    def __init__(self, metrics: Metrics, connections: Iterable[str] = ()) -> None:
        self.metrics = metrics
        self.connections: frozenset[str] = frozenset(connections)
        self._operations = _BoundedLabel(cap=40)
        self._reasons = _BoundedLabel(cap=20)
        self._budgets = _BoundedLabel(cap=10)
        self._streams = _BoundedLabel(cap=50)

    def set_connections(self, names: Iterable[str]) -> None:
        self.connections = frozenset(names)

    def _conn(self, name: str) -> str:
        return name if name in self.connections else OTHER

    def api_call(self, connection: str, operation: str, outcome: str, seconds: float = 0.0) -> None:
        conn = self._conn(connection)
        op = self._operations(conn, operation)
        self.metrics.api_calls.labels(conn, op, outcome if outcome in API_OUTCOMES else OTHER).inc()
        if seconds > 0:
            self.metrics.api_call_duration.labels(conn, op).observe(seconds)

    def retry(self, connection: str, operation: str, reason: str) -> None:
        conn = self._conn(connection)
        self.metrics.api_retries.labels(
            conn, self._operations(conn, operation), self._reasons(conn, reason)
        ).inc()

    def budget(self, connection: str, budget: str, remaining: float, limit: float | None = None) -> None:
        conn = self._conn(connection)
        name = self._budgets(conn, budget)
        self.metrics.api_budget_remaining.labels(conn, name).set(remaining)
        if limit is not None:
            self.metrics.api_budget_limit.labels(conn, name).set(limit)

    def watch_event(self, connection: str, stream: str) -> None:
        conn = self._conn(connection)
        name = self._streams(conn, stream)
        self.metrics.watch_events.labels(conn, name).inc()
        self.metrics.watch_last_event.labels(conn, name).set_to_current_time()

    def connection_up(self, connection: str, up: bool) -> None:
        self.metrics.connection_up.labels(self._conn(connection)).set(1 if up else 0)


class JournalCollector(Collector):
    """Dead letters, open conflicts and pending outbox entries, read from the journal at each scrape.

    It keeps its own Journal (its own SQLite connection) for the HTTP thread; the daemon's passes
    each have theirs. Every configured mapping gets a series, zero included, so alert expressions
    never meet an absent series for a healthy mapping.
    """

    def __init__(self, open_journal: Callable[[], Journal], mappings: Callable[[], Iterable[str]]) -> None:
        self._open_journal = open_journal
        self._mappings = mappings
        self._journal: Journal | None = None
        self._lock = threading.Lock()

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return list(self._families())

    def _families(self) -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                "syncd_dead_letters",
                "Open dead letters (records waiting for a person or a replay), by reason.",
                labels=["mapping", "reason"],
            ),
            GaugeMetricFamily(
                "syncd_conflicts_open",
                "Open conflicts left for a person (manual policy).",
                labels=["mapping"],
            ),
            GaugeMetricFamily(
                "syncd_outbox_pending",
                "Writes planned but not yet confirmed (left by a pass in progress or a crash).",
                labels=["mapping"],
            ),
        )

    def collect(self) -> Iterator[GaugeMetricFamily]:
        dead, conflicts, pending = self._families()
        names = sorted(self._mappings())
        try:
            with self._lock:
                if self._journal is None:
                    self._journal = self._open_journal()
                letters = self._journal.dead_letter_counts()
                counts = {name: self._journal.counts(name) for name in names}
        except Exception as exc:  # a scrape must answer; the journal's trouble shows in /readyz
            log.warning("metrics: reading the journal failed: %s", exc)
            return
        by_reason: dict[tuple[str, str], int] = {}
        for (mapping, category), n in letters.items():
            if mapping in counts:
                key = (mapping, reason_label(category))
                by_reason[key] = by_reason.get(key, 0) + n
        for name in names:
            for category in DEAD_LETTER_CATEGORIES:
                dead.add_metric([name, category], by_reason.get((name, category), 0))
            if (name, OTHER) in by_reason:
                dead.add_metric([name, OTHER], by_reason[(name, OTHER)])
            conflicts.add_metric([name], counts[name]["conflicts"])
            pending.add_metric([name], counts[name]["pending"])
        yield dead
        yield conflicts
        yield pending

    def close(self) -> None:
        with self._lock:
            if self._journal is not None:
                self._journal.close()
                self._journal = None


class WatchIdleCollector(Collector):
    """Seconds since each watched stream last showed a sign of life, computed at scrape time.

    Prometheus could compute `time() - syncd_watch_last_event_timestamp_seconds` itself; exporting
    it directly makes the dashboard and the alert read plainly.
    """

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return [self._family()]

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "syncd_watch_idle_seconds",
            "Seconds since a watched stream (IMAP IDLE) last showed a sign of life.",
            labels=["connection", "stream"],
        )

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = self._family()
        now = time.time()
        for metric in self._metrics.watch_last_event.collect():
            for sample in metric.samples:
                family.add_metric([sample.labels["connection"], sample.labels["stream"]], now - sample.value)
        yield family


class KpiCollector(Collector):
    """The coordinator's KPIs (`syncd report`) as gauges, computed in the background, not per scrape.

    A report reads the systems in full (cases, products, the helpdesk folder and Sent), which is too
    slow and too costly in API calls for every scrape. So a scrape serves the last figures and, when
    they are older than `refresh_seconds`, starts one background refresh; nothing is read while nobody
    scrapes. `syncd_kpi_computed_timestamp_seconds` says when the figures were read; a KPI whose source
    the project lacks has no series (absent, not zero). Labels are closed sets: age buckets and reasons.
    """

    def __init__(self, compute: Callable[[], Report], refresh_seconds: float = 600) -> None:
        self._compute = compute
        self._refresh_seconds = refresh_seconds
        self._report: Report | None = None
        self._computed_at = 0.0
        self._refreshing: threading.Thread | None = None
        self._lock = threading.Lock()

    @staticmethod
    def _families() -> dict[str, GaugeMetricFamily]:
        g = GaugeMetricFamily
        return {
            "mail_response": g("syncd_kpi_mail_response_seconds",
                               "Median time from a helpdesk thread's first mail to the first reply a person sent."),
            "mail_threads": g("syncd_kpi_mail_threads", "Helpdesk mail threads, by whether a person replied.",
                              labels=["state"]),
            "case_resolution": g("syncd_kpi_case_resolution_seconds",
                                 "Median time from a case's creation to its closing, over closed cases."),
            "cases_open": g("syncd_kpi_cases_open", "Open cases by age.", labels=["age"]),
            "cases_closed": g("syncd_kpi_cases_closed", "Closed cases."),
            "orders_waiting": g("syncd_kpi_orders_waiting",
                                "Order rows not in Salesforce: dead letters, or not synced yet.", labels=["reason"]),
            "low_stock": g("syncd_kpi_low_stock_items", "Products whose quantity on hand is under the reorder level."),
            "computed": g("syncd_kpi_computed_timestamp_seconds", "When the KPI figures were last read."),
        }  # fmt: skip

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return list(self._families().values())

    def _refresh(self) -> None:
        try:
            report = self._compute()
        except Exception as exc:  # a system being down must not break the scrape; the passes show it
            log.warning("metrics: computing the KPIs failed: %s", exc)
            report = None
        with self._lock:
            if report is not None:
                self._report = report
            self._computed_at = time.time()
            self._refreshing = None

    def refresh_now(self) -> None:
        """Compute in the caller's thread (tests, and a first figure at start-up)."""
        self._refresh()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            stale = time.time() - self._computed_at >= self._refresh_seconds
            if stale and self._refreshing is None:
                self._refreshing = threading.Thread(target=self._refresh, name="kpi-refresh", daemon=True)
                self._refreshing.start()
            report, computed_at = self._report, self._computed_at
        families = self._families()
        if report is not None:
            _kpi_samples(report, families)
            families["computed"].add_metric([], computed_at)
        yield from families.values()


def _kpi_samples(report: Report, families: dict[str, GaugeMetricFamily]) -> None:
    value = report.value
    for key, name in (("mail_response", "mail_response_seconds_median"),
                      ("case_resolution", "case_resolution_seconds_median"),
                      ("cases_closed", "cases_closed"), ("low_stock", "low_stock_items")):  # fmt: skip
        figure = value(name)
        if figure is not None:
            families[key].add_metric([], figure)
    threads, unanswered = value("mail_threads"), value("mail_unanswered")
    if threads is not None and unanswered is not None:
        families["mail_threads"].add_metric(["answered"], threads - unanswered)
        families["mail_threads"].add_metric(["unanswered"], unanswered)
    if report.open_cases_by_age:
        for label, _ in AGE_BUCKETS:
            families["cases_open"].add_metric([label], report.open_cases_by_age.get(label, 0))
    for reason, name in (("dead-letter", "orders_dead_letters"), ("unsynced", "orders_unsynced")):
        figure = value(name)
        if figure is not None:
            families["orders_waiting"].add_metric([reason], figure)


# -- the HTTP port ------------------------------------------------------------------------------

Probe = Callable[[], tuple[bool, dict[str, Any]]]


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    """One thread per request, so a slow scrape never holds up /healthz."""

    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    """Probes every few seconds would drown the log; errors still surface through the app."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _IPv6Server(_ThreadingServer):
    address_family = socket.AF_INET6


def parse_listen(listen: str) -> tuple[str, int]:
    """ "127.0.0.1:9464", "[::1]:9464" or ":9464" (all addresses) -> (host, port)."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"metrics.listen {listen!r} is not host:port")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


@dataclass
class HttpServer:
    server: WSGIServer
    thread: threading.Thread

    @property
    def address(self) -> str:
        host, port = str(self.server.server_address[0]), int(self.server.server_address[1])
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def make_app(registry: CollectorRegistry, health: Probe, ready: Probe) -> Callable[..., Iterable[bytes]]:
    """/metrics from prometheus_client, /healthz and /readyz as JSON (200 when fine, 503 when not)."""
    metrics_app = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path in ("/metrics", "/metrics/"):
            result: Iterable[bytes] = metrics_app(environ, start_response)
            return result
        probe = {"/healthz": health, "/readyz": ready}.get(path)
        if probe is None:
            body = b'{"error": "not found; try /metrics, /healthz or /readyz"}\n'
            start_response("404 Not Found", [("Content-Type", "application/json")])
            return [body]
        ok, doc = probe()
        body = (json.dumps(doc, default=str, sort_keys=True) + "\n").encode()
        start_response(
            "200 OK" if ok else "503 Service Unavailable",
            [("Content-Type", "application/json"), ("Cache-Control", "no-store")],
        )
        return [body]

    return app


def serve(listen: str, app: Callable[..., Iterable[bytes]]) -> HttpServer:
    """Start the HTTP server on `listen` (port 0 picks a free port) in a background thread."""
    host, port = parse_listen(listen)
    server_class = _IPv6Server if ":" in host else _ThreadingServer
    server = make_server(host, port, app, server_class=server_class, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="syncd-http", daemon=True)
    thread.start()
    return HttpServer(server, thread)
