"""A small company for daemon tests: CSV folders as the systems, a real journal, `syncd run` as a real
process (signals matter) or in-process on a thread (when only its HTTP answers matter).

Nothing here waits a fixed time: every wait polls a condition with a generous limit, so a slow
machine makes the tests slower, never wrong.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from syncd.metrics import Metrics
from syncd.service import Daemon

T = TypeVar("T")
PATIENCE = 60.0  # seconds any condition may take before a test gives up

CONFIG = """\
version: 1
journal: syncd.db
metrics: {{listen: "127.0.0.1:0"}}
service:
  concurrency: {concurrency}
  grace_seconds: {grace}
  jitter: 0
  backoff_initial_seconds: 0.2
  backoff_max_seconds: 1
  failing_threshold_seconds: {failing_threshold}
  reload_poll_seconds: 0.2
connections:
  src: {{kind: files, path: src, modified: {{People: Updated}}}}
  dst: {{kind: files, path: dst, keys: {{People: Id, Orders: Ref, copy_a: Id, copy_b: Id}}}}
"""

PEOPLE = """\
version: 1
name: people
source: src.People
target: dst.People
match: {{source: Id, target: Id}}
fields: {{Id: Id, Name: Name}}
schedule: {schedule}
batch_size: {batch_size}
"""

ORDERS = """\
version: 1
name: orders
source: src.Orders
target: dst.Orders
match: {source: Ref, target: Ref}
fields:
  Ref: Ref
  Person: {lookup: {mapping: people, from: PersonId}}
schedule: 1h
"""


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = PATIENCE) -> T:
    """Poll `probe` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in Prometheus text format, or None when absent."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return None


class Company:
    """Config, mapping files and CSV tables of one test company."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "src").mkdir()
        (root / "dst").mkdir()
        (root / "mappings").mkdir()

    @property
    def config(self) -> Path:
        return self.root / "syncd.yaml"

    @property
    def journal(self) -> Path:
        return self.root / "syncd.db"

    def write_config(
        self, grace: float = 30, failing_threshold: float = 900, extra: str = "", concurrency: int = 4
    ) -> None:
        text = (
            CONFIG.format(grace=grace, failing_threshold=failing_threshold, concurrency=concurrency) + extra
        )
        self.replace(self.config, text)

    def write_people_mapping(self, schedule: str = "1h", batch_size: int = 200) -> None:
        self.replace(
            self.root / "mappings" / "people.yaml", PEOPLE.format(schedule=schedule, batch_size=batch_size)
        )

    def write_orders_mapping(self) -> None:
        self.replace(self.root / "mappings" / "orders.yaml", ORDERS)

    def replace(self, path: Path, text: str) -> None:
        """Write a file the way editors do (new file, then rename), so a reader never sees half of it."""
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)

    def write_people(self, count: int, start: int = 1) -> None:
        path = self.root / "src" / "People.csv"
        new = not path.exists()
        with path.open("a", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            if new:
                w.writerow(["Id", "Name", "Updated"])
            for i in range(start, start + count):
                w.writerow([f"P{i}", f"Person {i}", "2026-11-01T09:00:00+00:00"])

    def write_orders(self, rows: list[tuple[str, str]]) -> None:
        with (self.root / "src" / "Orders.csv").open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["Ref", "PersonId"])
            w.writerows(rows)

    def target_rows(self, stream: str) -> list[dict[str, str]]:
        path = self.root / "dst" / f"{stream}.csv"
        if not path.exists():
            return []
        with path.open(newline="", encoding="utf-8-sig") as f:
            return list(csv.DictReader(f))

    def runs(self, mapping: str | None = None) -> list[dict[str, Any]]:
        if not self.journal.exists():
            return []
        conn = sqlite3.connect(self.journal, timeout=30)
        conn.row_factory = sqlite3.Row
        try:
            sql = "SELECT * FROM runs" + (" WHERE mapping = ?" if mapping else "") + " ORDER BY id"
            return [dict(r) for r in conn.execute(sql, (mapping,) if mapping else ())]
        except sqlite3.OperationalError:  # not created yet
            return []
        finally:
            conn.close()

    def finished_runs(self, mapping: str) -> list[dict[str, Any]]:
        return [r for r in self.runs(mapping) if r["finished_at"]]


@pytest.fixture
def company(tmp_path: Path) -> Company:
    c = Company(tmp_path)
    c.write_config()
    c.write_people_mapping()
    c.write_people(2)
    return c


class DaemonProcess:
    """`syncd run` as a child process logging JSON lines, which the test reads as they come."""

    def __init__(self, company: Company, env: dict[str, str] | None = None) -> None:
        self.company = company
        self.lines: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "syncd", "--config", str(company.config), "--log-format", "json", "run"],
            cwd=company.root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.raw.append(line)
            try:
                self.lines.append(json.loads(line))
            except json.JSONDecodeError:
                continue

    def logs(self, **match: Any) -> list[dict[str, Any]]:
        return [d for d in list(self.lines) if all(d.get(k) == v for k, v in match.items())]

    @property
    def url(self) -> str:
        found = wait_for(
            "the daemon to log its metrics address", lambda: [d for d in self.logs() if "listen" in d]
        )
        return f"http://{found[0]['listen']}"

    def metrics(self) -> str:
        return http_get(self.url + "/metrics")[1]

    def signal(self, signum: signal.Signals) -> None:
        self.proc.send_signal(signum)

    def wait(self) -> int:
        """Wait for the process to end by itself and for its last log lines; returns the exit code."""
        code = self.proc.wait(timeout=PATIENCE)
        self._reader.join(timeout=10)
        return code

    def stop(self) -> int:
        """SIGTERM and wait; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=PATIENCE)


@pytest.fixture
def start_daemon(company: Company) -> Iterator[Callable[..., DaemonProcess]]:
    started: list[DaemonProcess] = []

    def start(env: dict[str, str] | None = None) -> DaemonProcess:
        d = DaemonProcess(company, env)
        started.append(d)
        return d

    yield start
    for d in started:
        d.kill()


class InProcessDaemon:
    """A Daemon on a thread with its own registry: fast, and its HTTP port is all a test talks to."""

    def __init__(self, company: Company) -> None:
        self.daemon = Daemon(company.config, Metrics(), install_signals=False)
        self.code: int | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        wait_for("the in-process daemon to serve HTTP", lambda: self.daemon.address)

    def _run(self) -> None:
        self.code = self.daemon.run()

    @property
    def url(self) -> str:
        return f"http://{self.daemon.address}"

    def metrics(self) -> str:
        return http_get(self.url + "/metrics")[1]

    def stop(self) -> int | None:
        self.daemon.request_stop()
        self.thread.join(timeout=PATIENCE)
        return self.code


@pytest.fixture
def in_process(company: Company) -> Iterator[Callable[[], InProcessDaemon]]:
    started: list[InProcessDaemon] = []

    def start() -> InProcessDaemon:
        d = InProcessDaemon(company)
        started.append(d)
        return d

    yield start
    for d in started:
        d.stop()


def tool(name: str) -> str:
    """Path of a Prometheus binary, or skip: .ci/run installs Debian's `prometheus` package."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (Debian package 'prometheus'; .ci/run installs it)")
    return path
