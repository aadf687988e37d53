"""After a full demo run with debug logging, no secret is anywhere syncd writes or says.

The demo starts every stand-in, writes a config holding their credentials, runs the shipped
mappings through a coordinator's day and (with --keep-running) leaves `syncd run` serving metrics.
The secrets are the stand-ins' own (sandbox.json and the key files it names): passwords, security
token, client secret, bearer token, refresh token and private keys. They must be absent from the
debug log (stdout and stderr), the metrics and health pages, the output of status, dead-letters and
conflicts, and the journal's bytes. The config file and the stand-ins' own folder hold them by
design and are not searched.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from syncd.sandbox.salesforce import SalesforceSandbox
from tests.chaos.conftest import Syncd
from tests.chaos.scenarios import SF_SEED, FilesToSalesforce, write_project

pytestmark = pytest.mark.slow
PATIENCE = 180.0
_SECRET_KEY = re.compile(r"pass|token|secret|private_key$", re.IGNORECASE)


def secrets_of(info: dict[str, object]) -> set[str]:
    """Every secret value in sandbox.json and the key and credential files it names."""
    found: set[str] = set()

    def visit(value: object, key: str = "") -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                visit(v, str(k))
        elif isinstance(value, str) and _SECRET_KEY.search(key) and len(value) >= 6:
            found.add(value)
        if isinstance(value, str) and key.endswith("_file") and Path(value).is_file():
            text = Path(value).read_text(encoding="utf-8", errors="replace")
            if text.lstrip().startswith("{"):
                visit(json.loads(text))
            elif "PRIVATE KEY" in text:
                found.update(line for line in text.splitlines() if len(line) > 40)  # the key's body

    visit(info)
    return found


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return str(answer.read().decode("utf-8", "replace"))


def wait_for_line(path: Path, pattern: str, process: subprocess.Popen[bytes]) -> re.Match[str]:
    deadline = time.monotonic() + PATIENCE
    while True:
        found = re.search(pattern, path.read_text(errors="replace"))
        if found:
            return found
        assert process.poll() is None, "the demo ended before it said it was still running"
        assert time.monotonic() < deadline, "the demo did not come up in time"
        time.sleep(0.2)


def test_a_debug_demo_run_leaves_no_secret_in_logs_metrics_errors_dead_letters_or_journal(
    tmp_path: Path,
) -> None:
    demo = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")} | {"COLUMNS": "400"}
    stdout, stderr = tmp_path / "stdout.log", tmp_path / "stderr.log"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "syncd", "-vv", "demo", "--dir", str(demo), "--keep-running"],
            stdout=out,
            stderr=err,
            env=env,
            cwd=tmp_path,
        )
    pages: list[str] = []
    daemon_pid = None
    try:
        running = wait_for_line(
            stdout, r"Still running.*?\(pid (\d+)\); metrics at (http://\S+/metrics)", process
        )
        daemon_pid, metrics_url = int(running.group(1)), running.group(2)
        base = metrics_url.removesuffix("/metrics")
        pages = [get(metrics_url), get(base + "/healthz"), get(base + "/readyz")]
        config = demo / "syncd.yaml"
        for command in (["status"], ["dead-letters", "list"], ["conflicts", "list"], ["links", "clients"]):
            done = subprocess.run(
                [sys.executable, "-m", "syncd", "-vv", "--json", "--config", str(config), *command],
                capture_output=True,
                text=True,
                env=env,
                cwd=demo,
                timeout=120,
            )
            pages += [done.stdout, done.stderr]
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=PATIENCE)
        finally:
            if daemon_pid is not None and process.returncode is None:
                os.kill(daemon_pid, signal.SIGKILL)
            if process.returncode is None:
                process.kill()
                process.wait()
    secrets = secrets_of(json.loads((demo / "sandbox" / "sandbox.json").read_text()))
    assert len(secrets) >= 5, f"expected the stand-ins' passwords, tokens and keys, found {len(secrets)}"
    journal = b"".join(p.read_bytes() for p in demo.glob("syncd.db*") if p.is_file())
    said = {
        "stdout": stdout.read_text(errors="replace"),
        "debug log (stderr)": stderr.read_text(errors="replace"),
        "metrics, health, status, dead letters, conflicts, links": "\n".join(pages),
        "journal": journal.decode("utf-8", "replace"),
    }
    assert len(said["debug log (stderr)"].splitlines()) > 100, "debug logging was not on"
    leaks = [
        (where, secret[:6] + "...") for where, text in said.items() for secret in secrets if secret in text
    ]
    assert leaks == []


def test_a_refused_login_names_neither_the_password_nor_the_token_even_at_debug(tmp_path: Path) -> None:
    """Errors are where secrets leak most: the login refused, at -vv, in text and in JSON."""
    org = SalesforceSandbox(seed=SF_SEED).start()
    try:
        scenario = FilesToSalesforce(tmp_path, org)
        write_project(tmp_path, scenario)
        scenario.add(range(3), "v1")
        wrong = {"SF_PASSWORD": "Wrong-Passw0rd-4-syncd", "SF_TOKEN": "WRONGTOKEN123456"}
        syncd = Syncd(tmp_path, wrong)
        outputs = [
            syncd.run("-vv", "sync"),
            syncd.run("-vv", "--json", "sync"),
            syncd.run("--json", "status"),
        ]
    finally:
        org.stop()
    assert outputs[0].returncode != 0, "a wrong password was accepted"
    said = "".join(o.stdout + o.stderr for o in outputs)
    said += (tmp_path / "syncd.db").read_bytes().decode("utf-8", "replace")
    assert "refused" in said or "INVALID_LOGIN" in said
    assert [s for s in wrong.values() if s in said] == []
