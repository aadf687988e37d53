"""Configuration problems are reported all at once, each with file:line:col, path and a hint."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.cli import main
from syncd.errors import ConfigError
from syncd.project import load_project

CONFIG = """\
version: 1
connections:
  crm: {kind: files, path: crm}
  roster:
    kind: files
    path: roster
"""

CLIENTS_WITH_TYPO = """\
# mappings/clients.yaml
version: 1
name: clients
source: crm.Account
target: roster.Clients
direction: two-way
match: {source: AccountNumber, target: "Account No"}
fields:
  "Account No": AccountNumber
  "Client": Name
  "Tier": {from: Tier__c, map: {Gold: A, Silver: B, Bronze: C}}
  "Email": {from: Email__c,
    transform: [strip,
    lowercase]}
"""


def project_dir(tmp_path: Path, config: str = CONFIG, **mappings: str) -> Path:
    (tmp_path / "syncd.yaml").write_text(config)
    (tmp_path / "mappings").mkdir()
    for name, text in mappings.items():
        (tmp_path / "mappings" / f"{name}.yaml").write_text(text)
    return tmp_path / "syncd.yaml"


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_project(path)
    return [str(p) for p in caught.value.problems]


def test_unknown_transform_is_reported_at_its_line_and_column_with_a_suggestion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    project_dir(tmp_path, clients=CLIENTS_WITH_TYPO)
    assert main(["validate"]) == 2
    assert capsys.readouterr().err.strip() == (
        "mappings/clients.yaml:14:5: fields.Email.transform[1]: unknown transform 'lowercase' (did you mean 'lower'?)"
    )


def test_every_problem_of_every_file_is_reported_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    broken = CLIENTS_WITH_TYPO.replace("direction: two-way", "direction: sideways")
    other = CLIENTS_WITH_TYPO.replace("name: clients", "name: more").replace("crm.Account", "erp.Account")
    found = problems(project_dir(tmp_path, clients=broken, more=other))
    assert any(p.startswith("mappings/clients.yaml:6:12: direction:") for p in found)
    assert any("mappings/more.yaml:4:9: source: unknown connection 'erp'" in p for p in found)
    assert any("mappings/more.yaml:14:5: fields.Email.transform[1]" in p for p in found)


def test_unknown_setting_in_a_mapping_names_its_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    text = CLIENTS_WITH_TYPO.replace("lowercase", "lower") + "conflicts: manual\n"
    assert problems(project_dir(tmp_path, clients=text)) == [
        "mappings/clients.yaml:15:1: conflicts: unknown setting"
    ]


def test_two_way_field_that_cannot_be_written_back_must_be_marked_readonly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    text = (
        CLIENTS_WITH_TYPO.replace("lowercase", "lower")
        + '  "Short": {from: Name, transform: [{truncate: 5}]}\n'
    )
    [problem] = problems(project_dir(tmp_path, clients=text))
    assert problem.startswith("mappings/clients.yaml:15:3: fields.Short: cannot be written back")
    assert "readonly: true" in problem


def test_template_in_a_two_way_mapping_without_readonly_is_accepted_as_read_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    text = CLIENTS_WITH_TYPO.replace("lowercase", "lower") + '  "Label": {template: "{{ Name }}"}\n'
    project = load_project(project_dir(tmp_path, clients=text))
    assert [f.target for f in project.mappings["clients"].back_fields] == [
        "Account No",
        "Client",
        "Tier",
        "Email",
    ]


def test_missing_environment_secret_is_a_config_error_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ROSTER_DIR", raising=False)
    config = CONFIG.replace("path: roster", "path: ${ROSTER_DIR}")
    found = problems(
        project_dir(tmp_path, config=config, clients=CLIENTS_WITH_TYPO.replace("lowercase", "lower"))
    )
    assert found == ["syncd.yaml:6:11: connections.roster.path: environment variable ROSTER_DIR is not set"]


def test_secret_values_never_appear_in_error_messages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SEP", "hunter2-very-secret")
    config = CONFIG.replace("path: roster", "path: roster\n    delimiter: ${SEP}")
    found = problems(
        project_dir(tmp_path, config=config, clients=CLIENTS_WITH_TYPO.replace("lowercase", "lower"))
    )
    assert found and all("hunter2" not in p for p in found)
    assert any("connections.roster.delimiter" in p for p in found)


def test_secret_from_a_file_is_read_at_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "roster-path").write_text("roster\n")
    config = CONFIG.replace("path: roster", "path: file:roster-path")
    project = load_project(
        project_dir(tmp_path, config=config, clients=CLIENTS_WITH_TYPO.replace("lowercase", "lower"))
    )
    assert str(project.connections["roster"].settings.path) == "roster"  # type: ignore[attr-defined]


def test_unknown_connector_kind_suggests_the_closest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = CONFIG.replace("kind: files, path: crm", "kind: file, path: crm")
    found = problems(
        project_dir(tmp_path, config=config, clients=CLIENTS_WITH_TYPO.replace("lowercase", "lower"))
    )
    assert found == [
        "syncd.yaml:3:15: connections.crm.kind: unknown connector kind 'file' (did you mean 'files'?)"
    ]


def test_yaml_tags_that_construct_objects_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    text = CLIENTS_WITH_TYPO.replace("lowercase", "lower").replace(
        "name: clients", "name: !!python/object/apply:os.system ['touch pwned']"
    )
    found = problems(project_dir(tmp_path, clients=text))
    assert any(
        "YAML tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed" in p for p in found
    )
    assert not (tmp_path / "pwned").exists()


def test_invalid_yaml_is_located(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    [problem] = problems(project_dir(tmp_path, clients="version: 1\nfields: {a: b\nname: x\n"))
    assert problem.startswith("mappings/clients.yaml:3:") and "invalid YAML" in problem


def test_lookup_through_an_unknown_mapping_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    text = CLIENTS_WITH_TYPO.replace("lowercase", "lower").replace("direction: two-way", "direction: one-way")
    text += '  "Parent": {lookup: {mapping: parents, from: ParentNumber}}\n'
    [problem] = problems(project_dir(tmp_path, clients=text))
    assert problem == "mappings/clients.yaml:15:32: fields.Parent.lookup.mapping: unknown mapping 'parents'"


def test_shipped_mapping_files_load_as_they_are(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    from syncd.demo_company import SHIPPED_MAPPINGS, new_spreadsheets, start_sandboxes, write_project

    sandboxes = start_sandboxes(tmp_path / "sandbox")
    try:
        assert sandboxes.sheets is not None
        config = write_project(tmp_path, sandboxes.info(), new_spreadsheets(sandboxes.sheets, {}))
    finally:
        sandboxes.stop()
    project = load_project(config)
    assert sorted(project.mappings) == sorted(SHIPPED_MAPPINGS)
    assert sorted(p.stem for p in (root / "mappings").glob("*.yaml")) == sorted(SHIPPED_MAPPINGS)
    for name in SHIPPED_MAPPINGS:
        assert (config.parent / "mappings" / f"{name}.yaml").read_text() == (
            root / "mappings" / f"{name}.yaml"
        ).read_text()
