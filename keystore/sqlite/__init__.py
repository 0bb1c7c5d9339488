"""The SQLite backend: key records, failure counters, backup and restore in one file (DESIGN §3)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from keystore import crypto
from keystore.signing_key import KeyBackend
from keystore.sqlite.database import SqliteDatabase, decide_interrupted_commit
from keystore.sqlite.failure_counters import SqliteFailureCounters
from keystore.sqlite.key_records import SCHEMA_VERSION, SqliteKeyRecords
from keystore.store import KeyStore

__all__ = [
    "SCHEMA_VERSION",
    "SqliteDatabase",
    "SqliteFailureCounters",
    "SqliteKeyRecords",
    "SqliteLocation",
    "create_sqlite_keystore",
    "decide_interrupted_commit",
    "open_sqlite_keystore",
]


def create_sqlite_keystore(
    path: Path, master_key: crypto.MasterKey, argon2: crypto.Argon2Runner
) -> KeyStore:
    """Create a keystore file (0600, parent directory 0700) bound to ``master_key``, with every
    table: a backup made before the first serve then holds all the service will use."""
    database = SqliteDatabase(path)
    records = SqliteKeyRecords.create(database, crypto.master_key_check(master_key))
    SqliteFailureCounters(database)
    return KeyStore(records, master_key, argon2)


def open_sqlite_keystore(
    path: Path,
    master_key: crypto.MasterKey,
    argon2: crypto.Argon2Runner,
    reload_master_key: Callable[[], crypto.MasterKey] | None = None,
    key_backends: Sequence[KeyBackend] = (),
) -> KeyStore:
    """Open the keystore file at ``path``, refusing a damaged file or a master key not its own."""
    return KeyStore.open(
        SqliteKeyRecords(SqliteDatabase(path)),
        master_key,
        argon2,
        reload_master_key,
        key_backends,
    )


@dataclass(frozen=True)
class SqliteLocation:
    """The keystore file at ``path``, as :mod:`keystore.rotation` and backups see it."""

    path: Path

    def exists(self) -> bool:
        return self.path.exists()

    def settle_commits(self) -> None:
        decide_interrupted_commit(self.path)

    def open(
        self,
        master_key: crypto.MasterKey,
        argon2: crypto.Argon2Runner,
        reload_master_key: Callable[[], crypto.MasterKey] | None = None,
        key_backends: Sequence[KeyBackend] = (),
    ) -> KeyStore:
        return open_sqlite_keystore(self.path, master_key, argon2, reload_master_key, key_backends)
