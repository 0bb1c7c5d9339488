"""The PostgreSQL schema, versioned: each migration is one row, applied in order by `signserv init`.

A database is migrated in one transaction under an advisory lock, so two replicas running
`init` at once apply each step once. A database whose version is newer than the last
migration here was written by a newer signserv and is refused, never downgraded.
"""

from __future__ import annotations

from typing import Any

import psycopg

from keystore.errors import KeystoreCorrupt, KeystoreUnavailable

# pg_advisory_xact_lock keys: schema migration, audit appends, and (with a key name's hash)
# one key's failure counts.
SCHEMA_LOCK = 0x5167_0001
AUDIT_APPEND_LOCK = 0x5167_0002
FAILURE_COUNT_LOCK = 0x5167_0003

# version -> the statements that bring the schema from version - 1 to version. Add a row to
# migrate; never edit a row that has shipped.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE meta (
            name  TEXT PRIMARY KEY,
            value BYTEA NOT NULL
        )""",
        """CREATE TABLE keys (
            name          TEXT PRIMARY KEY,
            record_id     BYTEA NOT NULL,
            public_point  BYTEA NOT NULL,
            enabled       BOOLEAN NOT NULL,
            created_at    TEXT NOT NULL,
            last_used_at  TEXT,
            generation    BIGINT NOT NULL,
            kdf           TEXT NOT NULL,
            token_salt    BYTEA NOT NULL,
            token_share   BYTEA NOT NULL,
            master_share  BYTEA NOT NULL,
            private_key   BYTEA NOT NULL
        )""",
        """CREATE TABLE auth_failures (
            key_name      TEXT NOT NULL,
            address       TEXT NOT NULL,
            failures      INTEGER NOT NULL,
            last_failure  DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (key_name, address)
        )""",
        """CREATE TABLE audit_records (
            seq     BIGINT PRIMARY KEY,
            record  BYTEA NOT NULL
        )""",
    ),
    2: ("ALTER TABLE keys ADD COLUMN kind TEXT NOT NULL DEFAULT 'software'",),
    3: ("ALTER TABLE keys ADD COLUMN policy BYTEA",),
}
SCHEMA_VERSION = max(MIGRATIONS)


def stored_version(connection: psycopg.Connection[Any]) -> int:
    """The schema version the database holds; 0 for a database signserv never touched."""
    (has_meta,) = connection.execute("SELECT to_regclass('meta') IS NOT NULL").fetchone() or (
        False,
    )
    if not has_meta:
        return 0
    row = connection.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
    try:
        return int(bytes(row[0]).decode("ascii")) if row else 0
    except ValueError:
        raise KeystoreCorrupt("the keystore database holds an unreadable schema version") from None


def refuse_newer(version: int, location: str) -> None:
    """Raise when ``version`` comes from a newer signserv than this one."""
    if version > SCHEMA_VERSION:
        raise KeystoreUnavailable(
            f"the keystore database {location} has schema version {version}, written by a newer "
            f"signserv; this one reads up to version {SCHEMA_VERSION}: upgrade signserv"
        )


def migrate(connection: psycopg.Connection[Any], location: str) -> int:
    """Bring the schema to :data:`SCHEMA_VERSION` inside the caller's transaction; returns the
    version found before."""
    connection.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
    found = stored_version(connection)
    refuse_newer(found, location)
    for version in range(found + 1, SCHEMA_VERSION + 1):
        for statement in MIGRATIONS[version]:
            connection.execute(statement)
        connection.execute(
            "INSERT INTO meta (name, value) VALUES ('schema_version', %s) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (str(version).encode("ascii"),),
        )
    return found


def require_current(connection: psycopg.Connection[Any], location: str) -> None:
    """Raise unless the database holds exactly this signserv's schema."""
    found = stored_version(connection)
    refuse_newer(found, location)
    if found == 0:
        raise KeystoreUnavailable(
            f"no signserv keystore in the database {location} (run `signserv init` first)"
        )
    if found < SCHEMA_VERSION:
        raise KeystoreUnavailable(
            f"the keystore database {location} has schema version {found}; run `signserv init` "
            f"to migrate it to version {SCHEMA_VERSION}"
        )


def drop_all(connection: psycopg.Connection[Any]) -> None:
    """Drop every table the migrations created: for a throwaway keystore only (the benchmark)."""
    connection.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
    connection.execute("DROP TABLE IF EXISTS audit_records, auth_failures, keys, meta")
