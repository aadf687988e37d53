"""Finding connector classes by kind through the `syncd.connectors` entry-point group.

Entry points (not an import list in syncd) let a third party ship a connector as its own package:
`pip install syncd-hubspot` and `kind: hubspot` works without touching syncd.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points
from typing import Any

ENTRY_POINT_GROUP = "syncd.connectors"


@cache
def connector_kinds() -> dict[str, Any]:
    """kind name -> entry point (not yet imported, so one broken plugin does not break the others)."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def load_connector_class(kind: str) -> Any:
    """The connector class registered under `kind`; KeyError when none is."""
    return connector_kinds()[kind].load()
