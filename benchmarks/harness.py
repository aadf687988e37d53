"""What every benchmark shares: one figure's shape, a table on stdout, JSON on disk, and child processes.

Each measured job runs in a fresh child process so its peak RSS is its own (not the stand-ins', not
an earlier job's), while the stand-ins stay in this process and count the calls the child makes.
Nothing here asserts: a figure is printed next to its goal, and `met` says whether it reached it.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import platform
import resource
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"

REALISTIC_LATENCY_MS = 150
"""One round trip to Salesforce or Google from a small office: network plus the service's fixed cost."""


@dataclass
class Figure:
    """One measured figure: what ran, at what size and latency, how long, how many calls, how much memory."""

    bench: str
    case: str
    size: int = 0
    latency_ms: int = 0
    seconds: float | None = None
    per_second: float | None = None
    calls: dict[str, int] = field(default_factory=dict)
    rss_mb: float | None = None
    value: float | None = None
    unit: str = ""
    goal: str = ""
    met: bool | None = None
    notes: str = ""

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())


@dataclass
class Results:
    """Figures of one benchmark run, printed as a table and written as JSON."""

    bench: str
    command: str = field(default_factory=lambda: " ".join([Path(sys.executable).name, *sys.argv]))
    figures: list[Figure] = field(default_factory=list)

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        print(_row(figure), flush=True)
        return figure

    def write(self, path: Path | None = None) -> Path:
        path = path or RESULTS_DIR / f"{self.bench}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        doc = {
            "bench": self.bench,
            "command": self.command,
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine(),
            "figures": [asdict(f) | {"total_calls": f.total_calls} for f in self.figures],
        }
        path.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        print(f"\nwrote {path}")
        return path


def header() -> None:
    print(
        f"{'case':<46} {'size':>8} {'lat ms':>6} {'seconds':>8} {'per s':>9} {'calls':>6} "
        f"{'RSS MB':>7} {'value':>10}  goal",
        flush=True,
    )


def _row(f: Figure) -> str:
    def num(v: float | None, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)

    met = "" if f.met is None else (" ok" if f.met else " MISSED")
    value = "-" if f.value is None else f"{f.value:,.2f}{f.unit and ' ' + f.unit}"
    return (
        f"{f.case:<46} {f.size:>8} {f.latency_ms:>6} {num(f.seconds, '8.2f')} {num(f.per_second, '9.0f')} "
        f"{f.total_calls:>6} {num(f.rss_mb, '7.0f')} {value:>10}  {f.goal}{met}"
        + (f"  [{f.notes}]" if f.notes else "")
    )


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def peak_rss_mb() -> float:
    """This process's peak resident set size since it started its program, in MB.

    Linux's `VmHWM` (the high-water mark of this address space), not getrusage's ru_maxrss: the
    latter survives fork and exec, so a child spawned by a big parent would report the parent's peak.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child_main(queue: Any, fn: Callable[..., dict[str, Any]], args: tuple[Any, ...]) -> None:
    try:
        out = fn(*args)
        out["rss_mb"] = peak_rss_mb()
        queue.put(("ok", out))
    except BaseException:  # the parent reports it: a benchmark must not hang
        queue.put(("error", traceback.format_exc()))


def in_child(fn: Callable[..., dict[str, Any]], *args: Any, timeout: float = 3600) -> dict[str, Any]:
    """Run `fn(*args)` in a fresh spawned process and return its dict, with that process's peak RSS.

    `fn` must be importable (a module-level function) and its arguments picklable.
    """
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child_main, args=(queue, fn, args))
    proc.start()
    try:
        status, out = queue.get(timeout=timeout)
    finally:
        proc.join(timeout=30)
        if proc.is_alive():
            proc.kill()
    if status != "ok" or not isinstance(out, dict):
        raise RuntimeError(f"benchmark child failed:\n{out}")
    return out


class Stopwatch:
    """`with Stopwatch() as sw: ...` then `sw.seconds`."""

    def __enter__(self) -> Stopwatch:
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start


def sizes(arg: str) -> list[int]:
    """'1k,10k,100k,1M' -> [1000, 10000, 100000, 1000000]."""
    out = []
    for part in arg.split(","):
        part = part.strip().lower()
        mult = 1_000_000 if part.endswith("m") else 1_000 if part.endswith("k") else 1
        out.append(int(float(part.rstrip("mk")) * mult))
    return out
