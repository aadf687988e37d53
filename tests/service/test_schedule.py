"""When a mapping runs next: intervals spread by jitter, cron times exact, and a wake-up runs it now."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime

from syncd.service import next_run
from tests.service.conftest import Company, InProcessDaemon, wait_for

NOON = datetime(2026, 11, 23, 12, 0, 30, tzinfo=UTC).timestamp()


def test_an_interval_is_spread_by_at_most_the_jitter() -> None:
    rng = random.Random(7)
    runs = [next_run("5m", NOON, 0.1, rng) - NOON for _ in range(200)]
    assert all(270 <= r <= 330 for r in runs)
    assert len({round(r) for r in runs}) > 10  # actually spread, not one fixed offset


def test_an_interval_without_jitter_is_exact() -> None:
    assert next_run("30s", NOON, 0, random.Random()) == NOON + 30


def test_a_cron_schedule_runs_at_its_next_time_without_jitter() -> None:
    nxt = next_run("*/15 * * * *", NOON, 0.5, random.Random())
    assert datetime.fromtimestamp(nxt, UTC) == datetime(2026, 11, 23, 12, 15, tzinfo=UTC)


def test_a_woken_mapping_runs_before_its_schedule(
    company: Company, in_process: Callable[[], InProcessDaemon]
) -> None:
    daemon = in_process()  # people runs every hour
    wait_for("the first pass", lambda: company.finished_runs("people"))
    company.write_people(1, start=3)
    daemon.daemon.wake("people")
    wait_for("the woken pass", lambda: len(company.target_rows("People")) == 3)
    assert len(company.finished_runs("people")) == 2


def overlapping(runs: list[dict[str, object]]) -> list[tuple[object, object]]:
    """Pairs of runs whose [started_at, finished_at] intervals overlap."""
    spans = sorted((str(r["started_at"]), str(r["finished_at"]), r["id"]) for r in runs)
    found, latest = [], None
    for start, end, run_id in spans:
        if latest is not None and start < latest[0]:
            found.append((latest[1], run_id))
        if latest is None or end > latest[0]:
            latest = (end, run_id)
    return found


def test_one_mapping_never_runs_twice_at_once(
    company: Company, in_process: Callable[[], InProcessDaemon]
) -> None:
    company.write_people(2000, start=3)
    company.write_people_mapping(batch_size=50)
    daemon = in_process()
    for n in range(6):  # wake it again and again, also while its passes run
        company.write_people(1, start=5000 + n)
        daemon.daemon.wake("people")
        wait_for(f"pass {n + 1}", lambda n=n: len(company.runs("people")) >= n + 1)
    wait_for("the last pass to end", lambda: all(r["finished_at"] for r in company.runs("people")))
    assert overlapping(company.runs("people")) == []


def test_concurrency_1_runs_one_pass_at_a_time(
    company: Company, in_process: Callable[[], InProcessDaemon]
) -> None:
    company.write_config(concurrency=1)
    company.write_people(2000, start=3)
    for name in ("copy_a", "copy_b"):
        (company.root / "mappings" / f"{name}.yaml").write_text(
            f"version: 1\nname: {name}\nsource: src.People\ntarget: dst.{name}\n"
            "match: {source: Id, target: Id}\nfields: {Id: Id, Name: Name}\nschedule: 1h\n"
        )
    in_process()
    wait_for(
        "all three mappings to pass",
        lambda: all(company.finished_runs(n) for n in ("people", "copy_a", "copy_b")),
    )
    assert overlapping(company.runs()) == []
