"""Replacing a file so that readers see the old content or the new, never a half-written file.

Spreadsheets are opened by people while syncd runs; a crash or a full disk in the middle of a
write must leave their file as it was.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

TEMP_SUFFIX = ".syncd-tmp"


def _process_umask() -> int:
    """The umask, read without setting it (os.umask would race with other threads)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o077  # unknown: assume the strict end, client data must not become world-readable


def replace_atomically(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, fsync it, and rename it over `path`.

    The file keeps its permission bits; a new file gets those the umask allows. On any failure
    the temporary file is removed and `path` is untouched.
    """
    with atomic_writer(path) as out:
        out.write(data)


@contextlib.contextmanager
def atomic_writer(path: Path) -> Iterator[Replacement]:
    """A temporary file beside `path` that replaces it when the block ends without an exception.

    For content too large to hold in memory: the caller streams it in. Raising in the block
    (a file found changed meanwhile, a full disk) removes the temporary file and leaves `path`
    untouched, as `replace_atomically` does.
    """
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~_process_umask()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as temp:
            replacement = Replacement(temp)
            yield replacement
            temp.flush()
            os.fsync(temp.fileno())
            os.chmod(temp_name, mode)
            replacement.stat = os.fstat(temp.fileno())
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    _fsync_directory(path.parent)


class Replacement:
    """The temporary file being written; after the block, `stat` is the new file's (same inode)."""

    def __init__(self, temp: BinaryIO) -> None:
        self._temp = temp
        self.stat: os.stat_result | None = None

    def write(self, data: bytes) -> None:
        self._temp.write(data)


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable; some filesystems refuse fsync on a directory, which is fine."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
