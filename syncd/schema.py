"""JSON Schemas for editors, generated from the same pydantic models that validate the files.

`config/schema/*.json` is committed so editors (VS Code's YAML extension, JetBrains) can autocomplete
mapping files; `tests/test_schema.py` fails when the committed files are stale and
`syncd schema --write` regenerates them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Union

from pydantic import BaseModel, Field, create_model

from syncd.config import MappingSpec, SyncdSettings
from syncd.plugins import connector_kinds

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "config" / "schema"


def builtin_settings_models() -> list[type[BaseModel]]:
    """Settings models of the connectors shipped with syncd (third-party plugins are not baked in)."""
    out = []
    for _name, ep in sorted(connector_kinds().items()):
        if ep.value.startswith("connectors."):
            out.append(ep.load().Settings)
    return out


def config_schema() -> dict[str, Any]:
    models = builtin_settings_models()
    union: Any = Union[tuple(models)] if len(models) > 1 else models[0]  # noqa: UP007 (runtime-built union)
    connection: Any = Annotated[union, Field(discriminator="kind")] if len(models) > 1 else union
    connections: Any = dict[str, connection]
    description = SyncdSettings.model_fields["connections"].description
    model = create_model(
        "SyncdFile",
        __base__=SyncdSettings,
        connections=(connections, Field(default_factory=dict, description=description)),
    )
    schema: dict[str, Any] = model.model_json_schema(by_alias=True)
    schema["title"] = "syncd.yaml"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def mapping_schema() -> dict[str, Any]:
    schema: dict[str, Any] = MappingSpec.model_json_schema(by_alias=True)
    schema["title"] = "syncd mapping file"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def rendered() -> dict[str, str]:
    """file name -> JSON text, exactly as committed."""
    return {
        "syncd.schema.json": json.dumps(config_schema(), indent=2, sort_keys=True) + "\n",
        "mapping.schema.json": json.dumps(mapping_schema(), indent=2, sort_keys=True) + "\n",
    }


def write(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in rendered().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths
