"""Encrypted-at-rest storage of P-521 signing keys; knows nothing of HTTP or Flask."""

from foundation.argon2id import Argon2Parameters
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
    RecordsChanged,
    StorageFull,
    TokenRejected,
)
from keystore.master_key_file import read_master_key, write_master_key
from keystore.records import (
    AttemptRules,
    AuditChainStore,
    FailureCount,
    FailureCounterStore,
    FailureState,
    KeyInfo,
    KeyRecordStore,
    KeyStatus,
    LockSchedule,
    Reservation,
)
from keystore.rotation import MasterKeyRotationFailed
from keystore.signing_key import SigningKey, SoftwareSigningKey
from keystore.sqlite.backup import BackupError, BackupExists, BackupUnusable, RestoreWouldOverwrite
from keystore.store import KeyStore, UnlockedKey

__all__ = [
    "Argon2Parameters",
    "Argon2Runner",
    "AttemptRules",
    "AuditChainStore",
    "BackupError",
    "BackupExists",
    "BackupUnusable",
    "FailureCount",
    "FailureCounterStore",
    "FailureState",
    "InvalidKeyName",
    "InvalidToken",
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
    "LockSchedule",
    "MasterKey",
    "MasterKeyExists",
    "MasterKeyInvalid",
    "MasterKeyMismatch",
    "MasterKeyMissing",
    "MasterKeyRotationFailed",
    "MasterShareMismatch",
    "RecordsChanged",
    "Reservation",
    "RestoreWouldOverwrite",
    "SigningKey",
    "SoftwareSigningKey",
    "StorageFull",
    "TokenRejected",
    "UnlockedKey",
    "read_master_key",
    "write_master_key",
]
