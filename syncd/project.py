"""Loading a whole project: `syncd.yaml`, its connections and every mapping file, checked together.

Cross-file checks live here (a mapping naming an unknown connection, a lookup through a mapping
that does not exist, two files with the same mapping name), and so does the rule that every
problem of every file is reported at once.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from syncd.config import MappingSpec, SyncdSettings, pydantic_problems, schedule_problem, validate_connection
from syncd.errors import ConfigError, ConfigProblem
from syncd.logs import secret_filter, secrets_of
from syncd.mapping import CompiledMapping, compile_mapping
from syncd.plugins import load_connector_class
from syncd.records import Connector, StateDirAware
from syncd.yamlfile import LocatedDocument, load_yaml


@dataclass
class Connection:
    name: str
    kind: str
    settings: BaseModel


@dataclass
class Project:
    config_path: Path
    settings: SyncdSettings
    connections: dict[str, Connection]
    mappings: dict[str, CompiledMapping]
    mapping_files: dict[str, Path] = field(default_factory=dict)
    mapping_docs: dict[str, LocatedDocument] = field(default_factory=dict)

    @property
    def base_dir(self) -> Path:
        return self.config_path.parent

    @property
    def journal_path(self) -> Path:
        path = Path(self.settings.journal).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    def connect(self, name: str) -> Connector:
        conn = self.connections[name]
        cls = load_connector_class(conn.kind)
        connector: Connector = cls(name, conn.settings, self.base_dir)
        if isinstance(connector, StateDirAware):
            state_dir = self.journal_path.parent / "state"
            state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            connector.use_state_dir(state_dir)
        return connector

    def mapping(self, name: str) -> CompiledMapping:
        if name not in self.mappings:
            known = ", ".join(sorted(self.mappings)) or "none"
            raise ConfigError(f"no mapping named {name!r} (known: {known})")
        return self.mappings[name]

    def lookup_order(self) -> list[str]:
        """Mapping names ordered so a mapping runs after the mappings its lookups go through."""
        order: list[str] = []
        visiting: set[str] = set()

        def visit(name: str) -> None:
            if name in order or name in visiting:
                return
            visiting.add(name)
            for f in self.mappings[name].lookups:
                if f.lookup is not None and f.lookup.mapping in self.mappings:
                    visit(f.lookup.mapping)
            visiting.discard(name)
            order.append(name)

        for name in sorted(self.mappings):
            visit(name)
        return order


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def load_project(config_path: Path | str) -> Project:
    """Load and check everything; raise ConfigError listing every problem found."""
    config_path = Path(config_path)
    problems: list[ConfigProblem] = []
    doc, found = load_yaml(config_path, _display(config_path))
    problems.extend(found)
    if doc is None:
        raise ConfigError(problems)
    raw = doc.data if isinstance(doc.data, dict) else {}
    if not isinstance(doc.data, dict):
        problems.append(doc.problem((), "the file must be a mapping of settings"))
    settings: SyncdSettings | None = None
    try:
        settings = SyncdSettings.model_validate(raw)
    except ValidationError as exc:
        problems.extend(pydantic_problems(doc, exc))
        # Keep checking the connections that are mappings at all; one that is not (a scalar, a refused
        # YAML tag) is already reported above and made this fallback crash (found by tests/security).
        blocks = raw.get("connections")
        settings = (
            SyncdSettings.model_validate(
                {"connections": {k: v for k, v in blocks.items() if isinstance(v, dict)}}
            )
            if isinstance(blocks, dict)
            else SyncdSettings()
        )
    base_dir = config_path.parent
    connections: dict[str, Connection] = {}
    for name, block in settings.connections.items():
        conn_settings = validate_connection(name, block, doc, base_dir, problems)
        if conn_settings is not None:
            connections[name] = Connection(name, str(block.get("kind")), conn_settings)

    mappings: dict[str, CompiledMapping] = {}
    files: dict[str, Path] = {}
    docs: dict[str, LocatedDocument] = {}
    paths: list[Path] = []
    for pattern in settings.mappings:
        full = pattern if Path(pattern).is_absolute() else str(base_dir / pattern)
        matched = sorted(Path(p) for p in glob.glob(full))
        if not matched:
            problems.append(doc.problem(("mappings",), f"no mapping files match {pattern!r}"))
        paths.extend(m for m in matched if m not in paths)
    for path in paths:
        mdoc, found = load_yaml(path, _display(path))
        problems.extend(found)
        if mdoc is None:
            continue
        try:
            spec = MappingSpec.model_validate(mdoc.data)
        except ValidationError as exc:
            problems.extend(pydantic_problems(mdoc, exc))
            continue
        compiled, found = compile_mapping(spec, mdoc)
        problems.extend(found)
        if spec.name in mappings:
            problems.append(
                mdoc.problem(("name",), f"mapping name {spec.name!r} is also used in {files[spec.name]}")
            )
            continue
        mappings[spec.name] = compiled
        files[spec.name] = path
        docs[spec.name] = mdoc
    for name, compiled in mappings.items():
        problems.extend(_cross_checks(compiled, docs[name], settings.connections, mappings))
    if problems:
        raise ConfigError(problems)
    # Every command logs through the filter, not only `syncd run`: a debug log of `syncd sync` or the
    # demo showed an IMAP password (tests/security found it).
    secret_filter.add_secrets(secrets_of(c.settings for c in connections.values()))
    return Project(config_path, settings, connections, mappings, files, docs)


def _cross_checks(
    m: CompiledMapping,
    doc: LocatedDocument,
    connections: dict[str, Any],
    mappings: dict[str, CompiledMapping],
) -> list[ConfigProblem]:
    out: list[ConfigProblem] = []
    spec = m.spec
    for side in ("source", "target"):
        conn = getattr(spec, f"{side}_connection")
        if conn not in connections:
            out.append(
                doc.problem(
                    (side,), f"unknown connection {conn!r} (defined: {', '.join(connections) or 'none'})"
                )
            )
    problem = schedule_problem(spec.schedule)
    if problem:
        out.append(doc.problem(("schedule",), problem))
    for f in m.lookups:
        assert f.lookup is not None
        where = ("fields", f.target, "lookup")
        if f.lookup.mapping is not None:
            other = mappings.get(f.lookup.mapping)
            if other is None:
                out.append(doc.problem((*where, "mapping"), f"unknown mapping {f.lookup.mapping!r}"))
            elif spec.target_connection not in (other.spec.source_connection, other.spec.target_connection):
                out.append(
                    doc.problem(
                        (*where, "mapping"),
                        f"mapping {other.name!r} links {other.spec.source} and {other.spec.target}; neither is in "
                        f"this mapping's target connection {spec.target_connection!r}",
                    )
                )
        elif f.lookup.stream is not None and f.lookup.stream.split(".", 1)[0] not in connections:
            out.append(doc.problem((*where, "stream"), f"unknown connection in {f.lookup.stream!r}"))
    return out
