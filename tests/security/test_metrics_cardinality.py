"""Metric labels are bounded: however many records, errors, operations or names pass through, the
number of series stays small.

Label values come only from the config (mapping and connection names) and fixed vocabularies
(outcomes, actions, dead-letter categories); values a connector reports are capped per connection.
Here ten thousand distinct record ids, error reasons, operation names, budgets, streams and unknown
connections are poured in, and the series are counted.
"""

from __future__ import annotations

import random
import string

from syncd.engine import PassResult
from syncd.metrics import Metrics, PrometheusTelemetry

N = 10_000


def series(metrics: Metrics) -> dict[str, int]:
    """Series per syncd family (process and GC collectors excluded)."""
    out: dict[str, int] = {}
    for family in metrics.registry.collect():
        if family.name.startswith("syncd_"):
            out[family.name] = len(family.samples)
    return out


def junk(rng: random.Random) -> str:
    return "".join(rng.choices(string.ascii_letters + string.digits + "-_:./ {}\"'", k=rng.randint(1, 90)))


def test_connector_reported_labels_are_capped_whatever_they_report() -> None:
    metrics = Metrics()
    telemetry = PrometheusTelemetry(metrics, connections=["crm", "roster"])
    rng = random.Random(1)
    for n in range(N):
        conn = rng.choice(["crm", "roster", junk(rng)])
        telemetry.api_call(conn, f"query-{n}", junk(rng), seconds=0.01)
        telemetry.retry(conn, f"op-{n}", f"reason {n}")
        telemetry.budget(conn, f"budget-{n}", 1.0, 2.0)
        telemetry.watch_event(conn, f"folder-{n}")
        telemetry.connection_up(conn, bool(n % 2))
    counts = series(metrics)
    assert sum(counts.values()) < 3_000, counts
    assert max(counts.values()) < 1_000, counts


def test_pass_metrics_do_not_grow_with_records_or_failure_reasons() -> None:
    metrics = Metrics()
    rng = random.Random(2)
    for n in range(N):
        result = PassResult("clients", None, outcome=rng.choice(["ok", "failures", "failed", junk(rng)]))
        result.counts.update(read=rng.randint(0, 50), created=rng.randint(0, 5), failed=1, skipped=2)
        failures = {f"record {n} failed: {junk(rng)}": 1, "validation": 1, "duplicate": 1}
        metrics.record_pass(result, rng.random(), failures, float(n))
    before = sum(series(metrics).values())
    for n in range(N):
        result = PassResult("clients", None, outcome="ok")
        metrics.record_pass(result, 0.1, {junk(rng): 1}, float(N + n))
    assert sum(series(metrics).values()) == before
    assert before < 500
