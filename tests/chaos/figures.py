"""The figures the chaos and fault suites measure, printed once at the end of a pytest run.

Each suite's conftest forwards pytest's terminal-summary hook here; with SYNCD_CHAOS_REPORT naming a
file the figures are also written there as JSON (docs/guarantees.md quotes the last run).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

FIGURES: dict[str, dict[str, Any]] = {}
_printed: list[bool] = []


def record_figures(name: str, **figures: Any) -> None:
    FIGURES[name] = figures


def print_figures(terminalreporter: Any) -> None:
    if not FIGURES or _printed:
        return
    _printed.append(True)
    terminalreporter.section("syncd chaos and fault figures")
    for name, figures in sorted(FIGURES.items()):
        terminalreporter.write_line(f"{name}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))
    target = os.environ.get("SYNCD_CHAOS_REPORT")
    if target:
        Path(target).write_text(json.dumps(FIGURES, indent=2, sort_keys=True), encoding="utf-8")
