"""The signserv home: creating it (`signserv init`), opening its keystore, and maintaining it.

Maintenance is master-key rotation, backup and restore; the file protocols live in
:mod:`keystore.rotation` and :mod:`keystore.sqlite.backup`, this module binds them to the
settings. It is the one place that chooses the storage backend (SQLite, in the keystore path).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from keystore import (
    Argon2Runner,
    FailureCounterStore,
    KeyStore,
    KeystoreError,
    KeystoreExists,
    MasterKey,
    MasterKeyMismatch,
    MasterKeyMissing,
    read_master_key,
    write_master_key,
)
from keystore.rotation import (
    RotationResult,
    rotate_master_key,
    settle_interrupted_rotation,
    settled_master_key,
)
from keystore.sqlite import (
    SqliteDatabase,
    SqliteFailureCounters,
    SqliteKeyRecords,
    create_sqlite_keystore,
    open_sqlite_keystore,
)
from keystore.sqlite.backup import restore_backup, write_backup
from signserv.host.audit_log import AUDIT_MAC_PURPOSE
from signserv.host.config import Settings
from signserv.host.key_backends import configured_key_backends

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class InitResult:
    """What `init` did, for the CLI to report."""

    created_master_key: bool
    created_keystore: bool


def _argon2(settings: Settings) -> Argon2Runner:
    return Argon2Runner(settings.kdf.parameters(), settings.kdf.max_concurrent)


def _open_settled_keystore(settings: Settings) -> KeyStore:
    argon2 = _argon2(settings)
    settle_interrupted_rotation(settings.keystore.master_key_file, settings.keystore.path, argon2)
    return open_sqlite_keystore(
        settings.keystore.path,
        read_master_key(settings.keystore.master_key_file),
        argon2,
        reload_master_key=lambda: _settled_master_key(settings, argon2),
        key_backends=configured_key_backends(settings),
    )


def _settled_master_key(settings: Settings, argon2: Argon2Runner) -> MasterKey:
    """The master key file's key once any rotation has finished, for a running service.

    A rotation still running is waited for (it holds the rotation lock), and one killed
    between its commit and its promotion is finished here, so a service never answers 503
    because of a rotation. Where the master key's directory is read-only, nothing can be
    promoted (nor rotated), and the file is read as it is.
    """
    master_key_file = settings.keystore.master_key_file
    try:
        settle_interrupted_rotation(master_key_file, settings.keystore.path, argon2)
    except OSError as exc:
        _logger.warning("could not settle a master-key rotation: %s", exc.strerror)
    return read_master_key(master_key_file)


def open_keystore(settings: Settings) -> KeyStore:
    """Open the configured keystore with the configured master key, checking both.

    A master-key rotation that was killed part-way is finished or undone first.
    """
    try:
        return _open_settled_keystore(settings)
    except MasterKeyMismatch:
        # A rotation may have committed between reading the master key and checking it.
        return _open_settled_keystore(settings)


def open_failure_counters(settings: Settings) -> FailureCounterStore:
    """The failed-authentication counters, kept beside the keys of an opened keystore."""
    return SqliteFailureCounters(SqliteDatabase(settings.keystore.path))


def initialize_home(settings: Settings) -> InitResult:
    """Create the home directory (0700), a master key and an empty keystore.

    Never replaces an existing master key or keystore: an existing pair is left as it is and
    reported as such; a keystore without its master key (or the reverse) is an error.
    """
    settings.home.mkdir(mode=0o700, parents=True, exist_ok=True)
    master_file = settings.keystore.master_key_file
    store_file = settings.keystore.path
    if master_file.exists() and store_file.exists():
        open_keystore(settings).close()
        return InitResult(created_master_key=False, created_keystore=False)
    if store_file.exists():
        raise KeystoreExists(
            f"a keystore exists at {store_file} but its master key file {master_file} is missing; "
            "restore the master key instead of creating a new one"
        )
    created_master_key = not master_file.exists()
    if created_master_key:
        write_master_key(master_file, MasterKey.generate())
    master_key = read_master_key(master_file)
    store = create_sqlite_keystore(store_file, master_key, _argon2(settings))
    # Made now, not at the first serve: a backup taken before it then carries the key the
    # audit log will be written under.
    store.server_secret(AUDIT_MAC_PURPOSE)
    store.close()
    return InitResult(created_master_key=created_master_key, created_keystore=True)


def rotate_home_master_key(settings: Settings) -> RotationResult:
    """Replace the home's master key and re-seal every key under it (no token needed)."""
    return rotate_master_key(
        settings.keystore.master_key_file, settings.keystore.path, _argon2(settings)
    )


def back_up_keystore(settings: Settings, destination: Path) -> int:
    """Write a consistent, still sealed snapshot of the keystore to the new file ``destination``."""
    argon2 = _argon2(settings)
    master_key_file, store_path = settings.keystore.master_key_file, settings.keystore.path
    with settled_master_key(master_key_file, store_path, argon2):
        records = SqliteKeyRecords(SqliteDatabase(store_path))
        store = KeyStore.open(records, read_master_key(master_key_file), argon2)
        try:
            return write_backup(records, destination)
        finally:
            store.close()


def restore_keystore(
    settings: Settings, source: Path, backup_master_key_file: Path | None, *, overwrite: bool
) -> int:
    """Restore the verified backup ``source`` as the home's keystore; returns its key count.

    ``backup_master_key_file`` names the master key the backup was made under (default: the
    home's). Records are re-sealed under the home's master key; a home without one (a rebuilt
    host) takes the backup's master key as its own once the restore succeeded.
    """
    home_key_file = settings.keystore.master_key_file
    if backup_master_key_file is None and not home_key_file.exists():
        raise MasterKeyMissing(
            f"there is no master key file at {home_key_file}: name the master key file the "
            "backup was made under (--master-key-file)"
        )
    settings.home.mkdir(mode=0o700, parents=True, exist_ok=True)
    argon2 = _argon2(settings)
    with settled_master_key(home_key_file, settings.keystore.path, argon2):
        home_has_key = home_key_file.exists()
        backup_master_key = read_master_key(backup_master_key_file or home_key_file)
        home_master_key = read_master_key(home_key_file) if home_has_key else backup_master_key
        count = restore_backup(
            source,
            settings.keystore.path,
            backup_master_key,
            home_master_key,
            argon2,
            overwrite=overwrite,
            kept_server_secrets=_audit_key_to_keep(settings, home_master_key, argon2),
        )
        if not home_has_key:
            write_master_key(home_key_file, home_master_key)
        restored = open_sqlite_keystore(settings.keystore.path, home_master_key, argon2)
        restored.server_secret(AUDIT_MAC_PURPOSE)  # a backup from before init made one
        restored.close()
    return count


def _audit_key_to_keep(
    settings: Settings, home_master_key: MasterKey, argon2: Argon2Runner
) -> dict[str, bytes]:
    """The audit key of the keystore a restore replaces: the home's audit log is chained under
    it, so the restored keystore keeps it whatever the backup holds (or lacks)."""
    if not settings.keystore.path.exists():
        return {}
    try:
        replaced = open_sqlite_keystore(settings.keystore.path, home_master_key, argon2)
    except KeystoreError:
        return {}  # too damaged to read: the backup's audit key is all there is
    try:
        return {AUDIT_MAC_PURPOSE: replaced.server_secret(AUDIT_MAC_PURPOSE)}
    finally:
        replaced.close()
