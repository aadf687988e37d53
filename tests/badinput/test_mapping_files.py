"""Random mapping files: valid ones load, invalid ones give located errors, none crash.

Documents are built from the real vocabulary of a mapping (so many are valid or nearly so) mixed with
random keys, values and text that is not YAML at all. Loading goes through `load_project`, as every
command does; the only acceptable failure is a ConfigError whose every problem names the file, and a
line when the document was a mapping at all.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncd.errors import ConfigError
from syncd.project import load_project

CONFIG = """\
version: 1
journal: syncd.db
connections:
  src: {kind: files, path: src, keys: {People: Id}}
  dst: {kind: files, path: dst, keys: {People: Id}}
"""

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 10_000),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(
        [
            "src.People",
            "dst.People",
            "Id",
            "Name",
            "strip",
            "lower",
            "two-way",
            "one-way",
            "source-wins",
            "newest-wins",
            "manual",
            "propagate",
            "flag",
            "ignore",
            "5m",
            "1h",
            "*/5 * * * *",
            "{{ Name }}",
            "Name == 'x'",
            "src.Nope",
            "",
        ]
    ),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.text(max_size=10)
            | st.sampled_from(
                ["from", "transform", "value", "template", "map", "lookup", "readonly", "source", "target"]
            ),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=12,
)
field_specs = st.one_of(
    st.sampled_from(["Id", "Name", "Missing"]),
    st.fixed_dictionaries(
        {"from": st.sampled_from(["Name", "Id"])}, optional={"transform": values, "map": values}
    ),
    values,
)
mappings = st.fixed_dictionaries(
    {},
    optional={
        "version": st.one_of(st.just(1), values),
        "name": st.one_of(st.just("people"), st.text(max_size=12)),
        "source": st.one_of(st.just("src.People"), values),
        "target": st.one_of(st.just("dst.People"), values),
        "match": st.one_of(st.just({"source": "Id", "target": "Id"}), values),
        "fields": st.one_of(
            st.dictionaries(st.sampled_from(["Id", "Name", "Extra"]), field_specs, max_size=3), values
        ),
        "direction": values,
        "conflict": values,
        "deletes": values,
        "schedule": values,
        "batch_size": values,
        "filter": values,
        "surprise": values,
    },
)
documents = st.one_of(
    mappings.map(lambda d: json.dumps(d, indent=2)),
    st.text(max_size=200),
    st.just("version: 1\nname: [unclosed\n"),
    st.just("- just\n- a list\n"),
)


@given(text=documents)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_mapping_file_loads_or_gives_located_errors(text: str, tmp_path: Path) -> None:
    (tmp_path / "syncd.yaml").write_text(CONFIG, encoding="utf-8")
    (tmp_path / "mappings").mkdir(exist_ok=True)
    mapping = tmp_path / "mappings" / "people.yaml"
    mapping.write_text(text, encoding="utf-8")
    try:
        project = load_project(tmp_path / "syncd.yaml")
    except ConfigError as exc:
        assert exc.problems, "a ConfigError without problems"
        for problem in exc.problems:
            assert problem.file, problem
            assert problem.message, problem
            present = "required setting is missing" not in problem.message  # absent: named by its path
            if text.startswith("{") and problem.file.endswith("people.yaml") and present:
                assert problem.line is not None, problem
    else:
        assert all(isinstance(name, str) for name in project.mappings)


@pytest.mark.parametrize(
    "text",
    [
        'version: 1\nname: people\nsource: src.People\ntarget: dst.People\nmatch: {source: Id, target: Id}\nfields: {Id: Id}\nbatch_size: "many"\n',
        "version: 1\nname: people\nsource: src.People\ntarget: dst.People\nmatch: {source: Id, target: Id}\nfields:\n  Id: {from: Id, transform: [nonsense]}\n",
    ],
)
def test_a_wrong_setting_is_reported_at_its_line(text: str, tmp_path: Path) -> None:
    (tmp_path / "syncd.yaml").write_text(CONFIG, encoding="utf-8")
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "people.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_project(tmp_path / "syncd.yaml")
    lines = [p.line for p in caught.value.problems if p.file.endswith("people.yaml")]
    assert lines and all(line is not None and line >= 6 for line in lines)
