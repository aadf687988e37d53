"""Google partial responses: the `fields` parameter (`kind,files(id,name)`, `sheets.data.rowData.values.note`).

gspread asks for narrow masks (notes, formats, column widths, named ranges) and reads exactly the keys
the live API leaves in; the empty-object trimming below copies what the recordings show (an absent
key rather than `[]`, trailing empty cells and rows dropped from `rowData`).
"""

from __future__ import annotations

from typing import Any

FieldTree = dict[str, "FieldTree | None"]


class FieldMaskError(ValueError):
    pass


def parse_fields(text: str) -> FieldTree:
    """Parse a mask into a tree: {"sheets": {"data": {"rowData": None}}} ("None" = the whole value)."""
    tree, pos = _parse_list(text.replace(" ", ""), 0)
    if pos != len(text.replace(" ", "")):
        raise FieldMaskError(text)
    return tree


def _parse_list(text: str, pos: int) -> tuple[FieldTree, int]:
    tree: FieldTree = {}
    while pos < len(text):
        start = pos
        while pos < len(text) and text[pos] not in ",()":
            pos += 1
        path = [p for p in text[start:pos].replace("/", ".").split(".") if p]
        if not path:
            raise FieldMaskError(text)
        leaf: FieldTree | None = None
        if pos < len(text) and text[pos] == "(":
            leaf, pos = _parse_list(text, pos + 1)
            if pos >= len(text) or text[pos] != ")":
                raise FieldMaskError(text)
            pos += 1
        _insert(tree, path, leaf)
        if pos < len(text) and text[pos] == ",":
            pos += 1
            continue
        break
    return tree, pos


def _insert(tree: FieldTree, path: list[str], leaf: FieldTree | None) -> None:
    head, rest = path[0], path[1:]
    if not rest:
        existing = tree.get(head, {}) if head in tree else None
        if head in tree and existing is None:
            return
        if leaf is None:
            tree[head] = None
        else:
            merged = dict(existing or {})
            merged.update(leaf)
            tree[head] = merged
        return
    if head in tree and tree[head] is None:
        return
    sub = tree.setdefault(head, {})
    assert sub is not None
    _insert(sub, rest, leaf)


_TRIMMED_LISTS = ("rowData", "values")


def apply_fields(data: Any, tree: FieldTree | None) -> Any:
    """Keep only the masked parts of `data`."""
    if tree is None:
        return data
    if isinstance(data, list):
        return [apply_fields(item, tree) for item in data]
    if not isinstance(data, dict):
        return data
    out: dict[str, Any] = {}
    for key, sub in tree.items():
        if key not in data:
            continue
        value = apply_fields(data[key], sub)
        if key in _TRIMMED_LISTS and isinstance(value, list):
            while value and value[-1] in ({}, None):
                value.pop()
            if not value:
                continue
        if value == {}:
            continue
        out[key] = value
    return out
