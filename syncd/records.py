"""The types every part of syncd speaks: records, batches, write operations and results, and the
connector protocol.

Connectors import this module and `syncd.errors` and nothing else of the engine, so these types
are deliberately plain dataclasses with JSON-friendly contents: what crosses the boundary between
the engine and an outside system must be storable in the journal as it is.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from threading import Event
from typing import Any, ClassVar, Protocol, TypeAlias, runtime_checkable

from pydantic import BaseModel

JSONValue: TypeAlias = Any
"""A value that `json.dumps` accepts (after `to_jsonable`): None, bool, int, float, str, list, dict."""

Cursor: TypeAlias = JSONValue
"""An opaque checkpoint a connector hands back with a batch; the engine stores it verbatim."""


@dataclass(frozen=True, slots=True)
class Record:
    """One item of a stream, as its own system knows it.

    `key` is the system's own id (a Salesforce Id, a sheet's key-column value, a Message-ID);
    `fields` holds plain JSON values, nested dicts for related records (`Owner: {Name: ...}`).
    """

    key: str
    fields: Mapping[str, JSONValue]
    modified_at: datetime | None = None
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class ReadProblem:
    """A source item that could not become a Record (a row with a blank key, an unparseable mail).

    It goes to dead letters with its raw content, so nothing read is silently dropped.
    """

    category: str
    message: str
    raw: str
    key: str | None = None
    place: str | None = None  # "Clients.csv:14", "INBOX uid 812" ...


@dataclass(slots=True)
class Batch:
    """A slice of a stream plus the cursor that resumes *after* it.

    A `cursor` of None means "this batch is not a checkpoint": the engine records the outcomes but
    keeps the previous cursor, so a crash re-reads from the last real checkpoint (safe, because
    writes are idempotent and unchanged records are skipped by their hash).
    """

    records: list[Record]
    cursor: Cursor | None
    problems: list[ReadProblem] = field(default_factory=list)


class Op(enum.StrEnum):
    CREATE = "create"
    UPDATE = "update"
    UPSERT = "upsert"
    DELETE = "delete"


@dataclass(slots=True)
class WriteOp:
    """One change to make in a target stream.

    `match` is the (field, value) pair a connector uses to make a create idempotent: before
    creating, it finds an existing record with that value and updates it instead (Salesforce
    upsert on an external id, a sheet row found by its key column). `idempotency_key` is stable for
    the same change of the same record, so a connector that cannot search (SMTP) can recognise a
    repeat.
    """

    op: Op
    fields: dict[str, JSONValue]
    key: str | None = None
    match: tuple[str, str] | None = None
    idempotency_key: str = ""


@dataclass(slots=True)
class WriteResult:
    """The outcome of one WriteOp, in the same position as the op it answers."""

    ok: bool
    key: str | None = None
    error: RecordFailure | None = None
    created: bool = False


@dataclass(frozen=True, slots=True)
class RecordFailure:
    """A per-record failure with the outside system's own code and message.

    `category` is one of DEAD_LETTER_CATEGORIES; it drives retry and reporting.
    """

    category: str
    code: str
    message: str


DEAD_LETTER_CATEGORIES = (
    "validation",
    "duplicate",
    "permission",
    "quota",
    "transient-exhausted",
    "bad-input",
    "unresolved-reference",
    "not-found",
)


@dataclass(frozen=True, slots=True)
class FieldInfo:
    name: str
    type: str = "string"
    createable: bool = True
    updateable: bool = True
    external_id: bool = False
    calculated: bool = False
    nullable: bool = True


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """What a stream holds; `capabilities` names the optional methods it supports ("find", "watch")."""

    name: str
    key_field: str
    fields: tuple[FieldInfo, ...]
    capabilities: frozenset[str] = frozenset()

    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]


@runtime_checkable
class Connector(Protocol):
    """What the engine needs from an outside system. See ARCHITECTURE.md, "The connector protocol".

    A connector class also carries `Settings`, the pydantic model of its configuration block, and
    is built as `cls(name, settings, base_dir)`. It may also carry `write_batch_size: int`, the
    number of ops one `write` call handles best (see `preferred_write_batch`): the engine uses it
    when a mapping does not set `batch_size`, so a pass costs as few API calls as the target allows.
    """

    Settings: ClassVar[type[BaseModel]]

    def streams(self) -> list[StreamInfo]: ...

    def read(self, stream: str, cursor: Cursor | None) -> Iterator[Batch]: ...

    def write(self, stream: str, ops: Sequence[WriteOp]) -> list[WriteResult]: ...

    def close(self) -> None: ...


DEFAULT_WRITE_BATCH = 200
"""Ops per write call (and per journal transaction) when neither the mapping nor the target says."""


def preferred_write_batch(connector: object) -> int:
    """The target's `write_batch_size`, else DEFAULT_WRITE_BATCH.

    Why the target decides: one write call costs one Salesforce collections call per 200 records,
    one Sheets batchUpdate whatever the rows, one rewrite of a whole file. Fewer, larger calls are
    what API quotas and whole-file formats reward, and only the connector knows its own limits.
    """
    size = getattr(connector, "write_batch_size", None)
    return size if isinstance(size, int) and size > 0 else DEFAULT_WRITE_BATCH


@runtime_checkable
class Finder(Protocol):
    """Optional capability: one batched lookup of keys by a field's values."""

    def find(self, stream: str, field: str, values: Collection[str]) -> dict[str, str]: ...


@runtime_checkable
class PassAware(Protocol):
    """Optional: told when a pass starts, so per-pass state (an API budget, cached describes) resets
    even when the service keeps one connector open across many passes."""

    def new_pass(self) -> None: ...


@runtime_checkable
class StateDirAware(Protocol):
    """Optional: connectors whose per-row state is too large for a cursor keep it in files here.

    The directory lives beside the journal, because the journal is where syncd's state lives and
    a config directory may be read-only (/etc/syncd). What a connector keeps there must be a cache
    it can rebuild: a cursor still names what was read, and losing the directory costs a full read.
    """

    def use_state_dir(self, path: Path) -> None: ...


@runtime_checkable
class Watcher(Protocol):
    """Optional capability: yields each time the stream changed (IMAP IDLE)."""

    def watch(self, stream: str, stop: Event) -> Iterator[None]: ...


_PLAIN = (str, int, bool, type(None))


def to_jsonable(value: Any) -> JSONValue:
    """Plain JSON values for what systems hand us (dates, decimals), so hashes are stable."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if type(value) is dict and all(type(v) in _PLAIN and type(k) is str for k, v in value.items()):
        return value  # the common case, a flat record of text and numbers: nothing to convert
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return str(value)


def canonical_json(value: JSONValue) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def content_hash(value: JSONValue) -> str:
    """A short, stable hash of a JSON value (blake2b of its canonical JSON)."""
    return hashlib.blake2b(canonical_json(value).encode("utf-8"), digest_size=16).hexdigest()


class Telemetry:
    """Where connectors report what the daemon exports as metrics; the default reports nowhere.

    It lives here, not in syncd.metrics, because connectors may import only this module and
    syncd.errors. The service installs a prometheus-backed subclass with `set_telemetry`. Every
    argument must come from a closed set (connection and stream names from the config, operation
    names from the connector's code, outcome/reason from a fixed vocabulary): never a record key,
    an address or an error text, so the number of series stays bounded.
    """

    def api_call(self, connection: str, operation: str, outcome: str, seconds: float = 0.0) -> None:
        """One call to the outside system; outcome is "ok", "error", "throttled" or "transient"."""

    def retry(self, connection: str, operation: str, reason: str) -> None:
        """A call about to be repeated after a transient failure."""

    def budget(self, connection: str, budget: str, remaining: float, limit: float | None = None) -> None:
        """What is left of an API allowance (Salesforce daily requests, a Sheets quota bucket)."""

    def watch_event(self, connection: str, stream: str) -> None:
        """A watched stream reported activity (IMAP IDLE answered, or its liveness check passed)."""

    def connection_up(self, connection: str, up: bool) -> None:
        """The connection is reachable (True) or not (False)."""


_telemetry = Telemetry()


def telemetry() -> Telemetry:
    return _telemetry


def set_telemetry(sink: Telemetry) -> None:
    global _telemetry
    _telemetry = sink
