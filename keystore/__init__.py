"""Encrypted-at-rest storage of P-521 signing keys; knows nothing of HTTP or Flask."""

from foundation.argon2id import Argon2Parameters
from keystore.crypto import Argon2Runner, MasterKey
from keystore.errors import (
    InvalidKeyName,
    InvalidToken,
    KeyBackendUnavailable,
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
    RecordsChanged,
    StorageFull,
    TokenRejected,
)
from keystore.master_key_file import read_master_key, write_master_key
from keystore.records import (
    SOFTWARE_KIND,
    AuditChainStore,
    FailureCount,
    FailureCounterStore,
    FailureState,
    KeyInfo,
    KeyRecordStore,
    KeyStatus,
)
from keystore.rotation import MasterKeyRotationFailed
from keystore.signing_key import SigningKey, SoftwareSigningKey
from keystore.sqlite.backup import BackupError, BackupExists, BackupUnusable, RestoreWouldOverwrite
from keystore.store import KeyStore, UnlockedKey

__all__ = [
    "SOFTWARE_KIND",
    "Argon2Parameters",
    "Argon2Runner",
    "AuditChainStore",
    "BackupError",
    "BackupExists",
    "BackupUnusable",
    "FailureCount",
    "FailureCounterStore",
    "FailureState",
    "InvalidKeyName",
    "InvalidToken",
    "KeyBackendUnavailable",
    "KeyDisabled",
    "KeyExists",
    "KeyInfo",
    "KeyNotFound",
    "KeyRecordStore",
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
    "RecordsChanged",
    "RestoreWouldOverwrite",
    "SigningKey",
    "SoftwareSigningKey",
    "StorageFull",
    "TokenRejected",
    "UnlockedKey",
    "read_master_key",
    "write_master_key",
]
