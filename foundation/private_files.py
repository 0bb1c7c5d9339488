"""Private files written durably: atomically, mode 0600 from the first byte, fsync of file and directory."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

PRIVATE_FILE_MODE = 0o600


def fsync_path(path: Path) -> None:
    """Flush ``path`` to disk: a file's content, or a directory's entries after a link or rename."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_private_file(path: Path, content: bytes, *, replace: bool) -> None:
    """Write ``content`` to ``path`` atomically, mode 0600 from the first byte.

    A temporary file in the same directory is written and fsynced, then renamed over ``path``
    (``replace=True``) or hard-linked into place, raising FileExistsError if ``path`` exists
    (``replace=False``: no window in which an existing file could be clobbered). The
    directory entry is fsynced too, so the change survives a crash.
    """
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        os.fchmod(descriptor, PRIVATE_FILE_MODE)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(temporary, path)
        else:
            os.link(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    fsync_path(path.parent)
