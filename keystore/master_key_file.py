"""Reading and writing the master key file: base64 text, 0600, written atomically, never replaced."""

from __future__ import annotations

from pathlib import Path

from foundation import write_private_file
from keystore.crypto import MasterKey
from keystore.errors import MasterKeyExists, MasterKeyInvalid, MasterKeyMissing


def read_master_key(path: Path) -> MasterKey:
    """Load the master key from ``path`` (a file, a Docker secret, a mounted volume)."""
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise MasterKeyMissing(
            f"no master key file at {path} (run `signserv init`, or set SIGNSERV_MASTER_KEY_FILE)"
        ) from None
    except UnicodeDecodeError:
        # The decoder's message quotes the offending byte: a byte of the key itself.
        raise MasterKeyInvalid(
            f"the master key file {path} is not text (it holds base64 of 32 bytes)"
        ) from None
    except OSError as exc:
        raise MasterKeyMissing(
            f"the master key file {path} cannot be read: {exc.strerror}"
        ) from None
    return MasterKey.from_text(text)


def write_master_key(path: Path, master_key: MasterKey) -> None:
    """Write ``master_key`` to a new file at ``path`` atomically with mode 0600.

    Refuses to replace an existing file: losing a master key loses every key sealed under it.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        write_private_file(path, master_key.to_text().encode("ascii"), replace=False)
    except FileExistsError:
        raise MasterKeyExists(f"a master key file already exists at {path}") from None
