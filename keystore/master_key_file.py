"""Reading and writing the master key file: base64 text, 0600, written atomically, never replaced."""

from __future__ import annotations

import os
from pathlib import Path

from keystore.crypto import MasterKey
from keystore.errors import MasterKeyExists, MasterKeyMissing


def read_master_key(path: Path) -> MasterKey:
    """Load the master key from ``path`` (a file, a Docker secret, a mounted volume)."""
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise MasterKeyMissing(
            f"no master key file at {path} (run `signserv init`, or set SIGNSERV_MASTER_KEY_FILE)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MasterKeyMissing(f"the master key file {path} cannot be read: {exc}") from None
    return MasterKey.from_text(text)


def write_master_key(path: Path, master_key: MasterKey) -> None:
    """Write ``master_key`` to a new file at ``path`` atomically with mode 0600.

    Refuses to replace an existing file: losing a master key loses every key sealed under it.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(master_key.to_text())
            handle.flush()
            os.fsync(handle.fileno())
        # link() fails if the target exists, unlike replace(): no window to clobber a key.
        try:
            os.link(temporary, path)
        except FileExistsError:
            raise MasterKeyExists(f"a master key file already exists at {path}") from None
    finally:
        temporary.unlink(missing_ok=True)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
