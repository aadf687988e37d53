"""Replaying recorded real Salesforce traffic against the sandbox: same status, same JSON shape.

The recordings (CumulusCI's test cassettes, see ../shared/fixtures/README.md) are the ground truth the
sandbox is held to. Per file: a fresh org, the requests in order with recorded ids mapped to the ids the
sandbox returned, then the status compared exactly and the JSON compared by shape (keys and value types,
recursively). Reads of records the recording org already held are compared by envelope only, as the
README says.

Interactions that cannot match for a principled reason are listed in UNMATCHABLE with the reason.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from syncd.sandbox.salesforce import SalesforceSandbox
from tests.sandbox.salesforce_clients import API_VERSION, https_session, password_flow_token


def _fixtures_dir() -> Path | None:
    configured = os.environ.get("SYNCD_SHARED_DIR")
    shared = Path(configured) if configured else Path(__file__).resolve().parents[2] / ".." / "shared"
    folder = shared / "fixtures" / "salesforce"
    return folder if folder.is_dir() else None


FIXTURES = _fixtures_dir()
FILES = sorted(FIXTURES.glob("*.json")) if FIXTURES else []

needs_recordings = pytest.mark.skipif(
    FIXTURES is None,
    reason="recorded Salesforce traffic not found (../shared/fixtures/salesforce or $SYNCD_SHARED_DIR)",
)

# (file stem, interaction index) -> why the sandbox cannot answer like the recording org did.
UNMATCHABLE: dict[tuple[str, int], str] = {
    ("TestUpdatesIntegrationTests.test_updates_task", 4): (
        "updates six Accounts the recording org already held (the file never creates them), so in a fresh "
        "org their ids do not exist and Salesforce itself would answer per-record errors"
    ),
}

# Keys real describe results gained in later API versions than some recordings used (v48 vs v59).
DESCRIBE_KEYS_ADDED_LATER = {"associateEntityType", "associateParentEntity", "sobjectDescribeOption"}

_ID = re.compile(r"^[a-zA-Z0-9]{15}([a-zA-Z0-9]{3})?$")
_ORG_PLACEHOLDER = "00D0xORGID00000000"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {dict: "object", list: "array", str: "string"}[type(value)]


def shape_differences(recorded: Any, actual: Any, where: str = "$") -> list[str]:
    """Differences in keys and value types; arrays are compared element by element where both have one."""
    if _kind(recorded) != _kind(actual):
        return [f"{where}: recorded {_kind(recorded)}, sandbox {_kind(actual)}"]
    if isinstance(recorded, dict):
        out = []
        if set(recorded) != set(actual):
            out.append(
                f"{where}: keys only recorded {sorted(set(recorded) - set(actual))}, "
                f"only sandbox {sorted(set(actual) - set(recorded))}"
            )
        for key in set(recorded) & set(actual):
            out += shape_differences(recorded[key], actual[key], f"{where}.{key}")
        return out
    if isinstance(recorded, list):
        out = []
        for i, (a, b) in enumerate(zip(recorded, actual, strict=False)):
            out += shape_differences(a, b, f"{where}[{i}]")
        return out
    return []


def _describe_differences(recorded: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """Describe reflects the recording org's schema: compare top-level keys and `fields[]` entry shapes."""
    out = []
    missing = set(recorded) - set(actual)
    extra = set(actual) - set(recorded) - DESCRIBE_KEYS_ADDED_LATER
    if missing or extra:
        out.append(f"describe keys: only recorded {sorted(missing)}, only sandbox {sorted(extra)}")
    recorded_fields = {f["name"]: f for f in recorded["fields"]}
    for field in actual["fields"]:
        twin = recorded_fields.get(field["name"]) or recorded["fields"][0]
        out += [
            d
            for d in shape_differences(twin, field, f"fields[{field['name']}]")
            if "picklistValues[" not in d
        ]
    return out


def _map_ids(recorded: Any, actual: Any, ids: dict[str, str]) -> None:
    """Learn recorded id -> sandbox id from two responses of the same shape."""
    if isinstance(recorded, dict) and isinstance(actual, dict):
        for key in ("id", "Id"):
            r, a = recorded.get(key), actual.get(key)
            if isinstance(r, str) and isinstance(a, str) and _ID.match(r) and _ID.match(a):
                ids[r] = a
        for key in set(recorded) & set(actual):
            _map_ids(recorded[key], actual[key], ids)
    elif isinstance(recorded, list) and isinstance(actual, list):
        for r, a in zip(recorded, actual, strict=False):
            _map_ids(r, a, ids)


def _substitute(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        value = value.replace("vXX.X", f"v{API_VERSION}")
        for old, new in ids.items():
            value = value.replace(old, new)
        return value
    if isinstance(value, list):
        return [_substitute(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, ids) for k, v in value.items()}
    return value


def _is_envelope_only(request: dict[str, Any]) -> bool:
    """Reads whose records may predate the file: compare the envelope, not the record count."""
    return request["method"] == "GET" and ("/query" in request["path"] or "recordCount" in request["path"])


def replay(
    path: Path, sandbox: SalesforceSandbox, session: requests.Session
) -> Iterator[tuple[int, list[str]]]:
    recording = json.loads(path.read_text(encoding="utf-8"))
    ids: dict[str, str] = {_ORG_PLACEHOLDER: sandbox.info()["org_id"]}
    for index, interaction in enumerate(recording["interactions"]):
        if (path.stem, index) in UNMATCHABLE:
            continue
        request, expected = interaction["request"], interaction["response"]
        url = sandbox.base_url + _substitute(request["path"], ids)
        params = {k: _substitute(v, ids) for k, v in request["query"].items()}
        body = _substitute(request["json"], ids) if request["json"] is not None else None
        answer = session.request(request["method"], url, params=params, json=body, timeout=30)
        problems = []
        if answer.status_code != expected["status"]:
            problems.append(
                f"status: recorded {expected['status']}, sandbox {answer.status_code}: {answer.text[:300]}"
            )
        elif expected["json"] is not None:
            actual = answer.json()
            if request["path"].endswith("/describe"):
                problems += _describe_differences(expected["json"], actual)
            elif request["path"].endswith("/sobjects") and "/composite/" not in request["path"]:
                problems += shape_differences(
                    {k: v for k, v in expected["json"].items() if k != "sobjects"},
                    {k: v for k, v in actual.items() if k != "sobjects"},
                )
                problems += shape_differences(
                    expected["json"]["sobjects"][0], actual["sobjects"][0], "sobjects[0]"
                )
            else:
                problems += shape_differences(expected["json"], actual)
                counted = not _is_envelope_only(request) and isinstance(expected["json"], list)
                if counted and len(expected["json"]) != len(actual):
                    problems.append(f"results: recorded {len(expected['json'])}, sandbox {len(actual)}")
            _map_ids(expected["json"], actual, ids)
        yield index, problems


@pytest.fixture
def org_session() -> Iterator[tuple[SalesforceSandbox, requests.Session]]:
    org = SalesforceSandbox(api_version=API_VERSION).start()
    session = https_session(org)
    session.headers["Authorization"] = f"Bearer {password_flow_token(org, session)}"
    yield org, session
    org.stop()


@needs_recordings
@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_recorded_interactions_get_the_recorded_status_and_shape(
    path: Path, org_session: tuple[SalesforceSandbox, requests.Session]
) -> None:
    sandbox, session = org_session
    failures = [f"#{i}: {p}" for i, problems in replay(path, sandbox, session) for p in problems]
    assert not failures, "\n".join(failures)


def test_shape_comparison_notices_a_changed_type() -> None:
    assert shape_differences({"a": [{"b": 1}]}, {"a": [{"b": "1"}]}) == [
        "$.a[0].b: recorded number, sandbox string"
    ]
