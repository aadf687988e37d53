"""`syncd run` as a real process: schedules, signals, reloads, back-off, the journal lock, its logs."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable

from tests.service.conftest import Company, DaemonProcess, http_get, sample, wait_for

Start = Callable[..., DaemonProcess]


def test_every_mapping_runs_once_at_start(company: Company, start_daemon: Start) -> None:
    start_daemon()
    wait_for("the first pass", lambda: company.finished_runs("people"))
    assert [r["Name"] for r in company.target_rows("People")] == ["Person 1", "Person 2"]


def test_an_interval_mapping_runs_again_on_its_schedule(company: Company, start_daemon: Start) -> None:
    company.write_people_mapping(schedule="1s")
    start_daemon()
    wait_for("a pass after the first", lambda: len(company.finished_runs("people")) >= 2)


def test_sigterm_exits_0_with_every_pass_recorded(company: Company, start_daemon: Start) -> None:
    daemon = start_daemon()
    wait_for("the first pass", lambda: company.finished_runs("people"))
    assert daemon.stop() == 0
    assert all(r["outcome"] != "running" for r in company.runs())
    assert daemon.logs(message="stopped cleanly")


def test_sigterm_during_a_pass_finishes_its_batch_and_exits_0(company: Company, start_daemon: Start) -> None:
    company.write_people(3000, start=3)
    company.write_people_mapping(batch_size=20)
    daemon = start_daemon()
    wait_for("a pass to start", lambda: company.runs("people"))
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
    run = company.runs("people")[-1]
    assert run["outcome"] in ("stopped", "ok"), run  # "ok" only if the pass had already ended
    # What was written is what the journal recorded: nothing lost, nothing written twice.
    written = company.target_rows("People")
    assert len(written) == len({r["Id"] for r in written}) == run["created"]


def test_sigint_stops_like_sigterm(company: Company, start_daemon: Start) -> None:
    daemon = start_daemon()
    wait_for("the first pass", lambda: company.finished_runs("people"))
    daemon.signal(signal.SIGINT)
    assert daemon.wait() == 0


def test_a_second_daemon_on_the_same_journal_is_refused(company: Company, start_daemon: Start) -> None:
    first = start_daemon()
    first.url  # noqa: B018 (waits until the first holds the lock and serves)
    second = start_daemon()
    assert second.wait() == 1
    text = "".join(second.raw)
    assert "another syncd" in text and "already running on this journal" in text
    assert first.proc.poll() is None


def test_sighup_applies_an_added_mapping_without_restarting(company: Company, start_daemon: Start) -> None:
    daemon = start_daemon()
    wait_for("the first pass", lambda: company.finished_runs("people"))
    company.write_orders([("O-1", "P1")])
    company.write_orders_mapping()
    daemon.signal(signal.SIGHUP)
    wait_for("the new mapping's pass", lambda: company.finished_runs("orders"))
    assert company.target_rows("Orders") == [{"Ref": "O-1", "Person": "P1"}]
    assert len(company.finished_runs("people")) == 1  # the unchanged mapping was left alone


def test_an_edited_mapping_file_is_reloaded_without_a_signal(company: Company, start_daemon: Start) -> None:
    daemon = start_daemon()
    wait_for("the first pass", lambda: company.finished_runs("people"))
    company.replace(
        company.root / "mappings" / "people.yaml",
        (company.root / "mappings" / "people.yaml")
        .read_text()
        .replace("Name: Name", "Name: {from: Name, transform: [upper]}"),
    )
    wait_for("the changed mapping to run", lambda: len(company.finished_runs("people")) >= 2)
    assert [r["Name"] for r in company.target_rows("People")] == ["PERSON 1", "PERSON 2"]
    assert daemon.logs(reload="ok")


def test_an_invalid_config_is_refused_and_the_old_one_kept(company: Company, start_daemon: Start) -> None:
    daemon = start_daemon()
    wait_for("the first pass", lambda: company.finished_runs("people"))
    company.replace(company.root / "mappings" / "people.yaml", "version: 1\nname: Bad Name\n")
    daemon.signal(signal.SIGHUP)
    refused = wait_for("the reload to be refused", lambda: daemon.logs(reload="failed"))
    assert "people.yaml" in refused[0]["message"]
    assert sample(daemon.metrics(), "syncd_config_reloads_total", outcome="failed") == 1
    assert sample(daemon.metrics(), "syncd_config_last_reload_successful") == 0
    assert daemon.proc.poll() is None
    # Fixed again (and changed): the next reload applies it and the mapping runs afresh.
    company.write_people(1, start=3)
    company.write_people_mapping(schedule="2h")
    wait_for("the third person", lambda: len(company.target_rows("People")) == 3)
    assert sample(daemon.metrics(), "syncd_config_last_reload_successful") == 1


def test_a_failing_mapping_backs_off_and_the_others_keep_running(
    company: Company, start_daemon: Start
) -> None:
    # A folder where the Orders file should be: reading it fails as a whole (ConnectionDown).
    (company.root / "src" / "Orders.csv").mkdir()
    company.write_orders_mapping()
    company.write_people_mapping(schedule="1s")
    daemon = start_daemon()
    wait_for(
        "three failed passes in a row",
        lambda: (sample(daemon.metrics(), "syncd_mapping_consecutive_failures", mapping="orders") or 0) >= 3,
    )
    assert sample(daemon.metrics(), "syncd_mapping_failing", mapping="orders") == 1
    warnings = daemon.logs(mapping="orders", outcome="failed")
    assert "retrying in" in warnings[0]["message"]
    wait_for("people to keep passing", lambda: len(company.finished_runs("people")) >= 3)
    assert all(r["outcome"] == "ok" for r in company.finished_runs("people"))


def test_a_failing_mapping_recovers_once_the_cause_is_gone(company: Company, start_daemon: Start) -> None:
    (company.root / "src" / "Orders.csv").mkdir()
    company.write_orders_mapping()
    daemon = start_daemon()
    wait_for("a failed pass", lambda: daemon.logs(mapping="orders", outcome="failed"))
    (company.root / "src" / "Orders.csv").rmdir()
    company.write_orders([("O-1", "P1")])
    wait_for("the orders to be synced", lambda: company.target_rows("Orders"))
    wait_for(
        "failing to clear", lambda: sample(daemon.metrics(), "syncd_mapping_failing", mapping="orders") == 0
    )


def test_readyz_turns_503_when_a_mapping_fails_for_longer_than_the_threshold(
    company: Company, start_daemon: Start
) -> None:
    company.write_config(failing_threshold=0.5)
    (company.root / "src" / "Orders.csv").mkdir()
    company.write_orders_mapping()
    daemon = start_daemon()
    _, body = wait_for(
        "/readyz to say not ready", lambda: (r := http_get(daemon.url + "/readyz"))[0] == 503 and r
    )
    assert '"mapping": "orders"' in body and '"status": "not ready"' in body
    assert http_get(daemon.url + "/healthz")[0] == 200  # failing is not dead: no restart wanted


def test_a_mapping_runs_after_the_mapping_its_lookups_go_through(
    company: Company, start_daemon: Start
) -> None:
    company.write_orders([("O-1", "P1"), ("O-2", "P2")])
    company.write_orders_mapping()
    start_daemon()
    orders = wait_for("the orders pass", lambda: company.finished_runs("orders"))
    people = company.finished_runs("people")
    assert people[0]["finished_at"] <= orders[0]["started_at"]
    assert [r["Person"] for r in company.target_rows("Orders")] == ["P1", "P2"]  # lookups resolved


def test_logs_are_json_lines_and_quiet_when_nothing_changes(company: Company, start_daemon: Start) -> None:
    company.write_people_mapping(schedule="1s")
    daemon = start_daemon()
    wait_for("four passes", lambda: len(company.finished_runs("people")) >= 4)
    daemon.stop()
    assert daemon.raw and len(daemon.lines) == len(daemon.raw)  # every line is a JSON object
    pass_lines = daemon.logs(mapping="people")
    assert (
        len(pass_lines) == 1 and pass_lines[0]["counts"]["created"] == 2
    )  # only the pass that did something


def test_a_removed_mapping_stops_and_its_gauges_go(company: Company, start_daemon: Start) -> None:
    company.write_orders([("O-1", "P1")])
    company.write_orders_mapping()
    daemon = start_daemon()
    wait_for("the orders pass", lambda: company.finished_runs("orders"))
    (company.root / "mappings" / "orders.yaml").unlink()
    reloaded = wait_for("the reload", lambda: daemon.logs(reload="ok"))
    assert reloaded[0]["removed"] == ["orders"]
    assert sample(daemon.metrics(), "syncd_mapping_failing", mapping="orders") is None
    assert sample(daemon.metrics(), "syncd_mapping_failing", mapping="people") == 0


def test_an_invalid_config_at_start_exits_2_with_the_place(company: Company, start_daemon: Start) -> None:
    company.replace(company.root / "mappings" / "people.yaml", "version: 1\nname: Bad Name\n")
    daemon = start_daemon()
    assert daemon.wait() == 2
    assert "people.yaml" in "".join(daemon.raw)


def test_a_busy_metrics_port_is_a_clear_error(company: Company, start_daemon: Start) -> None:
    first = start_daemon()
    port = first.url.rsplit(":", 1)[1]
    other = company.root / "other"
    other.mkdir()
    (other / "syncd.yaml").write_text(
        company.config.read_text()
        .replace('"127.0.0.1:0"', f'"127.0.0.1:{port}"')
        .replace("path: ", "path: ../")
        .replace("journal: syncd.db", "journal: other.db\nmappings: ['../mappings/*.yaml']")
    )
    second = subprocess.run(
        [sys.executable, "-m", "syncd", "--config", str(other / "syncd.yaml"), "run"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 1
    assert f"metrics.listen '127.0.0.1:{port}': cannot serve HTTP there" in second.stderr
