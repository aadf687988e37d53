"""The IMAP server goes away while `syncd run` is idling on the folder (IDLE), then comes back.

The mapping's schedule is an hour, so only the IDLE watcher can bring in the mail delivered after
the restart: it must reconnect by itself and the mail must arrive once, with nothing lost.
Dovecot is stopped cleanly (a restart) or killed with SIGKILL (a crash) — its own server, so the
other mail tests never see it go down.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chaos.conftest import Syncd
from tests.chaos.scenarios import Expected, ImapToFiles, key, write_project
from tests.mail.dovecot import Dovecot, dovecot_binary, free_port

PATIENCE = 60.0


@pytest.fixture
def own_dovecot() -> Iterator[Dovecot]:
    binary = dovecot_binary()
    if binary is None:
        pytest.skip("dovecot binary not found: apt-get install -y --no-install-recommends dovecot-imapd")
    scratch = Path(tempfile.mkdtemp(prefix="syncd-faults-dovecot-", dir="/tmp"))
    scratch.chmod(0o755)
    server = Dovecot(dir=scratch, port=free_port(), imaps_port=free_port(), binary=binary, pool_size=2)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(scratch, ignore_errors=True)


def wait_for(condition: object, what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["restarted", "killed"])
def test_mail_delivered_after_the_server_came_back_arrives_once_through_idle(
    tmp_path: Path, own_dovecot: Dovecot, how: str
) -> None:
    scenario = ImapToFiles(tmp_path, own_dovecot.account(1))
    write_project(tmp_path, scenario)
    mapping = tmp_path / "mappings" / "seq.yaml"
    mapping.write_text(mapping.read_text().replace("schedule: 1s", "schedule: 1h"))
    scenario.add(range(3), "before")
    expected = Expected({key(n): "before" for n in range(3)})
    syncd = Syncd(tmp_path, scenario.env())
    log = tmp_path / "daemon.log"
    with log.open("wb") as out:
        daemon = subprocess.Popen(syncd.argv("run"), env=syncd.env, cwd=tmp_path, stdout=out, stderr=out)
    try:
        wait_for(lambda: len(scenario.target()) == 3, "the first pass")
        scenario.add(range(3, 4), "idle")  # proves IDLE is up before the server goes
        expected.values[key(3)] = "idle"
        wait_for(lambda: len(scenario.target()) == 4, "IDLE to bring in mail")
        if how == "killed":
            assert own_dovecot.process is not None
            own_dovecot.process.kill()
            own_dovecot.process.wait()
            own_dovecot.process = None
        else:
            own_dovecot.stop()
        own_dovecot.start()
        scenario.add(range(4, 7), "after")
        expected.values.update({key(n): "after" for n in range(4, 7)})
        wait_for(lambda: len(scenario.target()) >= 7, "the watcher to reconnect and bring in new mail")
        assert daemon.poll() is None
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=PATIENCE)
    assert expected.check(scenario.target()) == (0, [])
    assert "Traceback" not in log.read_text()
