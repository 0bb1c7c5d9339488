"""The signserv home: creating it (`signserv init`), opening its keystore, and maintaining it.

Maintenance is master-key rotation, backup and restore; the file protocols live in
:mod:`keystore.rotation` and :mod:`keystore.sqlite.backup`, this module binds them to the
settings. It is the one place that chooses the storage backend: the SQLite file at
``keystore.path`` (the embedded default), or the PostgreSQL database at ``keystore.url``, where
key records, lockout counters and the audit chain are shared by every replica. A backup is a
SQLite file for both backends, so a backup of either restores into either.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from keystore import (
    Argon2Runner,
    AuditChainStore,
    FailureCounterStore,
    KeyStore,
    KeystoreError,
    KeystoreExists,
    KeystoreUnavailable,
    MasterKey,
    MasterKeyMismatch,
    MasterKeyMissing,
    crypto,
    read_master_key,
    write_master_key,
)
from keystore.errors import AuditChainBroken, BackupError
from keystore.file_audit_chain import FileAuditChain, LogEnd, read_lines, verify_records
from keystore.postgres import (
    PostgresAuditChain,
    PostgresDatabase,
    PostgresFailureCounters,
    PostgresKeyRecords,
    PostgresLocation,
)
from keystore.postgres.audit_chain import stored_records as stored_audit_records
from keystore.rotation import (
    KeystoreLocation,
    RotationResult,
    rotate_master_key,
    settle_interrupted_rotation,
    settled_master_key,
)
from keystore.sqlite import (
    SqliteDatabase,
    SqliteFailureCounters,
    SqliteKeyRecords,
    SqliteLocation,
    create_sqlite_keystore,
)
from keystore.sqlite.audit_log_end import SqliteAuditLogEnd
from keystore.sqlite.backup import backup_server_secrets, restore_backup, write_backup
from signserv.host.audit_log import AUDIT_CHECKPOINT_PURPOSE, AUDIT_MAC_PURPOSE
from signserv.host.config import Settings
from signserv.host.key_backends import configured_key_backends

_logger = logging.getLogger(__name__)


_AUDIT_SECRETS = (AUDIT_MAC_PURPOSE, AUDIT_CHECKPOINT_PURPOSE)


def _audit_secrets(store: KeyStore) -> dict[str, bytes]:
    """The audit MAC key and the checkpoint key's seed, by purpose, made now where missing.

    Made at `init`, not at the first serve, so that a first backup carries the keys the audit
    log is chained and checkpointed under.
    """
    return {purpose: store.server_secret(purpose) for purpose in _AUDIT_SECRETS}


@dataclass(frozen=True)
class InitResult:
    """What `init` did, for the CLI to report."""

    created_master_key: bool
    created_keystore: bool
    location: str


def _argon2(settings: Settings) -> Argon2Runner:
    return Argon2Runner(settings.kdf.parameters(), settings.kdf.max_concurrent)


def postgres_database(settings: Settings) -> PostgresDatabase | None:
    """The configured PostgreSQL database, or None when the keystore is the SQLite file."""
    if settings.keystore.url is None:
        return None
    password = None
    if settings.keystore.password_file is not None:
        try:
            password = settings.keystore.password_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise KeystoreUnavailable(
                f"cannot read the database password file {settings.keystore.password_file}: "
                f"{getattr(exc, 'strerror', None) or 'not UTF-8 text'}"
            ) from None
    return PostgresDatabase(settings.keystore.url, password)


def keystore_location(settings: Settings) -> KeystoreLocation:
    """The configured keystore, whichever backend holds it."""
    database = postgres_database(settings)
    if database is None:
        return SqliteLocation(settings.keystore.path)
    return PostgresLocation(database)


def _open_settled_keystore(settings: Settings) -> KeyStore:
    argon2 = _argon2(settings)
    location = keystore_location(settings)
    settle_interrupted_rotation(settings.keystore.master_key_file, location, argon2)
    master_key_file = settings.keystore.master_key_file
    return location.open(
        read_master_key(master_key_file),
        argon2,
        reload_master_key=lambda: _settled_master_key(settings, location, argon2),
        key_backends=configured_key_backends(settings),
    )


def _settled_master_key(
    settings: Settings, location: KeystoreLocation, argon2: Argon2Runner
) -> MasterKey:
    """The master key file's key once any rotation has finished, for a running service.

    A rotation still running is waited for (it holds the rotation lock), and one killed
    between its commit and its promotion is finished here, so a service never answers 503
    because of a rotation. Where the master key's directory is read-only, nothing can be
    promoted (nor rotated), and the file is read as it is.
    """
    master_key_file = settings.keystore.master_key_file
    try:
        settle_interrupted_rotation(master_key_file, location, argon2)
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
    database = postgres_database(settings)
    if database is None:
        return SqliteFailureCounters(SqliteDatabase(settings.keystore.path))
    return PostgresFailureCounters(database)


def open_audit_chain(settings: Settings, mac_key: bytes) -> AuditChainStore:
    """The audit chain: the file ``audit.path`` beside SQLite, the shared table with PostgreSQL.

    The file's end is recorded in the SQLite keystore as records are written, so a log deleted
    or cut short is noticed by the next writer and by ``verify``. PostgreSQL keeps the chain
    itself in the database.
    """
    database = postgres_database(settings)
    if database is None:
        return _file_audit_chain(settings, mac_key)
    return PostgresAuditChain(database, mac_key)


def _file_audit_chain(settings: Settings, mac_key: bytes) -> FileAuditChain:
    log_end = SqliteAuditLogEnd(SqliteDatabase(settings.keystore.path))
    return FileAuditChain(settings.audit.path, mac_key, settings.audit.fsync, log_end)


def check_audit_log_continues(settings: Settings) -> None:
    """Raise :class:`AuditLogReplaced` unless the audit log file still holds the last record
    the keystore recorded (a service must not start a new chain over a deleted or cut log)."""
    if postgres_database(settings) is not None:
        return
    database = SqliteDatabase(settings.keystore.path)
    try:
        # No MAC key is needed: the recorded record is found by its offset and hash.
        log_end = SqliteAuditLogEnd(database)
        FileAuditChain(settings.audit.path, b"", log_end=log_end).check_recorded_end()
    finally:
        database.close()


class AuditLogInTheWay(KeystoreError):
    """A new audit chain was asked for while the audit log file still holds records."""


def forget_recorded_audit_log_end(settings: Settings) -> LogEnd | None:
    """Forget the recorded end of the audit log, so that a new chain may start at record 1.

    Only once the old log is out of the way (moved aside, or lost): a log still holding
    records is refused. Returns what was forgotten. Nothing to do with PostgreSQL.
    """
    if postgres_database(settings) is not None:
        return None
    path = settings.audit.path
    if path.exists() and path.stat().st_size > 0:
        raise AuditLogInTheWay(
            f"the audit log {path} still holds records: move it aside (keep it: it is "
            "evidence) before starting a new audit chain"
        )
    log_end = SqliteAuditLogEnd(SqliteDatabase(settings.keystore.path))
    forgotten = log_end.recorded()
    log_end.replace(None)
    return forgotten


def audit_chain_location(settings: Settings) -> str:
    """Where the audit chain lives, for messages."""
    database = postgres_database(settings)
    return str(settings.audit.path) if database is None else f"{database.location} (audit_records)"


def audit_records(settings: Settings) -> Iterator[bytes]:
    """The stored audit records, oldest first, without checking them."""
    database = postgres_database(settings)
    if database is None:
        return read_lines(settings.audit.path)
    return stored_audit_records(database)


def _initialize_postgres(settings: Settings, database: PostgresDatabase) -> InitResult:
    """Migrate the schema; bind an empty database to the master key, or check the bound one.

    Every replica may run this: a database that already holds a keystore is only migrated and
    checked against this host's master key, which must be a copy of the one that created it.
    """
    master_file = settings.keystore.master_key_file
    records = PostgresKeyRecords(database)
    records.migrate()
    if records.master_key_check():
        if not master_file.exists():
            raise MasterKeyMissing(
                f"the database {database.location} holds a keystore but {master_file} is missing; "
                "copy the master key file from a host that serves this keystore"
            )
        open_keystore(settings).close()
        return InitResult(False, False, database.location)
    created_master_key = not master_file.exists()
    if created_master_key:
        write_master_key(master_file, MasterKey.generate())
    master_key = read_master_key(master_file)
    records = PostgresKeyRecords.create(database, crypto.master_key_check(master_key))
    store = KeyStore(records, master_key, _argon2(settings))
    _audit_secrets(store)
    store.close()
    return InitResult(created_master_key, True, database.location)


def initialize_home(settings: Settings) -> InitResult:
    """Create the home directory (0700), a master key and an empty keystore.

    Never replaces an existing master key or keystore: an existing pair is left as it is and
    reported as such; a keystore without its master key (or the reverse) is an error.
    """
    settings.home.mkdir(mode=0o700, parents=True, exist_ok=True)
    database = postgres_database(settings)
    if database is not None:
        return _initialize_postgres(settings, database)
    master_file = settings.keystore.master_key_file
    store_file = settings.keystore.path
    if master_file.exists() and store_file.exists():
        open_keystore(settings).close()
        return InitResult(False, False, str(store_file))
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
    _audit_secrets(store)
    store.close()
    return InitResult(created_master_key, True, str(store_file))


def rotate_home_master_key(settings: Settings) -> RotationResult:
    """Replace the home's master key and re-seal every key under it (no token needed)."""
    return rotate_master_key(
        settings.keystore.master_key_file, keystore_location(settings), _argon2(settings)
    )


def back_up_keystore(settings: Settings, destination: Path) -> int:
    """Write a consistent, still sealed snapshot of the keystore to the new file ``destination``.

    The backup is a SQLite keystore file for either backend; PostgreSQL's records are copied into
    one first, inside the destination's directory so they never leave the host's care.
    """
    argon2 = _argon2(settings)
    master_key_file, location = settings.keystore.master_key_file, keystore_location(settings)
    with settled_master_key(master_key_file, location, argon2):
        store = location.open(read_master_key(master_key_file), argon2)
        try:
            if isinstance(store.records, SqliteKeyRecords):
                return write_backup(store.records, destination)
            with tempfile.TemporaryDirectory(prefix=".backup-", dir=destination.parent) as scratch:
                copy = SqliteKeyRecords.create(
                    SqliteDatabase(Path(scratch) / "snapshot.db"), store.records.master_key_check()
                )
                copy.load_snapshot(store.records.snapshot(), replace=False)
                try:
                    return write_backup(copy, destination)
                finally:
                    copy.close()
        finally:
            store.close()


def restore_keystore(
    settings: Settings, source: Path, backup_master_key_file: Path | None, *, overwrite: bool
) -> int:
    """Restore the verified backup ``source`` as the home's keystore; returns its key count.

    ``backup_master_key_file`` names the master key the backup was made under (default: the
    home's). Records are re-sealed under the home's master key; a home without one (a rebuilt
    host) takes the backup's master key as its own once the restore succeeded. Into PostgreSQL,
    the verified, re-sealed copy replaces the records in one transaction.
    """
    home_key_file = settings.keystore.master_key_file
    if backup_master_key_file is None and not home_key_file.exists():
        raise MasterKeyMissing(
            f"there is no master key file at {home_key_file}: name the master key file the "
            "backup was made under (--master-key-file)"
        )
    settings.home.mkdir(mode=0o700, parents=True, exist_ok=True)
    argon2 = _argon2(settings)
    database = postgres_database(settings)
    location: KeystoreLocation = (
        SqliteLocation(settings.keystore.path) if database is None else PostgresLocation(database)
    )
    with settled_master_key(home_key_file, location, argon2):
        home_has_key = home_key_file.exists()
        backup_master_key = read_master_key(backup_master_key_file or home_key_file)
        home_master_key = read_master_key(home_key_file) if home_has_key else backup_master_key
        kept = _audit_keys_to_keep(settings, location, source, backup_master_key, home_master_key)
        if database is None:
            count = restore_backup(
                source,
                settings.keystore.path,
                backup_master_key,
                home_master_key,
                argon2,
                overwrite=overwrite,
                kept_server_secrets=kept,
                kept_audit_log_end=_recorded_audit_log_end(settings),
            )
        else:
            count = _restore_into_postgres(
                source,
                database,
                backup_master_key,
                home_master_key,
                argon2,
                overwrite=overwrite,
                kept_server_secrets=kept,
            )
        if not home_has_key:
            write_master_key(home_key_file, home_master_key)
        restored = location.open(home_master_key, argon2)
        _audit_secrets(restored)  # a backup from before init (or checkpoints) lacks them
        restored.close()
    return count


def _restore_into_postgres(
    source: Path,
    database: PostgresDatabase,
    backup_master_key: MasterKey,
    home_master_key: MasterKey,
    argon2: Argon2Runner,
    *,
    overwrite: bool,
    kept_server_secrets: dict[str, bytes],
) -> int:
    """Verify and re-seal ``source`` in a private scratch copy, then load it in one transaction."""
    records = PostgresKeyRecords(database)
    records.migrate()
    if not records.master_key_check():
        PostgresKeyRecords.create(database, crypto.master_key_check(home_master_key))
    with tempfile.TemporaryDirectory(prefix=".restore-") as scratch:
        staged = Path(scratch) / "keystore.db"
        count = restore_backup(
            source,
            staged,
            backup_master_key,
            home_master_key,
            argon2,
            overwrite=False,
            kept_server_secrets=kept_server_secrets,
        )
        copy = SqliteKeyRecords(SqliteDatabase(staged))
        try:
            snapshot = copy.snapshot()
        finally:
            copy.close()
    try:
        records.load_snapshot(snapshot, replace=overwrite)
    except KeystoreExists:
        raise KeystoreExists(
            f"the keystore {database.location} holds keys; restoring replaces every "
            "key in it, so pass --force if that is what you want"
        ) from None
    return count


class AuditLogUnverifiable(BackupError):
    """The home's audit log verifies under neither the backup's audit key nor the home's."""


def _audit_keys_to_keep(
    settings: Settings,
    location: KeystoreLocation,
    source: Path,
    backup_master_key: MasterKey,
    home_master_key: MasterKey,
) -> dict[str, bytes]:
    """The audit keys the restored keystore is to hold in place of the backup's.

    The home's audit log outlives the restore, so the restored keystore keeps the keys it
    verifies under: the backup's when they do (a rebuilt host, whose `init` made fresh keys, with
    the old log copied back; an empty or missing log), else the home's (a backup made before its
    audit keys existed). A log that neither verifies is refused before anything changes. The
    checkpoint key goes with its MAC key: both come from one keystore.
    """
    backup = backup_server_secrets(source, backup_master_key, _AUDIT_SECRETS)
    if AUDIT_MAC_PURPOSE in backup and _log_verifies_under(settings, backup[AUDIT_MAC_PURPOSE]):
        return {}
    home = _home_audit_secrets(location, home_master_key, _argon2(settings))
    if AUDIT_MAC_PURPOSE in home and _log_verifies_under(settings, home[AUDIT_MAC_PURPOSE]):
        return home
    if not backup and not home:
        return {}  # no audit key on either side: the log cannot be checked by anyone
    raise AuditLogUnverifiable(
        f"the audit log {audit_chain_location(settings)} verifies under neither the backup's "
        "audit key nor this home's, so after the restore it could not be checked; nothing was "
        "changed. Move the log aside (keep it: it is evidence) and restore again, or restore a "
        "backup of the keystore that wrote it"
    )


def _recorded_audit_log_end(settings: Settings) -> LogEnd | None:
    """The end of the home's audit log as its keystore recorded it: it describes the log that
    outlives a restore, not the backup's (none when there is no keystore to read)."""
    if not settings.keystore.path.exists():
        return None  # (opening it would create an empty file where the restore goes)
    try:
        return SqliteAuditLogEnd(SqliteDatabase(settings.keystore.path)).recorded()
    except KeystoreError:
        return None


def _log_verifies_under(settings: Settings, mac_key: bytes) -> bool:
    """True when every stored audit record (none, if there is no log) checks out under ``mac_key``."""
    if postgres_database(settings) is None and not settings.audit.path.exists():
        return True
    try:
        verify_records(audit_records(settings), mac_key)
    except AuditChainBroken:
        return False
    return True


def _home_audit_secrets(
    location: KeystoreLocation, home_master_key: MasterKey, argon2: Argon2Runner
) -> dict[str, bytes]:
    """The audit keys of the keystore a restore replaces (none when there is none to read)."""
    if not location.exists():
        return {}
    try:
        replaced = location.open(home_master_key, argon2)
    except KeystoreError:
        return {}  # too damaged to read: the backup's audit key is all there is
    try:
        return _audit_secrets(replaced)
    finally:
        replaced.close()
