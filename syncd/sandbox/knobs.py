"""Test knobs every stand-in shares: latency, fault injection by rate or call number, call counts.

Fault injection is a property of the stand-in (the server misbehaves on the wire), never a mock in
the code under test, so the client's real retry and error paths are what the tests exercise.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class FaultPlan:
    """Which calls fail and how.

    `kinds` are stand-in specific names (for example "429", "503", "UNABLE_TO_LOCK_ROW", "drop").
    A call fails when its 1-based number is in `on_calls`, or with probability `rate`; the kind is
    picked from `kinds` (seeded, so a test run is repeatable). `only` limits faults to call kinds
    (for example {"query"}); empty means every call.
    """

    rate: float = 0.0
    on_calls: set[int] = field(default_factory=set)
    kinds: list[str] = field(default_factory=lambda: ["503"])
    only: set[str] = field(default_factory=set)
    seed: int = 0


class Knobs:
    """Thread-safe counters and fault decisions for one stand-in."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.total_calls = 0
        self.latency_s = 0.0
        # The "timeout" fault kind: the stand-in stalls this long, then answers as usual (the change
        # is made), as a slow server does; a client whose timeout is shorter gives up and retries.
        self.stall_seconds = 2.0
        self.faults = FaultPlan()
        self._rng = random.Random(0)

    def set_faults(self, plan: FaultPlan) -> None:
        with self._lock:
            self.faults = plan
            self._rng = random.Random(plan.seed)
            self.total_calls = 0

    def clear_faults(self) -> None:
        self.set_faults(FaultPlan())

    def reset_counts(self) -> None:
        with self._lock:
            self.calls.clear()

    def on_call(self, kind: str) -> str | None:
        """Count one call of `kind`, sleep the configured latency, and return a fault kind or None."""
        with self._lock:
            self.calls[kind] += 1
            self.total_calls += 1
            number = self.total_calls
            plan = self.faults
            fault: str | None = None
            if (not plan.only or kind in plan.only) and (
                number in plan.on_calls or (plan.rate > 0 and self._rng.random() < plan.rate)
            ):
                fault = self._rng.choice(plan.kinds) if plan.kinds else None
            latency = self.latency_s
        if latency:
            time.sleep(latency)
        return fault
