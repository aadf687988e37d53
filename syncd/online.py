"""`syncd validate --online`: the mapping files checked against what the live systems say they hold.

Offline validation cannot know that `Tier__c` was renamed in Salesforce or that a sheet lost its
"Email" column; asking each connection's `streams()` once catches that before a pass turns it into
hundreds of identical dead letters.
"""

from __future__ import annotations

from syncd.errors import SyncdError
from syncd.mapping import CompiledMapping
from syncd.project import Project
from syncd.records import StreamInfo


def online_problems(project: Project) -> list[str]:
    problems: list[str] = []
    described: dict[str, dict[str, StreamInfo]] = {}
    for name in sorted(
        {c for m in project.mappings.values() for c in (m.spec.source_connection, m.spec.target_connection)}
    ):
        connector = None
        try:
            connector = project.connect(name)
            described[name] = {s.name: s for s in connector.streams()}
        except SyncdError as exc:
            problems.append(f"connection {name!r}: {exc}")
        finally:
            if connector is not None:
                connector.close()
    for _name, m in sorted(project.mappings.items()):
        problems.extend(_mapping_problems(project, m, described))
    return problems


def _mapping_problems(
    project: Project, m: CompiledMapping, described: dict[str, dict[str, StreamInfo]]
) -> list[str]:
    doc = project.mapping_docs[m.name]
    spec = m.spec
    out: list[str] = []
    src = described.get(spec.source_connection, {}).get(spec.source_stream)
    tgt = described.get(spec.target_connection, {}).get(spec.target_stream)
    if spec.source_connection in described and src is None:
        out.append(
            str(doc.problem(("source",), f"{spec.source_connection} has no stream {spec.source_stream!r}"))
        )
    if spec.target_connection in described and tgt is None:
        out.append(
            str(doc.problem(("target",), f"{spec.target_connection} has no stream {spec.target_stream!r}"))
        )
    if src is not None:
        names = set(src.field_names())
        wanted = [("match", "source")] if not _source_has(spec.match.source, names, grouped=False) else []
        for where in wanted:
            out.append(str(doc.problem(where, f"source stream has no field {spec.match.source!r}")))
        for f in m.fields:
            path = f.source_path or (f.lookup.from_ if f.lookup else None)
            if path and not _source_has(path, names, grouped=spec.group_by is not None):
                out.append(
                    str(
                        doc.problem(
                            ("fields", f.target), f"source stream {spec.source} has no field {path!r}"
                        )
                    )
                )
    if tgt is not None:
        info = {fi.name: fi for fi in tgt.fields}
        if spec.match.target not in info:
            out.append(
                str(doc.problem(("match", "target"), f"target stream has no field {spec.match.target!r}"))
            )
        for f in m.fields:
            fi = info.get(f.target)
            if fi is None and f.target.startswith("attachment:") and "attachments" in info:
                continue  # a computed attachment of a mail target
            if fi is None:
                if "add-columns" not in tgt.capabilities:
                    out.append(
                        str(
                            doc.problem(
                                ("fields", f.target), f"target stream {spec.target} has no field {f.target!r}"
                            )
                        )
                    )
                continue
            if not fi.createable and not fi.updateable:
                out.append(
                    str(
                        doc.problem(
                            ("fields", f.target),
                            f"{spec.target}.{f.target} can be neither created nor updated",
                        )
                    )
                )
            elif not fi.createable:
                out.append(
                    str(doc.problem(("fields", f.target), f"{spec.target}.{f.target} is not createable"))
                )
    return out


def _source_has(path: str, names: set[str], *, grouped: bool) -> bool:
    """Whether a source path names a field the stream has: itself, its first segment, or a relationship
    (`Account.Email__c` through `AccountId`, `Client__r.Email__c` through `Client__c`); a group
    mapping's records also carry `items` and `count`."""
    first = path.split(".")[0]
    if path in names or first in names:
        return True
    if grouped and first in ("items", "count"):
        return True
    if f"{first}Id" in names:
        return True
    return first.endswith("__r") and f"{first[:-3]}__c" in names
