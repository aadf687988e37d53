"""The committed JSON Schemas are what the models generate (editors autocomplete from them)."""

from __future__ import annotations

import json

from syncd import schema


def test_committed_schemas_match_the_models() -> None:
    for name, text in schema.rendered().items():
        committed = (schema.SCHEMA_DIR / name).read_text(encoding="utf-8")
        assert committed == text, f"config/schema/{name} is stale: run `syncd schema --write`"


def test_mapping_schema_knows_the_field_spec_keys() -> None:
    mapping = json.loads(schema.rendered()["mapping.schema.json"])
    field_spec = mapping["$defs"]["FieldSpec"]["properties"]
    assert {"from", "transform", "map", "template", "value", "lookup", "readonly"} <= set(field_spec)


def test_config_schema_validates_connections_by_their_kind() -> None:
    config = json.loads(schema.rendered()["syncd.schema.json"])
    assert (
        "FilesSettings" in json.dumps(config["properties"]["connections"])
        or "FilesSettings" in config["$defs"]
    )
