"""Faults come from the stand-ins' knobs (the server misbehaves on the wire), never from mocks of syncd.

Passes run in this process through `run_pass` with a real journal, so a test can change a knob
between two passes; the sources and targets are the crash suite's sequence-numbered scenarios.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from syncd.engine import PassResult, run_pass
from syncd.journal import Journal
from syncd.project import load_project
from syncd.sandbox.salesforce import SalesforceSandbox
from syncd.sandbox.sheets import SheetsSandbox
from tests.chaos.figures import print_figures
from tests.chaos.scenarios import Scenario, write_project
from tests.stand_ins import salesforce_org, sheets_without_quotas


def one_pass(root: Path, scenario: Scenario, monkeypatch: pytest.MonkeyPatch) -> PassResult:
    """One pass of the scenario's mapping, as `syncd sync seq` would run it."""
    for name, value in scenario.env().items():
        monkeypatch.setenv(name, value)
    write_project(root, scenario)
    project = load_project(root / "syncd.yaml")
    with Journal(project.journal_path) as journal:
        return run_pass(project, journal, "seq")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    print_figures(terminalreporter)


@pytest.fixture
def org() -> Iterator[SalesforceSandbox]:
    yield from salesforce_org()


@pytest.fixture
def sheets_server() -> Iterator[SheetsSandbox]:
    yield from sheets_without_quotas()
