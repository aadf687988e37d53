"""Shared pieces of the crash suites: the kill budget, a real `syncd` process, the stand-ins, the report.

The kill budget is SYNCD_CHAOS_KILLS (default 20: the CI run), shared out among the four sources;
the nightly run sets it to 100 or more. Every figure the suites measure (kills delivered, rounds,
duplicates ever created, records checked) is printed at the end of the pytest run and, when
SYNCD_CHAOS_REPORT names a file, written there as JSON for docs/guarantees.md.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from syncd.sandbox.salesforce import SalesforceSandbox
from syncd.sandbox.sheets import SheetsSandbox
from tests.mail.dovecot import Account, Dovecot, dovecot_binary, free_port
from tests.stand_ins import salesforce_org, sheets_without_quotas

from .figures import print_figures

KILLS = int(os.environ.get("SYNCD_CHAOS_KILLS", "20"))
FAULT_POINTS = ("after-read", "after-outbox", "after-write", "during-commit")


class Syncd:
    """`python -m syncd` in a project folder, with the given secrets and nothing else of ours inherited."""

    def __init__(self, root: Path, secrets: dict[str, str]) -> None:
        self.root = root
        base = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
        self.env = {**base, **secrets}

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "syncd", "--config", str(self.root / "syncd.yaml"), *args]

    def run(
        self, *args: str, fault: str | None = None, after: int = 1, timeout: float = 180
    ) -> subprocess.CompletedProcess[str]:
        env = dict(self.env)
        if fault:
            env.update(SYNCD_FAULT_POINT=fault, SYNCD_FAULT_AFTER=str(after))
        return subprocess.run(
            self.argv(*args), env=env, cwd=self.root, capture_output=True, text=True, timeout=timeout
        )

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            self.argv(*args), env=self.env, cwd=self.root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )


def pytest_terminal_summary(terminalreporter: Any) -> None:
    print_figures(terminalreporter)


@pytest.fixture
def org() -> Iterator[SalesforceSandbox]:
    yield from salesforce_org()


@pytest.fixture
def sheets_server() -> Iterator[SheetsSandbox]:
    yield from sheets_without_quotas()


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    binary = dovecot_binary()
    if binary is None:
        pytest.skip("dovecot binary not found: apt-get install -y --no-install-recommends dovecot-imapd")
    scratch = Path(tempfile.mkdtemp(prefix="syncd-chaos-dovecot-", dir="/tmp"))  # `nobody` must reach it
    scratch.chmod(0o755)
    server = Dovecot(dir=scratch, port=free_port(), imaps_port=free_port(), binary=binary)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(scratch, ignore_errors=True)


_next_user = iter(range(1, 10_000))


@pytest.fixture
def mailbox(dovecot: Dovecot) -> Account:
    return dovecot.account(next(_next_user))
