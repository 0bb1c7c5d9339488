"""Errors of the keystore package: one base, one subclass per condition a caller can act on."""

from __future__ import annotations


class KeystoreError(Exception):
    """Base of every error the keystore raises on purpose; messages never hold secrets."""


class InvalidKeyName(KeystoreError, ValueError):
    """A key name outside 1..128 RFC 3986 unreserved characters."""


class InvalidToken(KeystoreError, ValueError):
    """A token that breaks the token rules (length, characters); its value is never shown."""


class KeyNotFound(KeystoreError, LookupError):
    """No key is stored under that name."""


class KeyExists(KeystoreError):
    """A key is already stored under that name; names are never reused in place."""


class TokenRejected(KeystoreError):
    """The token does not unlock that key."""


class KeyDisabled(KeystoreError):
    """The key exists and the token is right, but the key is disabled."""


class KeystoreUnavailable(KeystoreError):
    """The keystore file is missing or cannot be opened."""


class KeystoreCorrupt(KeystoreUnavailable):
    """The keystore file or a record in it is damaged, truncated or not a signserv keystore."""


class MasterShareMismatch(KeystoreCorrupt):
    """A record's master share does not open: damaged, or sealed under another master key."""


class KeyBackendUnavailable(KeystoreUnavailable):
    """The key lives where this process cannot reach now: its HSM is not configured or not answering.

    Never answered with a software key instead; the request fails (503) until the HSM is back.
    """


class HsmLoginRefused(KeyBackendUnavailable):
    """The HSM refused the configured user PIN (wrong, locked or expired); fix the PIN source.

    A PIN once refused is not tried again until its file or variable changes, so probes and
    retries never use up the token's PIN retry counter.
    """


class HsmFull(KeyBackendUnavailable):
    """The HSM token has no room for another object; nothing was stored."""


class WrappingKeyMissing(KeyBackendUnavailable):
    """The HSM token no longer holds a key's wrapping key: a configuration error, not an outage.

    Retrying or reconnecting does not help; the message says which object is missing.
    """


class SigningKeyLost(KeyBackendUnavailable):
    """An unlocked key's HSM session object is gone (the connection was renewed).

    Only the key's token can unwrap it again: drop the unlocked key and unlock it anew.
    """


class InvalidDatabaseUrl(KeystoreError, ValueError):
    """A database URL that cannot be parsed or holds a password (its text is never shown)."""


class KeystoreExists(KeystoreError):
    """A keystore already exists where a new one was to be created."""


class StorageFull(KeystoreError):
    """The disk (or the database's size limit) is full; the change was rolled back."""


class MasterKeyMissing(KeystoreError):
    """The master key file does not exist or cannot be read."""


class MasterKeyInvalid(KeystoreError, ValueError):
    """The master key file does not hold a base64-encoded 32-byte key."""


class MasterKeyMismatch(KeystoreError):
    """The master key does not open this keystore (it belongs to another one)."""


class MasterKeyExists(KeystoreError):
    """A master key file already exists and would be replaced."""


class RecordsChanged(KeystoreError):
    """The records changed under an operation that needs them unchanged; nothing was written."""


class AuditError(KeystoreError):
    """Base of audit-chain errors."""


class AuditWriteError(AuditError):
    """A record could not be appended; the request it describes must fail."""


class AuditLogReplaced(AuditWriteError):
    """The log file was deleted, moved, shrunk or rolled back under a running writer."""


class AuditChainBroken(AuditError):
    """Verification found the first record that is altered, missing, out of order or unreadable."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line


class CheckpointUnreadable(AuditError, ValueError):
    """Text that is not a signed audit checkpoint (garbled, cut short, not a C2SP signed note)."""


class CheckpointSignatureInvalid(AuditError):
    """A checkpoint without a valid signature by the checkpoint key: forged, altered or another key's."""


class VerifierKeyInvalid(AuditError, ValueError):
    """A checkpoint verifier key that is not an Ed25519 signed-note vkey line."""


class AuditChainTruncated(AuditError):
    """The chain holds fewer records than a checkpoint signed: its tail was cut off, or it was
    rolled back to an older copy."""


class AuditChainDiverged(AuditError):
    """The chain's hash after record N differs from a checkpoint's head at N: records were
    rewritten (with the audit MAC key), or an older copy was restored and written on."""


class BackupError(KeystoreError):
    """A backup or restore was refused; nothing was changed."""


class BackupExists(BackupError):
    """The backup file to write already exists; backups never replace a file."""


class RestoreWouldOverwrite(BackupError):
    """A keystore exists where the backup would be restored, and overwriting was not asked for."""


class BackupUnusable(BackupError):
    """The backup is damaged, not a signserv keystore, or does not open with the given master key."""
