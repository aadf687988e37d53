"""The five kinds of failure, each with exactly one way of being handled (ARCHITECTURE.md, "Errors").

Keeping the taxonomy this small is the point: a connector maps its system's codes onto these, and
every caller knows what to do with each without knowing which system raised it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


class SyncdError(Exception):
    """Base of all syncd errors."""


@dataclass(frozen=True)
class ConfigProblem:
    """One located problem in a config or mapping file."""

    file: str
    line: int | None
    column: int | None
    path: str
    message: str

    def __str__(self) -> str:
        place = self.file
        if self.line is not None:
            place += f":{self.line}"
            if self.column is not None:
                place += f":{self.column}"
        where = f" {self.path}:" if self.path else ""
        return f"{place}:{where} {self.message}"


class ConfigError(SyncdError):
    """Bad configuration: reported all at once with places, exit code 2; a daemon keeps its old config."""

    def __init__(self, problems: list[ConfigProblem] | str) -> None:
        if isinstance(problems, str):
            problems = [ConfigProblem("<config>", None, None, "", problems)]
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class TransientError(SyncdError):
    """A failure the system itself calls temporary (429, 503, lock contention, reset connection).

    Retried by the connector around the one call that failed; when retries run out it becomes a
    per-record failure of category `transient-exhausted`.
    """

    def __init__(self, message: str, code: str = "TRANSIENT") -> None:
        self.code = code
        super().__init__(message)


@dataclass
class RecordError(SyncdError):
    """One record cannot be synced: it goes to dead letters with its category; the batch goes on."""

    category: str
    message: str
    code: str = ""
    field: str | None = None
    extra: dict[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        where = f"{self.field}: " if self.field else ""
        return f"{where}{self.message}"


class BudgetExhausted(SyncdError):
    """An API budget is used up: the pass stops at a batch boundary, cursor saved, resumes next pass."""


class ConnectionDown(SyncdError):
    """The system is unreachable or refuses our credentials: that mapping backs off and reports."""
