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
