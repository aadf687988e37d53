"""Reading YAML while remembering where every value came from.

Users edit these files by hand, so every error must point at a line and column. ruamel.yaml's
round-trip loader keeps positions; we turn its nodes into plain Python values plus an index from
value path to position, so validation code can work on plain data and still locate problems.
Object-constructing tags (`!!python/...`) and custom tags are refused: a config file is data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from syncd.errors import ConfigProblem

PathKey = tuple[str | int, ...]

PLAIN_TAGS = {
    f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp")
} | {"?", "!"}


@dataclass
class LocatedDocument:
    """A parsed YAML file: plain data plus the 1-based (line, column) of each path in it."""

    file: str
    data: Any
    positions: dict[PathKey, tuple[int, int]] = field(default_factory=dict)
    key_positions: dict[PathKey, tuple[int, int]] = field(default_factory=dict)

    def locate(self, path: Sequence[str | int]) -> tuple[int | None, int | None]:
        """The position of `path`, or of its nearest ancestor that has one."""
        key = tuple(path)
        while True:
            if key in self.positions:
                return self.positions[key]
            if not key:
                return (None, None)
            key = key[:-1]

    def problem(self, path: Sequence[str | int], message: str, *, at_key: bool = False) -> ConfigProblem:
        """A problem at `path`'s value, or at its key (`at_key`) for "this setting should not be here"."""
        line, column = (
            self.key_positions.get(tuple(path)) or self.locate(path) if at_key else self.locate(path)
        )
        return ConfigProblem(self.file, line, column, format_path(path), message)


def format_path(path: Sequence[str | int]) -> str:
    """`("fields", "Email", "transform", 1)` -> `fields.Email.transform[1]`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def load_yaml(
    path: Path, display_name: str | None = None
) -> tuple[LocatedDocument | None, list[ConfigProblem]]:
    name = display_name or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return None, [ConfigProblem(name, None, None, "", f"cannot read file: {exc.strerror}")]
    return parse_yaml(text, name)


def parse_yaml(text: str, name: str) -> tuple[LocatedDocument | None, list[ConfigProblem]]:
    yaml = YAML(typ="rt")
    try:
        raw = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        col = mark.column + 1 if mark else None
        reason = exc.problem or exc.context or "invalid YAML"
        return None, [ConfigProblem(name, line, col, "", f"invalid YAML: {reason}")]
    except YAMLError as exc:
        return None, [ConfigProblem(name, None, None, "", f"invalid YAML: {exc}")]
    doc = LocatedDocument(name, None)
    problems: list[ConfigProblem] = []
    doc.data = _plain(raw, (), doc, problems)
    return doc, problems


def _tag_of(node: Any) -> str | None:
    tag = getattr(node, "tag", None)
    value = getattr(tag, "value", None) if tag is not None else None
    return value if isinstance(value, str) else None


def _plain(node: Any, path: PathKey, doc: LocatedDocument, problems: list[ConfigProblem]) -> Any:
    tag = _tag_of(node)
    if tag and tag not in PLAIN_TAGS:
        problems.append(doc.problem(path, f"YAML tag {tag!r} is not allowed in syncd files"))
        return None
    if isinstance(node, CommentedMap):
        out: dict[str, Any] = {}
        for key in node:
            key_line, key_col = node.lc.key(key)
            child = (*path, str(key))
            doc.positions.setdefault(child, (key_line + 1, key_col + 1))
            doc.key_positions[child] = (key_line + 1, key_col + 1)
            value = node[key]
            if isinstance(value, CommentedMap | CommentedSeq):
                # Point at the key for containers: that is where a person looks.
                pass
            else:
                val_line, val_col = node.lc.value(key)
                doc.positions[child] = (val_line + 1, val_col + 1)
            out[str(key)] = _plain(value, child, doc, problems)
        return out
    if isinstance(node, CommentedSeq):
        items = []
        for index, value in enumerate(node):
            child = (*path, index)
            where = node.lc.item(index)
            if where is not None:
                doc.positions[child] = (where[0] + 1, where[1] + 1)
            items.append(_plain(value, child, doc, problems))
        return items
    if node is None or isinstance(node, bool | int | float):
        return node
    if isinstance(node, str):
        return str(node)
    # Timestamps and other scalars ruamel resolves: keep them as text so nothing surprising happens.
    return str(node)
