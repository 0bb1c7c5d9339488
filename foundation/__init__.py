"""What both ``keystore`` and ``signserv`` need and neither owns: durable private files, the
key-name rule and the one argon2id call. It imports nothing from either, so every other package
may depend on it."""

from __future__ import annotations

from foundation.key_names import KEY_NAME_MAX_LENGTH, is_valid_key_name, key_name_problem
from foundation.private_files import PRIVATE_FILE_MODE, fsync_path, write_private_file

__all__ = [
    "KEY_NAME_MAX_LENGTH",
    "PRIVATE_FILE_MODE",
    "fsync_path",
    "is_valid_key_name",
    "key_name_problem",
    "write_private_file",
]
