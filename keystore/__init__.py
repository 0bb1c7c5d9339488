"""Encrypted-at-rest storage of P-521 signing keys; knows nothing of HTTP or Flask."""

from foundation.argon2id import Argon2Parameters
from keystore.backup import BackupError, BackupExists, BackupUnusable, RestoreWouldOverwrite
from keystore.crypto import Argon2Runner, MasterKey
from keystore.errors import (
    InvalidKeyName,
    InvalidToken,
    KeyDisabled,
    KeyExists,
    KeyNotFound,
    KeystoreCorrupt,
    KeystoreError,
    KeystoreExists,
    KeystoreUnavailable,
    MasterKeyExists,
    MasterKeyInvalid,
    MasterKeyMismatch,
    MasterKeyMissing,
    MasterShareMismatch,
    StorageFull,
    TokenRejected,
)
from keystore.master_key_file import read_master_key, write_master_key
from keystore.rotation import MasterKeyRotationFailed
from keystore.store import KeyInfo, KeyStatus, KeyStore, UnlockedKey

__all__ = [
    "Argon2Parameters",
    "Argon2Runner",
    "BackupError",
    "BackupExists",
    "BackupUnusable",
    "InvalidKeyName",
    "InvalidToken",
    "KeyDisabled",
    "KeyExists",
    "KeyInfo",
    "KeyNotFound",
    "KeyStatus",
    "KeyStore",
    "KeystoreCorrupt",
    "KeystoreError",
    "KeystoreExists",
    "KeystoreUnavailable",
    "MasterKey",
    "MasterKeyExists",
    "MasterKeyInvalid",
    "MasterKeyMismatch",
    "MasterKeyMissing",
    "MasterKeyRotationFailed",
    "MasterShareMismatch",
    "RestoreWouldOverwrite",
    "StorageFull",
    "TokenRejected",
    "UnlockedKey",
    "read_master_key",
    "write_master_key",
]
