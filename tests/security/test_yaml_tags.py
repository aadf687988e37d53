"""YAML tags that construct objects (or any tag at all) are refused in syncd.yaml and mapping files.

A config is data: `!!python/object/apply:os.system [...]` must be a located error, never a call,
wherever it sits (a top-level value, a connection, a mapping field, a transform argument).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.errors import ConfigError
from syncd.project import load_project

CONFIG = """\
version: 1
journal: syncd.db
connections:
  src: {kind: files, path: src}
  dst: %(dst)s
"""
MAPPING = """\
version: 1
name: people
source: src.People
target: dst.People
match: {source: Id, target: Id}
fields:
  Id: Id
  Name: %(name)s
"""
TAGS = [
    '!!python/object/apply:os.system ["touch %(marker)s"]',
    '!!python/object/new:os.system ["touch %(marker)s"]',
    "!!python/name:os.system",
    '!!python/object/apply:subprocess.check_output [["touch", "%(marker)s"]]',
    "!custom value",
    "!include /etc/passwd",
]


def project(root: Path, dst: str = "{kind: files, path: dst}", name: str = "Name") -> Path:
    (root / "syncd.yaml").write_text(CONFIG % {"dst": dst})
    (root / "mappings").mkdir(exist_ok=True)
    (root / "mappings" / "people.yaml").write_text(MAPPING % {"name": name})
    return root / "syncd.yaml"


@pytest.mark.parametrize("tag", TAGS)
@pytest.mark.parametrize("where", ["connection", "mapping field", "transform argument"])
def test_a_yaml_tag_is_a_located_error_and_never_runs(tmp_path: Path, tag: str, where: str) -> None:
    marker = tmp_path / "pwned"
    value = tag % {"marker": marker}
    if where == "connection":
        config = project(tmp_path, dst=value)
    elif where == "mapping field":
        config = project(tmp_path, name=value)
    else:
        config = project(tmp_path, name="\n    from: Name\n    transform:\n      - truncate: " + value)
    with pytest.raises(ConfigError) as caught:
        load_project(config)
    assert not marker.exists()
    refusals = [p for p in caught.value.problems if "YAML tag" in p.message]
    assert refusals and all(p.line is not None for p in refusals), caught.value.problems
