"""What the conformance suite needs to know about one connector, and nothing more.

A connector joins the suite by subclassing `Harness` and listing the subclass in `HARNESSES`
(conftest.py). The harness reaches the connector's system *directly* (a file on disk, a sandbox's
store) to seed and change records the way a user would, and to look at what a write stored, so
the suite never checks the connector only against itself.
"""

from __future__ import annotations

import abc
from pathlib import Path
from typing import ClassVar

from syncd.records import Connector, JSONValue, Op, WriteOp


class Harness(abc.ABC):
    stream: ClassVar[str]
    """The stream the suite reads and writes."""

    match_field: ClassVar[str]
    """A field that identifies a record for a create-by-match (an external id, a key column)."""

    plain_field: ClassVar[str] = "City"
    """A field of `fields_for` that an update may change on its own."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir

    @abc.abstractmethod
    def connector(self, batch_size: int = 500) -> Connector:
        """A new connector on the harness's system, reading `batch_size` records per batch."""

    @abc.abstractmethod
    def seed(self, count: int) -> list[str]:
        """Store `count` records (`fields_for(ident(i))`) directly in the system; their keys in read order."""

    @abc.abstractmethod
    def mutate(self, key: str) -> None:
        """Change one non-identifying field of the record `key` directly in the system, as a user would."""

    @abc.abstractmethod
    def snapshot(self) -> object:
        """The stream's stored state read directly from the system, comparable with `==`."""

    def ident(self, number: int) -> str:
        return f"C{number:04d}"

    def fields_for(self, ident: str, version: int = 0) -> dict[str, JSONValue]:
        """A valid record whose `match_field` is `ident`; plain strings, which every system keeps as given."""
        return {self.match_field: ident, "Name": f"Client {ident} v{version}", "City": f"Town {version}"}

    def failing_op(self) -> WriteOp:
        """An op the system refuses for this record alone; by default an update of a record that does not exist."""
        return WriteOp(Op.UPDATE, {"Name": "nobody"}, key="NO-SUCH-RECORD")

    def cleanup(self) -> None:
        """Release what the harness started (servers, sandboxes); files under workdir go with it."""
        return None  # a harness over plain files starts nothing
