"""The pydantic models of `syncd.yaml` and of mapping files, and their located validation.

Models are the single spec of both file kinds: validation, the JSON Schema editors use
(`config/schema/`), and the documentation all come from them, so they cannot drift apart.
Validation never stops at the first problem: a person fixing a file wants every problem at once,
each with file:line:col.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, model_validator

from syncd.errors import ConfigProblem
from syncd.plugins import connector_kinds, load_connector_class
from syncd.yamlfile import LocatedDocument

STREAM_REF = r"^[A-Za-z_][A-Za-z0-9_-]*\.[^.\s][^\n]*$"
INTERVAL = re.compile(r"^(\d+)(s|m|h|d)$")
INTERVAL_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class MetricsSettings(_Strict):
    listen: str = Field(
        "127.0.0.1:9464", description="host:port of the /metrics, /healthz and /readyz server."
    )


class ServiceSettings(_Strict):
    """How `syncd run` schedules passes, backs off, stops and judges itself ready."""

    concurrency: int = Field(4, ge=1, le=64, description="Most mappings that run a pass at the same time.")
    grace_seconds: float = Field(
        30,
        ge=0,
        description="On SIGTERM/SIGINT, how long running passes get to finish their batch and commit.",
    )
    jitter: float = Field(
        0.1,
        ge=0,
        le=0.5,
        description="Interval schedules are spread by up to this fraction, so mappings drift apart.",
    )
    backoff_initial_seconds: float = Field(
        30, gt=0, description="First wait after a mapping's pass failed (doubles on each failure in a row)."
    )
    backoff_max_seconds: float = Field(
        900, gt=0, description="Longest wait between retries of a failing mapping."
    )
    failing_threshold_seconds: float = Field(
        900,
        gt=0,
        description="/readyz turns not-ready when a mapping has been failing for longer than this.",
    )
    reload_poll_seconds: float = Field(
        2, gt=0, description="How often syncd.yaml and the mapping files are checked for changes."
    )


class SyncdSettings(_Strict):
    """`syncd.yaml`: the connections, where the journal lives, and which mapping files to load."""

    version: Literal[1] = Field(1, description="Format version of this file.")
    journal: str = Field("syncd.db", description="Path of the SQLite journal (relative to this file).")
    mappings: list[str] = Field(
        default_factory=lambda: ["mappings/*.yaml"],
        description="Glob patterns of mapping files (relative to this file).",
    )
    metrics: MetricsSettings = Field(default_factory=lambda: MetricsSettings())
    service: ServiceSettings = Field(default_factory=lambda: ServiceSettings())
    events_retention_days: int = Field(
        90,
        ge=1,
        description="Audit events older than this many days are pruned from the journal after each pass.",
    )
    connections: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="name -> {kind: <connector kind>, ...settings of that connector}.",
    )


class MatchSpec(_Strict):
    source: str = Field(description="Field of the source record that identifies it in the target.")
    target: str = Field(description="Field of the target record holding the same value.")


class LookupSpec(_Strict):
    """Turns a key from another system into the key this target needs."""

    mapping: str | None = Field(None, description="Resolve through this mapping's links (either side).")
    stream: str | None = Field(
        None, pattern=STREAM_REF, description="Or find the record in connection.stream by a field."
    )
    by: str | None = Field(None, description="With `stream`: the field of that stream to search.")
    from_: str = Field(alias="from", description="Source field holding the value to look up.")

    @model_validator(mode="after")
    def _one_way_of_looking(self) -> LookupSpec:
        if (self.mapping is None) == (self.stream is None):
            raise ValueError("give exactly one of 'mapping' or 'stream'")
        if self.stream is not None and not self.by:
            raise ValueError("'stream' lookups need 'by' (the field to search)")
        return self


class FieldSpec(_Strict):
    """How one target field is filled: exactly one of from / template / value / lookup."""

    from_: str | None = Field(
        None, alias="from", description="Source field path (dotted for related records)."
    )
    transform: list[Any] = Field(
        default_factory=list, description="Transforms applied in order (`syncd transforms`)."
    )
    map: dict[str, Any] | None = Field(None, description="Value translation table, applied after transforms.")
    default: Any = Field(None, description="Value used when the source value is missing or empty.")
    template: str | None = Field(None, description="Jinja2 template over the source record (sandboxed).")
    value: Any = Field(None, description="A constant.")
    lookup: LookupSpec | None = None
    readonly: bool = Field(False, description="Never written back in a two-way mapping.")
    formula: bool = Field(False, description="The target column holds spreadsheet formulas (not escaped).")

    @model_validator(mode="after")
    def _one_source(self) -> FieldSpec:
        given = [k for k in ("from_", "template", "lookup") if getattr(self, k) is not None]
        if "value" in self.model_fields_set:
            given.append("value")
        if len(given) != 1:
            names = ", ".join("from" if g == "from_" else g for g in given) or "none"
            raise ValueError(f"give exactly one of 'from', 'template', 'value' or 'lookup' (got {names})")
        return self


def _entry_kind(value: Any) -> str:
    return "path" if isinstance(value, str) else "spec"


FieldEntry = Annotated[
    Annotated[str, Tag("path")] | Annotated[FieldSpec, Tag("spec")],
    Discriminator(_entry_kind),
    Field(description="A source field path, or a full field spec."),
]


class PostAction(_Strict):
    """What to do to a source message once the journal holds its outcome (mail sources)."""

    action: Literal["seen", "flag", "move"] = Field(
        description="Mark it seen, flag it, or move it to `folder`."
    )
    folder: str | None = Field(None, description="With move: the folder to move handled messages to.")
    flag: str = Field("\\Flagged", description="With flag: the flag to set.")

    @model_validator(mode="after")
    def _move_needs_folder(self) -> PostAction:
        if self.action == "move" and not self.folder:
            raise ValueError("post_action move needs a folder")
        return self


class MappingSpec(_Strict):
    """A mapping file: how a source stream's records become a target stream's records."""

    version: Literal[1] = Field(1, description="Format version of this file.")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", description="Unique mapping name.")
    description: str | None = None
    source: str = Field(pattern=STREAM_REF, description="connection.stream records are read from.")
    target: str = Field(pattern=STREAM_REF, description="connection.stream records are written to.")
    direction: Literal["one-way", "two-way"] = "one-way"
    match: MatchSpec
    fields: dict[str, FieldEntry] = Field(description="Target field -> how it is filled from the source.")
    filter: str | None = Field(
        None, description="Jinja2 expression; only source records where it is true sync."
    )
    conflict: Literal["source-wins", "target-wins", "newest-wins", "manual"] = "source-wins"
    deletes: Literal["propagate", "flag", "ignore"] = "ignore"
    flag_field: str | None = Field(
        None, description="With deletes: flag, the target field that marks a deletion."
    )
    flag_value: Any = Field("Deleted", description="With deletes: flag, the value written to flag_field.")
    schedule: str = Field("5m", description="Interval (30s, 5m, 1h, 1d) or a five-field cron expression.")
    batch_size: int | None = Field(
        None,
        ge=1,
        le=100_000,
        description=(
            "Records per write call and per journal transaction. Unset: the target's preferred size "
            "(Salesforce 10,000, Sheets 10,000, CSV files 2,000, others 200). Bigger costs fewer API calls and more memory."
        ),
    )
    updates: bool = Field(
        True,
        description="false: a linked record is never updated (notifications: each email is sent once).",
    )
    on_filter_exit: Literal["keep", "unlink"] = Field(
        "keep",
        description=(
            "What happens to the link of a source record that stops passing the filter. unlink: a later "
            "re-entry counts as new, e.g. one low-stock email per crossing of the threshold."
        ),
    )
    once_per: str | None = Field(
        None,
        description=(
            "Jinja2 template of a period, e.g. \"{{ now.strftime('%Y-%m') }}\": when its value changes, "
            "every record counts as new again (a monthly report to each client)."
        ),
    )
    post_action: PostAction | None = Field(
        None,
        description=(
            "Mail sources: after a message's outcome is committed, mark it seen, flag it or move it. "
            "Messages that became dead letters stay where they are."
        ),
    )
    group_by: str | None = Field(
        None,
        description=(
            "Source field to group by: each group becomes one record with the group's first record's "
            "fields plus `items` (every record's fields) and `count`. The source is read in full each pass."
        ),
    )

    @model_validator(mode="after")
    def _flag_needs_field(self) -> MappingSpec:
        if self.deletes == "flag" and not self.flag_field:
            raise ValueError("deletes: flag needs flag_field (the target field that marks a deletion)")
        if self.direction == "two-way" and (not self.updates or self.group_by or self.once_per):
            raise ValueError("updates: false, group_by and once_per are for one-way mappings")
        return self

    @property
    def source_connection(self) -> str:
        return self.source.split(".", 1)[0]

    @property
    def source_stream(self) -> str:
        return self.source.split(".", 1)[1]

    @property
    def target_connection(self) -> str:
        return self.target.split(".", 1)[0]

    @property
    def target_stream(self) -> str:
        return self.target.split(".", 1)[1]


def schedule_problem(text: str) -> str | None:
    """None when `text` is a valid interval or cron expression, else what is wrong."""
    if INTERVAL.match(text):
        return None
    from croniter import croniter

    if len(text.split()) == 5 and croniter.is_valid(text):
        return None
    return f"schedule {text!r} is neither an interval (30s, 5m, 1h, 1d) nor a five-field cron expression"


def interval_seconds(text: str) -> int | None:
    m = INTERVAL.match(text)
    return int(m.group(1)) * INTERVAL_SECONDS[m.group(2)] if m else None


def pydantic_problems(
    doc: LocatedDocument, exc: ValidationError, prefix: tuple[str | int, ...] = ()
) -> list[ConfigProblem]:
    """Located problems from a pydantic error, without ever echoing input values (they may be secrets)."""
    out = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = [p for p in err["loc"] if p not in ("path", "spec")]
        path = (*prefix, *(p if isinstance(p, int) else str(p) for p in loc))
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown setting"
        elif err["type"] == "missing":
            msg = "required setting is missing"
        msg = msg.removeprefix("Value error, ")
        out.append(doc.problem(path, msg, at_key=err["type"] == "extra_forbidden"))
    return _dedupe(out)


def _dedupe(problems: list[ConfigProblem]) -> list[ConfigProblem]:
    seen: set[str] = set()
    out = []
    for p in problems:
        if str(p) not in seen:
            seen.add(str(p))
            out.append(p)
    return out


SECRET_ENV = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")


def resolve_secrets(
    value: Any,
    path: tuple[str | int, ...],
    doc: LocatedDocument,
    base_dir: Path,
    problems: list[ConfigProblem],
) -> Any:
    """Replace `${ENV}` and `file:/path` strings by what they point at, recursively.

    Resolution happens at load so a missing secret is a config error now, not a failure at 3 a.m.
    The resolved text is never put into a message.
    """
    if isinstance(value, dict):
        return {k: resolve_secrets(v, (*path, k), doc, base_dir, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_secrets(v, (*path, i), doc, base_dir, problems) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value
    env = SECRET_ENV.match(value)
    if env:
        name = env.group(1)
        if name not in os.environ:
            problems.append(doc.problem(path, f"environment variable {name} is not set"))
            return ""
        return os.environ[name]
    if value.startswith("file:"):
        target = Path(value[5:]).expanduser()
        if not target.is_absolute():
            target = base_dir / target
        try:
            return target.read_text(encoding="utf-8").strip()
        except OSError as exc:
            problems.append(doc.problem(path, f"cannot read secret file {target}: {exc.strerror}"))
            return ""
    return value


def validate_connection(
    name: str, raw: Any, doc: LocatedDocument, base_dir: Path, problems: list[ConfigProblem]
) -> BaseModel | None:
    """Validate one connection block with its connector's own Settings model."""
    path: tuple[str | int, ...] = ("connections", name)
    if not isinstance(raw, dict):
        problems.append(doc.problem(path, "a connection is a mapping with at least 'kind'"))
        return None
    kind = raw.get("kind")
    kinds = connector_kinds()
    if not isinstance(kind, str) or kind not in kinds:
        from difflib import get_close_matches

        near = get_close_matches(str(kind), list(kinds), n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else f" (known: {', '.join(sorted(kinds))})"
        problems.append(doc.problem((*path, "kind"), f"unknown connector kind {kind!r}{hint}"))
        return None
    try:
        cls = load_connector_class(kind)
    except Exception as exc:  # a broken plugin must not hide the rest of the config
        problems.append(doc.problem((*path, "kind"), f"connector {kind!r} cannot be loaded: {exc}"))
        return None
    resolved = resolve_secrets(raw, path, doc, base_dir, problems)
    try:
        settings: BaseModel = cls.Settings.model_validate(resolved)
    except ValidationError as exc:
        problems.extend(pydantic_problems(doc, exc, path))
        return None
    return settings
