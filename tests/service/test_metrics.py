"""What /metrics, /healthz and /readyz answer, scraped from a daemon running in-process."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable

from prometheus_client.parser import text_string_to_metric_families

from syncd.journal import Journal
from syncd.metrics import JournalCollector, Metrics, PrometheusTelemetry
from tests.service.conftest import Company, InProcessDaemon, http_get, sample, tool, wait_for

Start = Callable[[], InProcessDaemon]

FAMILIES = {
    "syncd_build_info",
    "syncd_records_read",
    "syncd_records",
    "syncd_record_failures",
    "syncd_passes",
    "syncd_pass_duration_seconds",
    "syncd_last_success_timestamp_seconds",
    "syncd_lag_seconds",
    "syncd_mapping_failing",
    "syncd_dead_letters",
    "syncd_conflicts_open",
    "syncd_outbox_pending",
    "syncd_config_last_reload_successful",
}


def series(text: str) -> int:
    return sum(len(f.samples) for f in text_string_to_metric_families(text))


def scrape_until(
    daemon: InProcessDaemon, what: str, ready: Callable[[str], bool], timeout: float = 60
) -> str:
    """The first /metrics text for which `ready(text)` holds."""
    return wait_for(what, lambda: (text := daemon.metrics()) and ready(text) and text, timeout=timeout)


def scraped_after_first_pass(company: Company, start: Start) -> tuple[InProcessDaemon, str]:
    daemon = start()
    wait_for("the first pass", lambda: company.finished_runs("people"))
    text = scrape_until(daemon, "the pass in /metrics", lambda t: sample(t, "syncd_passes_total") is not None)
    return daemon, text


def test_a_scrape_after_a_pass_has_every_family(company: Company, in_process: Start) -> None:
    _, text = scraped_after_first_pass(company, in_process)
    names = {f.name for f in text_string_to_metric_families(text)}
    assert names >= FAMILIES


def test_a_pass_is_counted_by_mapping_direction_and_action(company: Company, in_process: Start) -> None:
    _, text = scraped_after_first_pass(company, in_process)
    assert sample(text, "syncd_records_total", mapping="people", direction="to_target", action="create") == 2
    assert sample(text, "syncd_records_read_total", mapping="people") == 2
    assert sample(text, "syncd_passes_total", mapping="people", outcome="ok") == 1
    assert sample(text, "syncd_pass_duration_seconds_count", mapping="people") == 1


def test_lag_is_the_pass_end_minus_the_newest_source_change(company: Company, in_process: Start) -> None:
    _, text = scraped_after_first_pass(company, in_process)
    newest = sample(text, "syncd_newest_change_timestamp_seconds", mapping="people")
    ended = sample(text, "syncd_last_success_timestamp_seconds", mapping="people")
    lag = sample(text, "syncd_lag_seconds", mapping="people")
    assert newest is not None and ended is not None and lag is not None
    assert newest == 1793523600  # 2026-11-01T09:00:00Z, the rows' Updated column
    assert abs(lag - (ended - newest)) < 1e-3


def test_record_failures_are_counted_by_reason(company: Company, in_process: Start) -> None:
    (company.root / "src" / "People.csv").write_text("Id,Name,Updated\n,No key,\nP1,Ann,\n")
    daemon = in_process()
    wait_for("the first pass", lambda: company.finished_runs("people"))
    text = scrape_until(
        daemon,
        "the failure in /metrics",
        lambda t: sample(t, "syncd_record_failures_total", reason="bad-input") is not None,
    )
    assert sample(text, "syncd_record_failures_total", mapping="people", reason="bad-input") == 1
    assert sample(text, "syncd_dead_letters", mapping="people", reason="bad-input") == 1


def test_promtool_accepts_the_metric_names(company: Company, in_process: Start) -> None:
    promtool = tool("promtool")
    _, text = scraped_after_first_pass(company, in_process)
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip() == "" and checked.stderr.strip() == "", checked.stdout + checked.stderr


def test_series_stay_bounded_when_10000_distinct_records_flow(company: Company, in_process: Start) -> None:
    company.write_people_mapping(schedule="1s")
    daemon, _ = scraped_after_first_pass(company, in_process)
    before = series(daemon.metrics())
    # 10,000 new people with distinct keys and names, a tenth of them bad (blank key, duplicates).
    company.write_people(9000, start=1000)
    with (company.root / "src" / "People.csv").open("a", encoding="utf-8") as f:
        for i in range(500):
            f.write(f",Nameless {i},\n")
            f.write(f"P{1000 + i},Duplicate {i},\n")
    text = scrape_until(
        daemon,
        "the 9,000 people to be synced",
        lambda t: (
            (sample(t, "syncd_records_total", action="create") or 0) >= 9002
            and sample(t, "syncd_mapping_running", mapping="people") == 0
        ),
        timeout=120,
    )
    assert sample(text, "syncd_record_failures_total", reason="bad-input") == 500
    assert series(text) <= before + 20  # a handful of new label combinations, never one per record


def test_dead_letters_and_conflicts_are_read_from_the_journal_at_scrape_time(company: Company) -> None:
    journal = Journal(company.journal)
    metrics = Metrics()
    metrics.registry.register(JournalCollector(lambda: Journal(company.journal), lambda: ["people"]))
    assert (
        metrics.registry.get_sample_value("syncd_dead_letters", {"mapping": "people", "reason": "duplicate"})
        == 0
    )
    with journal.tx():  # written behind the daemon's back, as `syncd sync` run by a person would
        journal.add_dead_letter("people", "source", "P9", "duplicate", "Id 'P9' is also the key of row 3")
        journal.add_conflict("people", "P1", "P1", {"Name": {"base": "a", "source": "b", "target": "c"}})
    assert (
        metrics.registry.get_sample_value("syncd_dead_letters", {"mapping": "people", "reason": "duplicate"})
        == 1
    )
    assert metrics.registry.get_sample_value("syncd_conflicts_open", {"mapping": "people"}) == 1
    journal.close()


def test_connector_telemetry_folds_unknown_label_values_into_other() -> None:
    metrics = Metrics()
    sink = PrometheusTelemetry(metrics, ["crm"])
    for i in range(500):
        sink.api_call("crm", f"get_record_{i}", "ok", 0.01)  # a connector that put an id in the operation
    sink.api_call("crm", "query /services/data/v60.0/query?q=SELECT", "weird-outcome")
    sink.api_call("not-configured", "query", "ok")
    samples = [s for f in metrics.registry.collect() if f.name == "syncd_api_calls" for s in f.samples]
    operations = {s.labels["operation"] for s in samples if s.labels["connection"] == "crm"}
    assert len(operations) <= 41 and "other" in operations  # a cap of 40 names per connection, then "other"
    assert {s.labels["outcome"] for s in samples} == {"ok", "other"}
    assert {s.labels["connection"] for s in samples} == {"crm", "other"}


def test_connector_budget_and_connection_state_are_exported() -> None:
    metrics = Metrics()
    sink = PrometheusTelemetry(metrics, ["crm"])
    sink.budget("crm", "daily_api_requests", 14000, 15000)
    sink.connection_up("crm", False)
    get = metrics.registry.get_sample_value
    assert get("syncd_api_budget_remaining", {"connection": "crm", "budget": "daily_api_requests"}) == 14000
    assert get("syncd_api_budget_limit", {"connection": "crm", "budget": "daily_api_requests"}) == 15000
    assert get("syncd_connection_up", {"connection": "crm"}) == 0


def test_healthz_answers_json_while_alive(company: Company, in_process: Start) -> None:
    daemon = in_process()
    code, body = http_get(daemon.url + "/healthz")
    assert code == 200 and json.loads(body)["status"] == "ok"


def test_readyz_answers_json_with_each_check(company: Company, in_process: Start) -> None:
    daemon = in_process()
    code, body = http_get(daemon.url + "/readyz")
    doc = json.loads(body)
    assert code == 200 and doc["status"] == "ready"
    assert doc["journal"]["writable"] and doc["config"]["loaded"] and doc["mappings"]["failing"] == []


def test_readyz_is_503_when_the_journal_is_not_writable(company: Company, in_process: Start) -> None:
    daemon = in_process()
    wait_for("the first pass", lambda: company.finished_runs("people"))
    company.journal.chmod(0o400)
    try:
        code, body = http_get(daemon.url + "/readyz")
    finally:
        company.journal.chmod(0o600)
    if code == 200:  # root ignores file modes; nothing to learn here then
        assert json.loads(body)["journal"]["writable"]
        return
    assert code == 503 and not json.loads(body)["journal"]["writable"]


def test_unknown_paths_are_404(company: Company, in_process: Start) -> None:
    daemon = in_process()
    assert http_get(daemon.url + "/nothing")[0] == 404
