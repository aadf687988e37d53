"""Fixtures for the mail tests: one real Dovecot per session, one fresh mailbox user per test."""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .dovecot import Account, Dovecot, dovecot_binary, free_port

CORPUS = Path(__file__).resolve().parents[1] / "data" / "mail"


def _running_dovecot(extra_config: str = "") -> Iterator[Dovecot]:
    binary = dovecot_binary()
    if binary is None:
        pytest.skip("dovecot binary not found: apt-get install -y --no-install-recommends dovecot-imapd")
    # Under /tmp on purpose: as root the mail is owned by `nobody`, which must reach it.
    scratch = Path(tempfile.mkdtemp(prefix="syncd-dovecot-", dir="/tmp"))
    scratch.chmod(0o755)
    server = Dovecot(
        dir=scratch, port=free_port(), imaps_port=free_port(), binary=binary, extra_config=extra_config
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(scratch, ignore_errors=True)


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    yield from _running_dovecot()


@pytest.fixture(scope="module")
def dovecot_without_move() -> Iterator[Dovecot]:
    """A server that does not advertise MOVE (RFC 6851), as older ones do not."""
    yield from _running_dovecot("imap_capability = IMAP4rev1 IDLE UIDPLUS LITERAL+ NAMESPACE\n")


_user_numbers = itertools.count(1)


@pytest.fixture
def account(dovecot: Dovecot) -> Account:
    """A mailbox no other test touches (the pool is made at start: Dovecot may not notice a
    passwd-file rewritten within the same second)."""
    return dovecot.account(next(_user_numbers))
