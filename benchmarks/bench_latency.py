"""Latency of the two workflows issue 9 names, end to end through the real daemon (`syncd run`).

1. A mail appended to the helpdesk folder -> its Salesforce Case visible. The shipped helpdesk mappings
   (cases, emails, acknowledgement, log) run unchanged; helpdesk_cases is woken by IMAP IDLE on the
   folder. Goal: median under 2 s. Against the pymap stand-in always, and against a real Dovecot when
   its binary is installed (skipped with the reason printed otherwise).
2. A sheet edit -> the Salesforce field updated, the shipped inventory mapping scheduled every minute.
   Sheets cannot be watched, so the wait is the schedule's (half of it on average), a pass, and the
   connection's settle delay; the measured figure is printed next to that expectation.

The clock starts just before the APPEND (or the back-door cell edit) and stops at the first poll of the
Salesforce stand-in's store (every 20 ms) that shows the result. Each case runs with the Salesforce and
Sheets stand-ins' latency at 0 and at REALISTIC_LATENCY_MS (IMAP has no latency knob: a mail server is
usually near). Prints a table, writes benchmarks/results/latency.json, asserts nothing.

    .venv/bin/python benchmarks/bench_latency.py                  # the default run, about 10 minutes
    .venv/bin/python benchmarks/bench_latency.py --quick          # 5 mails and 1 sheet sample per case
    .venv/bin/python benchmarks/bench_latency.py --only mail --mails 50 --latencies 150
    .venv/bin/python benchmarks/bench_latency.py --only sheet --samples 5 --settle 60
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import random
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import REALISTIC_LATENCY_MS, Figure, Results, header
from imapclient import IMAPClient  # type: ignore[import-untyped]
from ruamel.yaml import YAML

from syncd.demo_company import HEADERS, mail, new_spreadsheets, start_sandboxes, write_project
from syncd.sandbox.mail import MailSandbox
from syncd.sandbox.salesforce import SalesforceSandbox
from syncd.sandbox.serve import Sandboxes
from syncd.sandbox.sheets import SheetsSandbox

BENCH = "latency"
HELPDESK = ("helpdesk_cases", "helpdesk_emails", "helpdesk_ack", "helpdesk_log")
POLL_SECONDS = 0.02
GOAL_SECONDS = 2.0
GIVE_UP_SECONDS = 150.0
"""A mail whose Case has not shown after this long is counted as missed (the 1m schedule would have run twice)."""
SENDERS = [(f"Client {n}", f"client{n}@northwind{n}.example") for n in range(5)]

_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
"""Loopback needs no proxy, whatever http_proxy says."""


# --- the daemon and its stand-ins ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class StandIns:
    boxes: Sandboxes
    org: SalesforceSandbox
    sheets: SheetsSandbox
    mail: MailSandbox


@contextmanager
def stand_ins(root: Path, latency_ms: int) -> Iterator[StandIns]:
    """The four stand-ins as `syncd demo` starts them, the HTTP ones answering after `latency_ms`."""
    boxes = start_sandboxes(root / "sandbox")
    try:
        if boxes.salesforce is None or boxes.sheets is None or boxes.mail is None:
            raise RuntimeError("the sandboxes did not start")
        for knobs in (boxes.salesforce.knobs, boxes.sheets.knobs):
            knobs.latency_s = latency_ms / 1000
        yield StandIns(boxes, boxes.salesforce, boxes.sheets, boxes.mail)
    finally:
        boxes.stop()


@contextmanager
def daemon(config: Path, metrics: str, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`syncd run` as an operator starts it; yields once it answers on /healthz, stops it with SIGTERM."""
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "syncd", "--config", str(config), "--log-format", "text", "run"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"syncd run exited with {proc.returncode}:\n{tail(log_path)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"syncd run did not answer on {metrics}:\n{tail(log_path)}")
            try:
                with _DIRECT.open(f"http://{metrics}/healthz", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=45)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def add_contacts(org: SalesforceSandbox) -> None:
    """The helpdesk's clients: a Case is created only for mail whose sender a Contact has."""
    for n, (name, address) in enumerate(SENDERS):
        account = org.insert("Account", {"Name": f"Northwind {n}", "AccountNumber": f"ACC-{n}"})
        org.insert("Contact", {"LastName": name, "Email": address, "AccountId": account})


def set_in_yaml(path: Path, where: list[str], values: dict[str, Any]) -> None:
    """Set `values` in the mapping at `where` of a generated YAML file (round trip: comments stay)."""
    yaml = YAML()
    doc = yaml.load(path.read_text(encoding="utf-8"))
    node = doc
    for key in where:
        node = node[key]
    node.update(values)
    with path.open("w", encoding="utf-8") as fh:
        yaml.dump(doc, fh)


@dataclass
class Runs:
    """The passes the daemon recorded in its journal after a point in time (read-only, beside it)."""

    journal: Path
    mapping: str
    after_id: int = 0

    def _rows(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(f"{self.journal.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute(sql, args).fetchall()
        finally:
            conn.close()

    def mark(self) -> None:
        """From now on: only passes started after this call count."""
        [(last,)] = self._rows("SELECT COALESCE(MAX(id), 0) FROM runs", ())
        self.after_id = int(last)

    def seconds(self, wait: float = 30) -> list[float]:
        """Duration of each pass of the mapping since `mark()`, once all have finished.

        The result shows in Salesforce before the pass has recorded it in the journal and finished,
        so a pass still running is waited for (up to `wait` seconds) rather than left out.
        """
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            [(running,)] = self._rows(
                "SELECT COUNT(*) FROM runs WHERE mapping = ? AND id > ? AND finished_at IS NULL",
                (self.mapping, self.after_id),
            )
            if not running:
                break
            time.sleep(0.1)
        rows = self._rows(
            "SELECT started_at, finished_at FROM runs WHERE mapping = ? AND id > ? AND finished_at IS NOT NULL",
            (self.mapping, self.after_id),
        )
        return [
            (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
            for start, end in rows
        ]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile: with few samples, a value that was actually seen."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))]


# --- 1. mail -> Case ------------------------------------------------------------------------------


class CasePoller:
    """Watches the Salesforce stand-in's store for Cases by thread key; records when each first shows."""

    def __init__(self, org: SalesforceSandbox) -> None:
        self.org = org
        self._lock = threading.Lock()
        self._pending: dict[str, float] = {}
        self.latencies: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="case-poller", daemon=True)

    def __enter__(self) -> CasePoller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def expect(self, thread_key: str, started: float) -> None:
        with self._lock:
            self._pending[thread_key] = started

    def waiting(self) -> int:
        with self._lock:
            return len(self._pending)

    def wait_for(self, thread_key: str, timeout: float) -> float | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if thread_key in self.latencies:
                    return self.latencies[thread_key]
            time.sleep(POLL_SECONDS)
        return None

    def _run(self) -> None:
        while not self._stop.is_set():
            keys = {c.get("Thread_Key__c") for c in self.org.records("Case")}
            now = time.perf_counter()
            with self._lock:
                for key in [k for k in self._pending if k in keys]:
                    self.latencies[key] = now - self._pending.pop(key)
            self._stop.wait(POLL_SECONDS)


@dataclass
class Mailbox:
    """Where the helpdesk folder lives and how a mail server (or a person's client) appends to it."""

    server: str
    host: str
    port: int
    username: str
    password: str

    def connection(self) -> dict[str, Any]:
        """The helpdesk connection's settings reaching this mailbox."""
        return {
            "host": self.host,
            "port": self.port,
            "security": "none",
            "username": self.username,
            "password": self.password,
            "allow_plaintext": True,
            "folders": ["INBOX"],
        }

    def client(self) -> IMAPClient:
        client = IMAPClient(self.host, self.port, ssl=False, timeout=30)
        client.login(self.username, self.password)
        return client


@contextmanager
def dovecot_mailbox() -> Iterator[Mailbox | str]:
    """A throw-away Dovecot (tests/mail's fixture code), or why there is none."""
    root = str(Path(__file__).resolve().parent.parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    dovecot = importlib.import_module("tests.mail.dovecot")
    binary = dovecot.dovecot_binary()
    if binary is None:
        yield "dovecot is not installed (apt-get install -y --no-install-recommends dovecot-imapd)"
        return
    # Under /tmp on purpose: as root the mail is owned by `nobody`, which must reach it.
    scratch = Path(tempfile.mkdtemp(prefix="syncd-bench-dovecot-", dir="/tmp"))
    scratch.chmod(0o755)
    server = dovecot.Dovecot(
        dir=scratch, port=dovecot.free_port(), imaps_port=dovecot.free_port(), binary=binary, pool_size=5
    )
    try:
        server.start()
        box = server.account(1)
        yield Mailbox("dovecot", box.host, box.port, box.username, box.password)
    finally:
        server.stop()
        shutil.rmtree(scratch, ignore_errors=True)


def mail_to_case(
    results: Results, mailbox: Mailbox | None, latency_ms: int, mails: int, rng: random.Random
) -> None:
    """Append `mails` messages 1-2 s apart while the daemon runs; time each until its Case shows."""
    server = mailbox.server if mailbox else "pymap"
    with (
        tempfile.TemporaryDirectory(prefix="syncd-bench-latency-") as tmp,
        stand_ins(Path(tmp), latency_ms) as si,
    ):
        root = Path(tmp)
        org = si.org
        add_contacts(org)
        metrics = f"127.0.0.1:{free_port()}"
        config = write_project(root, si.boxes.info(), new_spreadsheets(si.sheets, {}), HELPDESK, metrics)
        if mailbox is None:
            info = si.mail.info()["imap"]
            mailbox = Mailbox("pymap", info["host"], info["port"], info["user"], info["password"])
        else:
            set_in_yaml(config, ["connections", "helpdesk"], mailbox.connection())
        runs = Runs(root / "syncd.db", "helpdesk_cases")
        appender = mailbox.client()
        with daemon(config, metrics, root / "syncd.log"), CasePoller(org) as poller:

            def append(subject: str) -> str:
                sender = rng.choice(SENDERS)
                message_id, raw = mail(sender, subject, "Where is my order?", when=datetime.now(UTC))
                started = time.perf_counter()
                appender.append("INBOX", raw)
                poller.expect(message_id, started)
                return message_id

            # The first mail meets the passes every mapping runs at start; it is reported, not counted.
            first = poller.wait_for(append("warm-up"), GIVE_UP_SECONDS)
            time.sleep(2)
            runs.mark()
            org.knobs.reset_counts()
            keys = []
            for n in range(mails):
                keys.append(append(f"Question {n}"))
                time.sleep(rng.uniform(1.0, 2.0))
            deadline = time.monotonic() + GIVE_UP_SECONDS
            while poller.waiting() and time.monotonic() < deadline:
                time.sleep(0.1)
            calls = dict(sorted(org.knobs.calls.items()))
            passes = runs.seconds()
        appender.logout()
        log_problems = [line for line in tail(root / "syncd.log", 400).splitlines() if "ERROR" in line]
    seen = [poller.latencies[k] for k in keys if k in poller.latencies]
    missed = len(keys) - len(seen)
    case = f"mail -> Case ({server}, IDLE)"
    notes = [
        f"{len(passes)} helpdesk_cases passes, median {statistics.median(passes):.2f} s"
        if passes
        else "no passes",
        f"warm-up mail {first:.2f} s" if first is not None else "warm-up mail never showed",
    ]
    if missed:
        notes.append(f"{missed} of {len(keys)} never showed within {GIVE_UP_SECONDS:.0f} s")
    if log_problems:
        notes.append(f"daemon logged {len(log_problems)} errors, e.g. {log_problems[0][:120]}")
    if not seen:
        results.add(
            Figure(
                BENCH,
                case,
                mails,
                latency_ms,
                calls=calls,
                goal="median < 2 s",
                met=False,
                notes="; ".join(notes),
            )
        )
        return
    median = statistics.median(seen)
    results.add(
        Figure(
            BENCH,
            f"{case} median",
            len(seen),
            latency_ms,
            calls=calls,
            value=median,
            unit="s",
            goal=f"median < {GOAL_SECONDS:g} s",
            met=median < GOAL_SECONDS and not missed,
            notes="; ".join(notes),
        )
    )
    results.add(Figure(BENCH, f"{case} p90", len(seen), latency_ms, value=percentile(seen, 0.9), unit="s"))
    results.add(Figure(BENCH, f"{case} max", len(seen), latency_ms, value=max(seen), unit="s"))


# --- 2. sheet edit -> Salesforce at a 1-minute schedule ---------------------------------------------

PRODUCTS = 10


def sheet_to_salesforce(
    results: Results, latency_ms: int, samples: int, settle: float | None, rng: random.Random
) -> None:
    """Edit one stock count at a random moment, time it until Salesforce holds it; repeat."""
    schedule = 60.0
    with (
        tempfile.TemporaryDirectory(prefix="syncd-bench-latency-") as tmp,
        stand_ins(Path(tmp), latency_ms) as si,
    ):
        root = Path(tmp)
        org, sheets = si.org, si.sheets
        rows = [[f"P-{2001 + n}", f"Bolt M{n + 4}", 100 + n, 10] for n in range(PRODUCTS)]
        books = new_spreadsheets(sheets, {"Inventory": rows})
        metrics = f"127.0.0.1:{free_port()}"
        config = write_project(root, si.boxes.info(), books, ("inventory",), metrics)
        set_in_yaml(root / "mappings" / "inventory.yaml", [], {"schedule": "1m"})
        if settle is not None:
            set_in_yaml(config, ["connections", "warehouse"], {"settle_seconds": settle})
        runs = Runs(root / "syncd.db", "inventory")
        column = HEADERS["Inventory"].index("On Hand")
        latencies: list[float] = []
        calls: Counter[str] = Counter()
        with daemon(config, metrics, root / "syncd.log"):
            # The pass at start creates the products; the timed edits update them.
            if (
                wait_until(lambda: len(org.records("Product2")) >= PRODUCTS, GIVE_UP_SECONDS + (settle or 0))
                is None
            ):
                raise RuntimeError(
                    f"the first inventory pass did not create the products:\n{tail(root / 'syncd.log')}"
                )
            runs.mark()
            org.knobs.reset_counts()
            sheets.knobs.reset_counts()
            for n in range(samples):
                time.sleep(rng.uniform(0, schedule))
                row = rng.randrange(PRODUCTS)
                code, value = str(rows[row][0]), 1000 + n
                started = time.perf_counter()
                sheets.set_values(books["warehouse"], "Inventory", (row + 1, column), [[value]])

                def updated(code: str = code, value: int = value) -> bool:
                    return any(
                        p["ProductCode"] == code and p["QuantityOnHand__c"] == value
                        for p in org.records("Product2")
                    )

                seen = wait_until(updated, 3 * schedule + 2 * (settle or 0))
                if seen is not None:
                    latencies.append(seen - started)
            calls.update(org.knobs.calls)
            calls.update({f"sheets {k}": v for k, v in sheets.knobs.calls.items()})
            passes = runs.seconds()
    pass_seconds = statistics.median(passes) if passes else 0.0
    settle_s = settle if settle is not None else 0.0
    expected = schedule / 2 + pass_seconds + settle_s
    which = "the default, 0 s" if settle is None else f"{settle:g} s (--settle)"
    notes = [
        f"expected {expected:.1f} s = schedule/2 {schedule / 2:.0f} + pass {pass_seconds:.2f} + settle {settle_s:g}",
        f"settle_seconds {which}",
        f"{len(passes)} passes, service jitter 10% (default)",
    ]
    if settle_s:
        notes.append("a settle delay is checked only at passes, so it rounds up to whole schedules")
    if len(latencies) < samples:
        notes.append(f"{samples - len(latencies)} of {samples} edits never reached Salesforce")
    case = "sheet edit -> Salesforce (schedule 1m)"
    if not latencies:
        results.add(Figure(BENCH, case, samples, latency_ms, calls=dict(calls), notes="; ".join(notes)))
        return
    median = statistics.median(latencies)
    results.add(
        Figure(
            BENCH,
            f"{case} median",
            len(latencies),
            latency_ms,
            calls=dict(sorted(calls.items())),
            value=median,
            unit="s",
            goal=f"expected ~{expected:.1f} s",
            notes="; ".join(notes),
        )
    )
    results.add(
        Figure(
            BENCH,
            f"{case} max",
            len(latencies),
            latency_ms,
            value=max(latencies),
            unit="s",
            goal=f"< {schedule * 1.1 + pass_seconds + settle_s:.0f} s (one jittered interval + pass)",
        )
    )


def wait_until(check: Callable[[], bool], timeout: float) -> float | None:
    """perf_counter() of the first poll at which `check` held, or None after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return time.perf_counter()
        time.sleep(POLL_SECONDS)
    return None


# --- main ------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", choices=("mail", "sheet"), help="run one of the two cases")
    parser.add_argument("--mails", type=int, default=20, help="mails appended per run (default 20)")
    parser.add_argument("--samples", type=int, default=3, help="timed sheet edits per run (default 3)")
    parser.add_argument(
        "--latencies",
        default=f"0,{REALISTIC_LATENCY_MS}",
        help=f"stand-in latencies in ms, comma-separated (default 0,{REALISTIC_LATENCY_MS})",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=None,
        help="the Sheets connection's settle_seconds (default: unset, 0)",
    )
    parser.add_argument("--no-dovecot", action="store_true", help="the pymap stand-in only")
    parser.add_argument("--quick", action="store_true", help="5 mails and 1 sheet sample per run")
    parser.add_argument("--seed", type=int, default=1, help="random seed of senders, gaps and edit moments")
    args = parser.parse_args()
    if args.quick:
        args.mails, args.samples = 5, 1
    latencies = [int(x) for x in args.latencies.split(",")]
    rng = random.Random(args.seed)
    results = Results(BENCH)
    header()
    if args.only in (None, "mail"):
        for latency in latencies:
            mail_to_case(results, None, latency, args.mails, rng)
        if args.no_dovecot:
            print("dovecot: skipped (--no-dovecot)")
        else:
            for latency in latencies:
                with dovecot_mailbox() as box:
                    if isinstance(box, str):
                        print(f"dovecot: skipped: {box}")
                        break
                    mail_to_case(results, box, latency, args.mails, rng)
    if args.only in (None, "sheet"):
        for latency in latencies:
            sheet_to_salesforce(results, latency, args.samples, args.settle, rng)
    results.write()


if __name__ == "__main__":
    main()
