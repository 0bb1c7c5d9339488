"""Master-key part files in ``$CLOUDTKEFILES``: one 32-byte part per password-protected file.

The TKE SDK defines no key-part file (TKE-REFERENCE §8.5), so the format is ours. A file
``mkpart-<16 hex>.json`` (mode 0600) holds one JSON object of strings::

    {"format": "signserv-tke-master-key-part", "version": "1",
     "description": "...", "verification_pattern": "<64 hex: calc_vp(part), §6.4>",
     "created": "<UTC ISO 8601>", "kdf": "argon2id:t=3,m=65536,p=4",
     "salt": "<32 hex>", "nonce": "<24 hex>", "ciphertext": "<96 hex: part + GCM tag>"}

The sealing key is argon2id(password, salt) with the recorded cost; the part is sealed with
AES-256-GCM whose associated data is every other member, so the description, pattern, cost
and salt cannot be changed without the password. Files are written under a temporary name
and linked into place (``foundation.private_files``), never over an existing part.
docs/key-part-files.md describes the format for other tools.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from foundation import write_private_file
from foundation.argon2id import Argon2Parameters, UnknownKeyDerivation, derive_key
from signserv.secret import Secret
from signserv.tke.errors import TKEError
from signserv.tke.wire.verification_pattern import calc_vp

KEY_PART_BYTES = 32
FILE_FORMAT = "signserv-tke-master-key-part"
FILE_VERSION = "1"
FILE_PREFIX = "mkpart-"
FILE_SUFFIX = ".json"
MIN_PASSWORD_CHARACTERS = 8
MAX_DESCRIPTION_CHARACTERS = 64
_SALT_BYTES = 16
_NONCE_BYTES = 12
_SEALED_MEMBER = "ciphertext"
_MEMBERS = frozenset(
    {"format", "version", "description", "verification_pattern", "created", "kdf", "salt", "nonce"}
    | {_SEALED_MEMBER}
)


class KeyPartFileError(TKEError):
    """Base of the errors about master-key part files."""


class InvalidKeyPart(KeyPartFileError, ValueError):
    """A key-part value, description or password that cannot be used; the message says why."""


class MalformedKeyPartFile(KeyPartFileError, ValueError):
    """A file that is not a readable master-key part file; the message names it."""


class WrongKeyPartPassword(KeyPartFileError):
    """The password does not open the key-part file (or the file was altered)."""


@dataclass(frozen=True)
class KeyPartFile:
    """What can be known of a key-part file without its password."""

    path: Path
    description: str
    verification_pattern: bytes
    created: str


def random_key_part() -> Secret[bytes]:
    """A fresh random 32-byte key part."""
    return Secret(secrets.token_bytes(KEY_PART_BYTES))


def key_part_from_hex(text: Secret[str]) -> Secret[bytes]:
    """A key part typed as 64 hexadecimal characters (spaces allowed); the value is never echoed."""
    try:
        value = bytes.fromhex(text.reveal().replace(" ", ""))
    except ValueError:
        raise InvalidKeyPart("a key part value is hexadecimal digits only") from None
    if len(value) != KEY_PART_BYTES:
        raise InvalidKeyPart(
            f"a key part is {KEY_PART_BYTES} bytes (64 hexadecimal characters), not {len(value)}"
        )
    return Secret(value)


def _sealing_key(password: Secret[str], salt: bytes, cost: Argon2Parameters) -> bytes:
    return derive_key(password.reveal().encode("utf-8"), salt, cost, length=32)


def _associated_data(document: dict[str, str]) -> bytes:
    """Every member but the ciphertext, in a canonical JSON form."""
    header = {name: value for name, value in document.items() if name != _SEALED_MEMBER}
    return json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _require_description(description: str) -> None:
    if not description.strip() or len(description) > MAX_DESCRIPTION_CHARACTERS:
        raise InvalidKeyPart(
            f"a key part description is 1 to {MAX_DESCRIPTION_CHARACTERS} characters"
        )
    if any(not character.isprintable() for character in description):
        raise InvalidKeyPart("a key part description holds printable characters only")


def _write_new_file(directory: Path, text: str) -> Path:
    """Write ``text`` to a new 0600 file under a fresh random name; never replace a file."""
    while True:
        path = directory / f"{FILE_PREFIX}{secrets.token_hex(8)}{FILE_SUFFIX}"
        with contextlib.suppress(FileExistsError):
            write_private_file(path, text.encode("utf-8"), replace=False)
            return path


def create_key_part_file(
    directory: Path,
    part: Secret[bytes],
    *,
    description: str,
    password: Secret[str],
    cost: Argon2Parameters | None = None,
) -> KeyPartFile:
    """Seal ``part`` under ``password`` in a new file in ``directory``."""
    if len(part.reveal()) != KEY_PART_BYTES:
        raise InvalidKeyPart(f"a key part is {KEY_PART_BYTES} bytes")
    _require_description(description)
    if len(password.reveal()) < MIN_PASSWORD_CHARACTERS:
        raise InvalidKeyPart(
            f"a key part password has at least {MIN_PASSWORD_CHARACTERS} characters"
        )
    kdf = cost or Argon2Parameters()
    salt, nonce = secrets.token_bytes(_SALT_BYTES), secrets.token_bytes(_NONCE_BYTES)
    created = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    document = {
        "format": FILE_FORMAT,
        "version": FILE_VERSION,
        "description": description,
        "verification_pattern": calc_vp(part.reveal()).hex(),
        "created": created,
        "kdf": kdf.as_record(),
        "salt": salt.hex(),
        "nonce": nonce.hex(),
    }
    sealed = AESGCM(_sealing_key(password, salt, kdf)).encrypt(
        nonce, part.reveal(), _associated_data(document)
    )
    document[_SEALED_MEMBER] = sealed.hex()
    path = _write_new_file(directory, json.dumps(document, indent=2) + "\n")
    return KeyPartFile(path, description, calc_vp(part.reveal()), created)


def _read_document(path: Path) -> dict[str, str]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedKeyPartFile(f"{path} cannot be read as JSON: {exc}") from None
    if not isinstance(document, dict) or set(document) != _MEMBERS:
        raise MalformedKeyPartFile(f"{path} does not have the members of a key-part file")
    if not all(isinstance(value, str) for value in document.values()):
        raise MalformedKeyPartFile(f"{path}: every member of a key-part file is a string")
    if (document["format"], document["version"]) != (FILE_FORMAT, FILE_VERSION):
        raise MalformedKeyPartFile(f"{path} is not a version {FILE_VERSION} key-part file")
    return document


def _hex_member(path: Path, document: dict[str, str], name: str, length: int) -> bytes:
    try:
        value = bytes.fromhex(document[name])
    except ValueError:
        value = b""
    if len(value) != length:
        raise MalformedKeyPartFile(f"{path}: {name} is not {length} bytes of hexadecimal")
    return value


def read_key_part_file(path: Path) -> KeyPartFile:
    """The description and verification pattern of one key-part file."""
    document = _read_document(path)
    return KeyPartFile(
        path=path,
        description=document["description"],
        verification_pattern=_hex_member(path, document, "verification_pattern", 32),
        created=document["created"],
    )


def list_key_part_files(directory: Path) -> list[KeyPartFile]:
    """Every key-part file in ``directory``, oldest first (the order ``mks`` numbers them in)."""
    parts = [read_key_part_file(path) for path in directory.glob(f"{FILE_PREFIX}*{FILE_SUFFIX}")]
    return sorted(parts, key=lambda part: (part.created, part.path.name))


def open_key_part_file(part: KeyPartFile, password: Secret[str]) -> Secret[bytes]:
    """The key part sealed in ``part``, checked against its verification pattern."""
    path = part.path
    document = _read_document(path)
    try:
        cost = Argon2Parameters.from_record(document["kdf"])
    except UnknownKeyDerivation:
        raise MalformedKeyPartFile(f"{path}: unknown key-derivation {document['kdf']!r}") from None
    salt = _hex_member(path, document, "salt", _SALT_BYTES)
    nonce = _hex_member(path, document, "nonce", _NONCE_BYTES)
    sealed = _hex_member(path, document, _SEALED_MEMBER, KEY_PART_BYTES + 16)
    try:
        value = AESGCM(_sealing_key(password, salt, cost)).decrypt(
            nonce, sealed, _associated_data(document)
        )
    except InvalidTag:
        raise WrongKeyPartPassword(
            f"the password does not open key part {part.description!r} ({path.name})"
        ) from None
    if calc_vp(value) != _hex_member(path, document, "verification_pattern", 32):
        raise MalformedKeyPartFile(f"{path}: the key part does not match its verification pattern")
    return Secret(value)


def remove_key_part_file(part: KeyPartFile) -> None:
    """Delete a key-part file; the part it held is gone unless another copy exists."""
    part.path.unlink()
