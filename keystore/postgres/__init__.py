"""The PostgreSQL backend: key records, failure counters and the audit chain shared by replicas."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from keystore import crypto
from keystore.postgres import schema
from keystore.postgres.audit_chain import PostgresAuditChain
from keystore.postgres.database import PostgresDatabase
from keystore.postgres.failure_counters import PostgresFailureCounters
from keystore.postgres.key_records import PostgresKeyRecords
from keystore.postgres.schema import SCHEMA_VERSION
from keystore.signing_key import KeyBackend
from keystore.store import KeyStore

__all__ = [
    "SCHEMA_VERSION",
    "PostgresAuditChain",
    "PostgresDatabase",
    "PostgresFailureCounters",
    "PostgresKeyRecords",
    "PostgresLocation",
    "create_postgres_keystore",
    "erase_throwaway_keystore",
    "open_postgres_keystore",
]


def create_postgres_keystore(
    database: PostgresDatabase, master_key: crypto.MasterKey, argon2: crypto.Argon2Runner
) -> KeyStore:
    """Migrate the schema and bind an empty keystore in ``database`` to ``master_key``."""
    records = PostgresKeyRecords.create(database, crypto.master_key_check(master_key))
    return KeyStore(records, master_key, argon2)


def open_postgres_keystore(
    database: PostgresDatabase,
    master_key: crypto.MasterKey,
    argon2: crypto.Argon2Runner,
    reload_master_key: Callable[[], crypto.MasterKey] | None = None,
    key_backends: Sequence[KeyBackend] = (),
) -> KeyStore:
    """Open the keystore in ``database``, refusing an old or newer schema or a foreign master key."""
    return KeyStore.open(
        PostgresKeyRecords(database), master_key, argon2, reload_master_key, key_backends
    )


@dataclass(frozen=True)
class PostgresLocation:
    """The keystore in ``database``, as :mod:`keystore.rotation` sees it."""

    database: PostgresDatabase

    def exists(self) -> bool:
        return True  # a database is there or unreachable; unreachable is raised on open

    def settle_commits(self) -> None:
        """Nothing to settle: a PostgreSQL commit is decided once COMMIT returns."""

    def open(
        self,
        master_key: crypto.MasterKey,
        argon2: crypto.Argon2Runner,
        reload_master_key: Callable[[], crypto.MasterKey] | None = None,
        key_backends: Sequence[KeyBackend] = (),
    ) -> KeyStore:
        return open_postgres_keystore(
            self.database, master_key, argon2, reload_master_key, key_backends
        )


def erase_throwaway_keystore(database: PostgresDatabase) -> None:
    """Drop the keystore's tables, keys and audit chain included; nothing asks twice.

    Only for a keystore its caller created for itself moments ago (the benchmark's).
    """
    with database.transaction() as statements:
        schema.drop_all(statements.connection)
