"""Compiling a mapping file into functions: source record -> target fields, and back.

Everything that can be checked without data is checked here, at load: unknown transforms, bad
templates, fields a two-way mapping could not write back. At sync time the compiled mapping only
computes values; a value that cannot be computed is a per-record `RecordError`, never a crash.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from jinja2 import ChainableUndefined, TemplateError, TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from syncd.config import FieldSpec, LookupSpec, MappingSpec
from syncd.errors import ConfigProblem, RecordError
from syncd.records import JSONValue, content_hash
from syncd.transforms import BoundTransform, TransformError, TransformSpecError, compile_chain, suggest
from syncd.yamlfile import LocatedDocument


def _blank_none(value: Any) -> Any:
    """A missing value renders as nothing, not as the text "None" (`default()` only sees undefined)."""
    return "" if value is None else value


_ENV = ImmutableSandboxedEnvironment(undefined=ChainableUndefined, autoescape=False, finalize=_blank_none)


def get_path(fields: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path; a key that itself contains dots ("Owner.Name" as a column) wins."""
    if path in fields:
        return fields[path]
    value: Any = fields
    for part in path.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]  # "from.0.address": the first sender's address
        else:
            return None
    return value


def nest(fields: Mapping[str, Any]) -> dict[str, Any]:
    """A template context where "Owner.Name" columns are also reachable as Owner.Name."""
    out: dict[str, Any] = dict(fields)
    for key, value in fields.items():
        if "." not in key:
            continue
        parts = key.split(".")
        node = out
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node.setdefault(parts[-1], value)
    return out


def text_of(value: Any) -> str | None:
    """Match keys and lookup values are compared as text: 42, 42.0 and "42" are the same key."""
    if value is None or value == "":
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip() or None


@dataclass
class CompiledField:
    target: str
    spec: FieldSpec
    source_path: str | None = None
    chain: BoundTransform | None = None
    inverse_map: dict[str, Any] | None = None
    template: Any = None
    why_not_invertible: str | None = None

    @property
    def readonly(self) -> bool:
        return self.spec.readonly or self.spec.template is not None or "value" in self.spec.model_fields_set

    @property
    def writes_back(self) -> bool:
        return not self.readonly and self.why_not_invertible is None

    @property
    def lookup(self) -> LookupSpec | None:
        return self.spec.lookup


@dataclass
class CompiledMapping:
    spec: MappingSpec
    fields: list[CompiledField]
    filter_expr: Any = None
    fields_hash: str = ""
    lookups: list[CompiledField] = field(default_factory=list)
    once_per_template: Any = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def two_way(self) -> bool:
        return self.spec.direction == "two-way"

    @property
    def target_fields(self) -> list[str]:
        return [f.target for f in self.fields]

    @property
    def back_fields(self) -> list[CompiledField]:
        """Fields a target-side change is written back through (two-way only)."""
        return [f for f in self.fields if f.writes_back] if self.two_way else []

    @property
    def formula_fields(self) -> list[str]:
        return [f.target for f in self.fields if f.spec.formula]

    def period(self, now: datetime | None = None) -> str:
        """The value of `once_per` at `now` ("2026-11" for a monthly report); "" without one."""
        if self.once_per_template is None:
            return ""
        return str(self.once_per_template.render(now=now or datetime.now(UTC))).strip()

    def keeps(self, source_fields: Mapping[str, Any]) -> bool:
        """Whether the mapping's filter lets this source record through."""
        if self.filter_expr is None:
            return True
        try:
            return bool(self.filter_expr(**nest(source_fields)))
        except TemplateError as exc:
            raise RecordError("bad-input", f"filter failed: {exc}", code="FILTER") from exc

    def source_match_value(self, source_fields: Mapping[str, Any]) -> str | None:
        return text_of(get_path(source_fields, self.spec.match.source))

    def target_match_value(self, target_fields: Mapping[str, Any]) -> str | None:
        return text_of(get_path(target_fields, self.spec.match.target))

    def lookup_values(self, source_fields: Mapping[str, Any]) -> dict[str, str]:
        """target field -> the value its lookup must resolve, for batching the lookups of a batch."""
        out = {}
        for f in self.lookups:
            assert f.lookup is not None
            value = text_of(get_path(source_fields, f.lookup.from_))
            if value is not None:
                out[f.target] = value
        return out

    def apply(
        self, source_fields: Mapping[str, Any], resolved: Mapping[str, Mapping[str, str]]
    ) -> dict[str, JSONValue]:
        """Target fields for one source record. `resolved` is target field -> {looked-up value: key}.

        Raises RecordError naming the field: bad-input for values no transform accepts,
        unresolved-reference for lookups that found nothing (the parent may not have synced yet).
        """
        out: dict[str, JSONValue] = {}
        for f in self.fields:
            out[f.target] = self._value(f, source_fields, resolved)
        return out

    def _value(
        self, f: CompiledField, src: Mapping[str, Any], resolved: Mapping[str, Mapping[str, str]]
    ) -> JSONValue:
        spec = f.spec
        if "value" in spec.model_fields_set:
            return spec.value
        if f.template is not None:
            try:
                return str(f.template.render(nest(src))).strip()
            except TemplateError as exc:
                raise RecordError(
                    "bad-input", f"template failed: {exc}", code="TEMPLATE", field=f.target
                ) from exc
        if spec.lookup is not None:
            wanted = text_of(get_path(src, spec.lookup.from_))
            if wanted is None:
                return None
            key = resolved.get(f.target, {}).get(wanted)
            if key is None:
                where = (
                    f"mapping {spec.lookup.mapping!r}"
                    if spec.lookup.mapping
                    else f"{spec.lookup.stream} by {spec.lookup.by}"
                )
                raise RecordError(
                    "unresolved-reference",
                    f"{spec.lookup.from_} {wanted!r} not found through {where}",
                    code="UNRESOLVED_REFERENCE",
                    field=f.target,
                )
            return key
        assert f.source_path is not None
        value = get_path(src, f.source_path)
        if f.chain is not None:
            try:
                value = f.chain.forward(value)
            except TransformError as exc:
                raise RecordError(
                    "bad-input", f"{f.source_path}: {exc}", code="TRANSFORM", field=f.target
                ) from exc
        if spec.map is not None and value is not None:
            if str(value) not in spec.map:
                known = ", ".join(list(spec.map)[:8])
                raise RecordError(
                    "bad-input",
                    f"{f.source_path}: value {str(value)[:60]!r} is not in the map ({known})",
                    code="TRANSFORM",
                    field=f.target,
                )
            value = spec.map[str(value)]
        if value is None or value == "":
            if "default" in spec.model_fields_set:
                return spec.default
            return None if value is None else value
        return value

    def normalise(self, name: str, target_value: Any) -> Any:
        """A target value as the mapping itself would have written it: back through the inverse and
        forward again (" Ann@X.COM " -> "ann@x.com" under [strip, lower]). Unchanged when the field
        does not write back or the value cannot make the round trip (the write-back reports that)."""
        f = next((x for x in self.fields if x.target == name), None)
        if f is None or not f.writes_back or target_value is None:
            return target_value
        value = target_value
        try:
            if f.inverse_map is not None:
                if str(value) not in f.inverse_map:
                    return target_value
                value = f.inverse_map[str(value)]
            if f.chain is not None and f.chain.inverse is not None:
                value = f.chain.forward(f.chain.inverse(value))
        except TransformError:
            return target_value
        if f.spec.map is not None and value is not None:
            value = f.spec.map.get(str(value), value)
        return value

    def invert(self, target_fields: Mapping[str, Any], names: Iterable[str]) -> dict[str, JSONValue]:
        """Source fields for the given target fields of a two-way mapping (only ones that write back)."""
        by_name = {f.target: f for f in self.fields}
        out: dict[str, JSONValue] = {}
        for name in names:
            f = by_name[name]
            if not f.writes_back:
                continue
            value = target_fields.get(name)
            if f.inverse_map is not None and value is not None:
                if str(value) not in f.inverse_map:
                    raise RecordError(
                        "bad-input",
                        f"value {str(value)[:60]!r} has no reverse in the map",
                        code="TRANSFORM",
                        field=name,
                    )
                value = f.inverse_map[str(value)]
            if f.chain is not None and f.chain.inverse is not None:
                try:
                    value = f.chain.inverse(value)
                except TransformError as exc:
                    raise RecordError("bad-input", str(exc), code="TRANSFORM", field=name) from exc
            assert f.source_path is not None
            out[f.source_path] = value
        return out


def compile_mapping(spec: MappingSpec, doc: LocatedDocument) -> tuple[CompiledMapping, list[ConfigProblem]]:
    problems: list[ConfigProblem] = []
    compiled: list[CompiledField] = []
    for target, entry in spec.fields.items():
        fs = FieldSpec.model_validate({"from": entry}) if isinstance(entry, str) else entry
        compiled.append(_compile_field(target, fs, spec, doc, problems))
    filter_expr = None
    if spec.filter:
        try:
            filter_expr = _ENV.compile_expression(spec.filter, undefined_to_none=True)
        except TemplateSyntaxError as exc:
            problems.append(doc.problem(("filter",), f"invalid filter expression: {exc.message}"))
    fields_hash = content_hash(
        {
            "fields": {
                t: (e if isinstance(e, str) else e.model_dump(by_alias=True, exclude_defaults=True))
                for t, e in spec.fields.items()
            },
            "filter": spec.filter,
        }
    )
    mapping = CompiledMapping(spec, compiled, filter_expr, fields_hash, [f for f in compiled if f.lookup])
    if spec.once_per:
        try:
            mapping.once_per_template = _ENV.from_string(spec.once_per)
        except TemplateSyntaxError as exc:
            problems.append(doc.problem(("once_per",), f"invalid template: {exc.message}"))
    return mapping, problems


def _compile_field(
    target: str, fs: FieldSpec, spec: MappingSpec, doc: LocatedDocument, problems: list[ConfigProblem]
) -> CompiledField:
    where: tuple[str | int, ...] = ("fields", target)
    cf = CompiledField(target, fs, source_path=fs.from_)
    if fs.transform:
        ok = True
        for index, item in enumerate(fs.transform):
            try:
                compile_chain([item])
            except TransformSpecError as exc:
                ok = False
                unknown = getattr(exc, "unknown_name", None)
                if unknown:
                    near = suggest(unknown)
                    hint = f" (did you mean {near!r}?)" if near else " (see `syncd transforms`)"
                    problems.append(
                        doc.problem((*where, "transform", index), f"unknown transform {unknown!r}{hint}")
                    )
                else:
                    problems.append(doc.problem((*where, "transform", index), str(exc)))
        if ok:
            cf.chain = compile_chain(list(fs.transform))
    if fs.template is not None:
        try:
            cf.template = _ENV.from_string(fs.template)
        except TemplateSyntaxError as exc:
            problems.append(doc.problem((*where, "template"), f"invalid template: {exc.message}"))
    if fs.map is not None:
        values = [str(v) for v in fs.map.values()]
        if len(set(values)) == len(values):
            cf.inverse_map = {str(v): k for k, v in fs.map.items()}
        else:
            cf.why_not_invertible = "its map sends two values to the same one"
    if cf.chain is not None and cf.chain.inverse is None:
        cf.why_not_invertible = "a transform in it cannot be reversed"
    if fs.lookup is not None:
        cf.why_not_invertible = "lookups cannot be written back"
    if fs.from_ is not None and "." in fs.from_:
        cf.why_not_invertible = cf.why_not_invertible or "it reads a related record's field"
    if spec.direction == "two-way" and not cf.readonly and cf.why_not_invertible:
        problems.append(
            doc.problem(where, f"cannot be written back: {cf.why_not_invertible}; mark it 'readonly: true'")
        )
    return cf
