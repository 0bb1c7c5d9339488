"""Sealed key records in PostgreSQL: the ``keys`` and ``meta`` tables, shared by every replica.

Every change is one transaction, so a disable, delete or token rotation is seen by every replica
on its next request, and a master-key rotation re-seals every record in one transaction. The
statements are :class:`keystore.sql_records.SqlKeyRecords`'; this module adds the schema.
"""

from __future__ import annotations

from datetime import datetime, timezone

from keystore.errors import KeystoreExists, KeystoreUnavailable
from keystore.postgres import schema
from keystore.postgres.database import PostgresDatabase
from keystore.sql_records import SqlKeyRecords


class PostgresKeyRecords(SqlKeyRecords):
    """:class:`keystore.records.KeyRecordStore` in a PostgreSQL database."""

    def __init__(self, database: PostgresDatabase) -> None:
        super().__init__(database)
        self._postgres = database

    @classmethod
    def create(cls, database: PostgresDatabase, master_key_check: bytes) -> PostgresKeyRecords:
        """Migrate the schema and bind the database to a master key; refuses a bound database."""
        created_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with database.transaction() as statements:
            schema.migrate(statements.connection, database.location)
            inserted = statements.execute(
                "INSERT INTO meta (name, value) VALUES ('master_key_check', ?), ('created_at', ?) "
                "ON CONFLICT (name) DO NOTHING",
                (master_key_check, created_at.encode("ascii")),
            ).rowcount
            if inserted != 2:
                raise KeystoreExists(f"a keystore already exists in {database.location}")
        return cls(database)

    def migrate(self) -> int:
        """Bring the schema up to date (idempotent); returns the version found before."""
        with self._postgres.transaction() as statements:
            return schema.migrate(statements.connection, self.location)

    def check_ready(self) -> None:
        with self._postgres.transaction() as statements:
            schema.require_current(statements.connection, self.location)
            if not statements.execute(
                "SELECT 1 FROM meta WHERE name = 'master_key_check'"
            ).fetchone():
                raise KeystoreUnavailable(
                    f"no signserv keystore in the database {self.location} (run `signserv init`)"
                )
