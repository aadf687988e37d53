"""Render benchmarks/results/*.json as Markdown tables, into docs/performance.md between its markers.

    .venv/bin/python benchmarks/report.py            # print the tables
    .venv/bin/python benchmarks/report.py --write    # replace the figures section of docs/performance.md

The document's prose is written by people; the figures come only from the JSON the benchmarks wrote,
so the two cannot drift apart silently.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DOC = HERE.parent / "docs" / "performance.md"
START, END = "<!-- figures:start -->", "<!-- figures:end -->"
ORDER = ("sync", "latency", "baseline")


def cell(value: Any, fmt: str = "") -> str:
    if value is None or value == "" or value == {}:
        return ""
    if isinstance(value, float):
        return format(value, fmt or ",.2f")
    if isinstance(value, int):
        return format(value, ",")
    return str(value).replace("|", "\\|")


def calls_text(calls: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(calls.items()))


def table(name: str, doc: dict[str, Any]) -> str:
    lines = [
        f"### {name}",
        "",
        f"`{doc['command']}` — {doc['when']}, Python {doc['machine']['python']}, "
        f"{doc['machine']['cpus']} CPUs, load average {doc['machine']['load_average'][0]} at the end",
        "",
        "| case | size | latency ms | seconds | per second | API calls | peak RSS MB | figure | goal | met |",
        "|---|--:|--:|--:|--:|---|--:|--:|---|---|",
    ]
    for f in doc["figures"]:
        met = "" if f["met"] is None else ("yes" if f["met"] else "**no**")
        figure = "" if f["value"] is None else f"{cell(f['value'])} {f['unit']}".strip()
        notes = f" ({f['notes']})" if f.get("notes") else ""
        lines.append(
            f"| {cell(f['case'])}{cell(notes)} | {cell(f['size'])} | {cell(f['latency_ms'])} | "
            f"{cell(f['seconds'])} | {cell(f['per_second'], ',.0f')} | {cell(calls_text(f['calls']))} | "
            f"{cell(f['rss_mb'], ',.0f')} | {figure} | {cell(f['goal'])} | {met} |"
        )
    return "\n".join(lines) + "\n"


def render() -> str:
    docs = [(p.stem, json.loads(p.read_text())) for p in sorted((HERE / "results").glob("*.json"))]
    docs.sort(key=lambda d: (ORDER.index(d[1]["bench"]) if d[1]["bench"] in ORDER else len(ORDER), d[0]))
    return "\n".join(table(name, d) for name, d in docs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--write", action="store_true", help=f"replace the figures in {DOC}")
    args = parser.parse_args()
    text = render()
    if not args.write:
        print(text)
        return
    doc = DOC.read_text(encoding="utf-8")
    head, _, rest = doc.partition(START)
    _, _, tail = rest.partition(END)
    DOC.write_text(f"{head}{START}\n{text}{END}{tail}", encoding="utf-8")
    print(f"wrote the figures into {DOC}")


if __name__ == "__main__":
    main()
