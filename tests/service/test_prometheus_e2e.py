"""A real Prometheus scrapes a real `syncd run`, and the pass's counts come back through its HTTP API."""

from __future__ import annotations

import json
import socket
import subprocess
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.service.conftest import Company, DaemonProcess, http_get, tool, wait_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """start(target) -> the base URL of a Prometheus scraping `target` every second."""
    binary = tool("prometheus")
    procs: list[subprocess.Popen[bytes]] = []

    def start(target: str) -> str:
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            f"  - job_name: syncd\n    static_configs: [{{targets: ['{target}']}}]\n"
        )
        port = free_port()
        log = (tmp_path / "prometheus.log").open("wb")
        procs.append(
            subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        url = f"http://127.0.0.1:{port}"
        wait_for("Prometheus to be ready", lambda: _ready(url))
        return url

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _ready(url: str) -> bool:
    try:
        return http_get(url + "/-/ready")[0] == 200
    except OSError:
        return False


def query(url: str, promql: str) -> list[dict[str, object]]:
    code, body = http_get(url + "/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
    assert code == 200, body
    result: list[dict[str, object]] = json.loads(body)["data"]["result"]
    return result


def test_prometheus_reads_the_pass_counts_from_syncd(
    company: Company, start_daemon: Callable[..., DaemonProcess], prometheus: Callable[[str], str]
) -> None:
    daemon = start_daemon()
    wait_for("the first pass", lambda: company.finished_runs("people"))
    url = prometheus(daemon.url.removeprefix("http://"))
    created = wait_for(
        "Prometheus to have scraped the pass",
        lambda: query(url, 'syncd_records_total{job="syncd", mapping="people", action="create"}'),
    )
    assert created[0]["value"][1] == "2"  # type: ignore[index]
    assert query(url, 'up{job="syncd"}')[0]["value"][1] == "1"  # type: ignore[index]
    assert daemon.stop() == 0
