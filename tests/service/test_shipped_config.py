"""The Grafana dashboard and the Prometheus alert rules shipped in config/ speak of metrics that exist.

A renamed metric would otherwise leave a blank panel or, worse, an alert that can never fire.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from syncd.journal import Journal
from syncd.metrics import JournalCollector, Metrics, WatchIdleCollector
from tests.service.conftest import tool

promql_parser = pytest.importorskip(
    "promql_parser", reason="promql-parser is a test dependency ([test] extra)"
)

CONFIG = Path(__file__).resolve().parents[2] / "config"
DASHBOARD = CONFIG / "grafana" / "syncd.json"
ALERTS = CONFIG / "prometheus" / "alerts.yml"
ALERT_TESTS = CONFIG / "prometheus" / "alerts_test.yml"
FROM_PROMETHEUS = {"up"}  # made by Prometheus itself for every scrape target


@pytest.fixture(scope="module")
def known_names(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    metrics = Metrics()
    journal = tmp_path_factory.mktemp("journal") / "syncd.db"
    collector = JournalCollector(lambda: Journal(journal), lambda: [])
    metrics.registry.register(collector)
    metrics.registry.register(WatchIdleCollector(metrics))
    names = metrics.family_names()
    collector.close()
    return names | FROM_PROMETHEUS


def metric_names(expr: str) -> set[str]:
    """Every metric a PromQL expression selects, from its syntax tree."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        kind = type(node).__name__
        if kind == "VectorSelector":
            found.add(node.name)
            return
        for attr in ("lhs", "rhs", "expr", "param", "vector_selector"):
            child = getattr(node, attr, None)
            if child is not None and not isinstance(child, str | int | float):
                walk(child)
        for arg in getattr(node, "args", None) or []:
            walk(arg)

    # Grafana variables are not PromQL; any regex stands in for them.
    walk(promql_parser.parse(re.sub(r"\$\{?\w+\}?", ".*", expr)))
    return found


def dashboard_queries() -> list[str]:
    doc = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    out = [t["expr"] for p in doc["panels"] for t in p.get("targets", [])]
    for var in doc["templating"]["list"]:
        query = var.get("query")
        text = query.get("query") if isinstance(query, dict) else None
        if text:
            out.append(re.fullmatch(r"label_values\((\w+),\s*\w+\)", text).group(1))  # type: ignore[union-attr]
    return out


def alert_rules() -> list[dict[str, Any]]:
    doc = YAML(typ="safe").load(ALERTS.read_text(encoding="utf-8"))
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_every_dashboard_query_uses_metrics_that_exist(known_names: set[str]) -> None:
    queries = dashboard_queries()
    assert len(queries) >= 15
    for expr in queries:
        unknown = metric_names(expr) - known_names
        assert not unknown, f"{expr!r} uses unknown metrics {sorted(unknown)}"


def test_the_dashboard_shows_what_an_operator_watches() -> None:
    used = set().union(*(metric_names(e) for e in dashboard_queries()))
    for name in (
        "syncd_records_total",
        "syncd_record_failures_total",
        "syncd_lag_seconds",
        "syncd_api_budget_remaining",
        "syncd_dead_letters",
        "syncd_conflicts_open",
        "syncd_watch_idle_seconds",
    ):
        assert name in used


def test_every_alert_rule_uses_metrics_that_exist(known_names: set[str]) -> None:
    for rule in alert_rules():
        unknown = metric_names(rule["expr"]) - known_names
        assert not unknown, f"alert {rule['alert']} uses unknown metrics {sorted(unknown)}"


def test_the_alerts_cover_the_failure_modes_of_the_issue() -> None:
    names = {rule["alert"] for rule in alert_rules()}
    assert names >= {
        "SyncdDown",
        "SyncdMappingFailing",
        "SyncdLagHigh",
        "SyncdDeadLettersGrowing",
        "SyncdApiBudgetLow",
        "SyncdIdleListenerSilent",
    }


def test_promtool_accepts_the_alert_rules() -> None:
    checked = subprocess.run(
        [tool("promtool"), "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_alert_rules_pass_their_promtool_unit_tests() -> None:
    tested = subprocess.run(
        [tool("promtool"), "test", "rules", ALERT_TESTS.name],
        cwd=ALERT_TESTS.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_systemd_accepts_the_service_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    unit = (CONFIG / "systemd" / "syncd.service").read_text(encoding="utf-8")
    assert "ExecStart=/opt/syncd/bin/syncd " in unit
    # verify wants ExecStart to exist: point it at this checkout's syncd for the check.
    here = tmp_path / "syncd.service"
    here.write_text(unit.replace("/opt/syncd/bin/syncd", str(Path(sys.executable).with_name("syncd"))))
    checked = subprocess.run([analyze, "verify", str(here)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0 and str(here) not in checked.stderr, checked.stderr
