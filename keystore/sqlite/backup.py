"""Backups of the keystore: consistent online snapshots, still sealed, and verified restores.

A backup is a copy of the SQLite file made with SQLite's online backup API while the service
runs. Its records stay sealed under the master key and each key's token, so a backup is only
useful together with the master key it was made under, which must be kept separately.

A restore never touches its source: it stages a private copy, checks the copy (SQLite's
full integrity check, schema, the master-key check) and re-seals every master share under the home's
master key, which proves each record opens. Only then does the copy replace the keystore:
with ``os.replace`` when there is none, or through SQLite's backup API into the existing one,
which is one transaction that live readers see whole.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterable, Mapping
from contextlib import closing
from pathlib import Path
from types import MappingProxyType

from foundation import fsync_path
from keystore.crypto import Argon2Runner, MasterKey, open_server_secret, seal_server_secret
from keystore.errors import (
    BackupError,
    BackupExists,
    BackupUnusable,
    KeystoreCorrupt,
    KeystoreUnavailable,
    MasterKeyMismatch,
    RestoreWouldOverwrite,
)
from keystore.file_audit_chain import LogEnd
from keystore.record_rows import SERVER_SECRET_PREFIX
from keystore.sqlite.audit_log_end import SqliteAuditLogEnd
from keystore.sqlite.database import SqliteDatabase
from keystore.sqlite.key_records import READABLE_SCHEMA_VERSIONS, SqliteKeyRecords
from keystore.store import KeyStore

_NOTHING_KEPT: Mapping[str, bytes] = MappingProxyType({})


def _create_private_file(path: Path) -> None:
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _intact_key_count(copy: Path, backup: Path) -> int:
    """SQLite's full integrity check and the schema of a backup ``copy``, read-only; its key count."""
    unusable = BackupUnusable(f"the backup {backup} is damaged or is not a signserv keystore")
    try:
        with closing(sqlite3.connect(f"{copy.resolve().as_uri()}?mode=ro", uri=True)) as database:
            (integrity,) = database.execute("PRAGMA integrity_check").fetchone()
            schema = database.execute(
                "SELECT value FROM meta WHERE name = 'schema_version'"
            ).fetchall()
            (count,) = database.execute("SELECT count(*) FROM keys").fetchone()
    except sqlite3.Error:
        raise unusable from None
    versions = {str(value) for (value,) in schema}
    if integrity != "ok" or len(versions) != 1 or not versions <= READABLE_SCHEMA_VERSIONS:
        raise unusable
    return int(count)


def write_backup(records: SqliteKeyRecords, destination: Path) -> int:
    """Snapshot ``records`` into the new file ``destination`` (0600); returns how many keys it holds."""
    if destination.exists():
        raise BackupExists(f"{destination} exists; a backup never replaces a file")
    staged = destination.with_name(f".{destination.name}.{os.getpid()}.tmp")
    try:
        _create_private_file(staged)
        records.copy_to(staged)
        fsync_path(staged)
        count = _intact_key_count(staged, destination)
        try:
            os.link(staged, destination)
        except FileExistsError:
            raise BackupExists(f"{destination} exists; a backup never replaces a file") from None
    except OSError as exc:
        raise BackupError(f"cannot write the backup {destination}: {exc.strerror}") from None
    finally:
        staged.unlink(missing_ok=True)
    fsync_path(destination.parent)
    return count


def _copy_checked(source: Path, copy: Path) -> None:
    """Copy the backup ``source`` to the new private file ``copy`` and check the copy."""
    try:
        _create_private_file(copy)
        shutil.copyfile(source, copy)
    except OSError as exc:
        raise BackupUnusable(f"cannot read the backup {source}: {exc.strerror}") from None
    _intact_key_count(copy, source)


def _stage_verified_copy(
    source: Path,
    staged: Path,
    backup_master_key: MasterKey,
    home_master_key: MasterKey,
    argon2: Argon2Runner,
    kept_server_secrets: Mapping[str, bytes],
    kept_audit_log_end: LogEnd | None,
) -> int:
    """Copy ``source`` to ``staged``, verify it, re-seal it under the home's master key and
    put ``kept_server_secrets`` and ``kept_audit_log_end`` in place of the backup's."""
    _copy_checked(source, staged)
    try:
        store = KeyStore.open(SqliteKeyRecords(SqliteDatabase(staged)), backup_master_key, argon2)
    except MasterKeyMismatch:
        raise BackupUnusable(
            f"the backup {source} was made under another master key; name that master key's "
            "file (--master-key-file)"
        ) from None
    except KeystoreUnavailable as exc:
        raise BackupUnusable(
            f"the backup {source} is damaged or is not a signserv keystore"
        ) from exc
    try:
        count = store.reseal_master_shares(home_master_key)
    except KeystoreCorrupt as exc:
        raise BackupUnusable(f"the backup {source} holds a damaged record: {exc}") from None
    finally:
        store.close()
    database = SqliteDatabase(staged)
    records = SqliteKeyRecords(database)
    for purpose, secret in kept_server_secrets.items():
        records.replace_server_secret(purpose, seal_server_secret(home_master_key, purpose, secret))
    SqliteAuditLogEnd(database).replace(kept_audit_log_end)
    records.close()
    fsync_path(staged)
    return count


def backup_server_secrets(
    source: Path, backup_master_key: MasterKey, purposes: Iterable[str]
) -> dict[str, bytes]:
    """The server secrets for ``purposes`` that the backup ``source`` holds (those it lacks are
    left out), read from a private, checked copy: a restore never touches its source."""
    with tempfile.TemporaryDirectory(prefix=".restore-") as scratch:
        copy = Path(scratch) / source.name
        _copy_checked(source, copy)
        with closing(sqlite3.connect(f"{copy.resolve().as_uri()}?mode=ro", uri=True)) as database:
            sealed = {
                str(name).removeprefix(SERVER_SECRET_PREFIX): bytes(value)
                for name, value in database.execute(
                    "SELECT name, value FROM meta WHERE name LIKE ?", (SERVER_SECRET_PREFIX + "%",)
                )
            }
    try:
        return {
            purpose: open_server_secret(backup_master_key, purpose, sealed[purpose])
            for purpose in purposes
            if purpose in sealed
        }
    except KeystoreCorrupt:
        raise BackupUnusable(
            f"the backup {source} was made under another master key; name that master key's "
            "file (--master-key-file)"
        ) from None


def _install(staged: Path, store_path: Path) -> None:
    """Make ``staged`` the keystore at ``store_path`` (see the module docstring)."""
    if not store_path.exists():
        # A WAL or shared-memory file without its database belongs to a deleted keystore.
        for leftover in (Path(f"{store_path}-wal"), Path(f"{store_path}-shm")):
            leftover.unlink(missing_ok=True)
        os.replace(staged, store_path)
        fsync_path(store_path.parent)
        return
    try:
        with (
            closing(sqlite3.connect(store_path, timeout=10.0)) as target,
            closing(sqlite3.connect(staged)) as origin,
        ):
            origin.backup(target)
    except sqlite3.DatabaseError:
        raise BackupError(
            f"the keystore {store_path} is too damaged to be restored in place: stop the service, "
            f"move {store_path} (and its -wal and -shm files) away, then restore again"
        ) from None


def restore_backup(
    source: Path,
    store_path: Path,
    backup_master_key: MasterKey,
    home_master_key: MasterKey,
    argon2: Argon2Runner,
    *,
    overwrite: bool,
    kept_server_secrets: Mapping[str, bytes] = _NOTHING_KEPT,
    kept_audit_log_end: LogEnd | None = None,
) -> int:
    """Replace the keystore at ``store_path`` with the verified backup ``source``; returns the key count.

    ``kept_server_secrets`` (by purpose) replace the backup's: secrets that belong to the host
    rather than to the keys, such as the key of an audit log that outlives the restore. So does
    ``kept_audit_log_end``, where that log ended (None: no end recorded), for the same reason.
    """
    if store_path.exists() and not overwrite:
        raise RestoreWouldOverwrite(
            f"a keystore exists at {store_path}; restoring replaces every key in it, so pass "
            "--force if that is what you want"
        )
    store_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".restore-", dir=store_path.parent) as scratch:
        staged = Path(scratch) / store_path.name
        count = _stage_verified_copy(
            source,
            staged,
            backup_master_key,
            home_master_key,
            argon2,
            kept_server_secrets,
            kept_audit_log_end,
        )
        _install(staged, store_path)
    return count
