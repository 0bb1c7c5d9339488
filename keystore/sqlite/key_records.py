"""Sealed key records in the SQLite file: the ``keys`` and ``meta`` tables (DESIGN §3)."""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

from keystore.errors import KeystoreCorrupt, KeystoreExists, KeystoreUnavailable
from keystore.sql_records import SqlKeyRecords
from keystore.sqlite.database import SqliteDatabase, now_text, translate

SCHEMA_VERSION = 3
"""Version 2 added ``keys.kind``, version 3 ``keys.policy``; an older file is migrated when
it is opened."""
_MIGRATIONS = {
    1: "ALTER TABLE keys ADD COLUMN kind TEXT NOT NULL DEFAULT 'software'",
    2: "ALTER TABLE keys ADD COLUMN policy BLOB",
}
READABLE_SCHEMA_VERSIONS = frozenset(str(version) for version in (*_MIGRATIONS, SCHEMA_VERSION))
"""The versions a file may have to be opened (and migrated): what a backup may hold."""
_SCHEMA = """
CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
CREATE TABLE keys (
    name          TEXT PRIMARY KEY,
    record_id     BLOB NOT NULL,
    public_point  BLOB NOT NULL,
    enabled       INTEGER NOT NULL,
    created_at    TEXT NOT NULL,
    last_used_at  TEXT,
    generation    INTEGER NOT NULL,
    kdf           TEXT NOT NULL,
    token_salt    BLOB NOT NULL,
    token_share   BLOB NOT NULL,
    master_share  BLOB NOT NULL,
    private_key   BLOB NOT NULL,
    kind          TEXT NOT NULL DEFAULT 'software',
    policy        BLOB
);
"""


def _parse_version(rows: list[Any]) -> int | None:
    """The schema version stored in ``meta`` (None when missing or not a number)."""
    text = str(rows[0][0]) if rows else ""
    return int(text) if text.isdigit() else None


class SqliteKeyRecords(SqlKeyRecords):
    """:class:`keystore.records.KeyRecordStore` in one SQLite file."""

    def __init__(self, database: SqliteDatabase) -> None:
        super().__init__(database)
        self._sqlite = database
        self.path = database.path
        self._checked_whole = False

    @classmethod
    def create(cls, database: SqliteDatabase, master_key_check: bytes) -> SqliteKeyRecords:
        """Create the file (0600, parent directory 0700) and its schema."""
        path = database.path
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            raise KeystoreExists(f"a keystore already exists at {path}") from None
        with database.transaction() as connection:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    connection.execute(statement)
            connection.execute(
                "INSERT INTO meta (name, value) VALUES ('schema_version', ?), "
                "('master_key_check', ?), ('created_at', ?)",
                (str(SCHEMA_VERSION), master_key_check, now_text()),
            )
        return cls(database)

    def check_ready(self) -> None:
        """Raise unless the file is an intact signserv keystore; migrate an older schema.

        The first check (when the keystore is opened) is SQLite's full ``integrity_check``,
        which also compares every index with its table: a file cut short by one byte can pass
        ``quick_check``. Later checks (each /readyz) are the cheaper ``quick_check``.
        """
        # Only stat it. Opening and closing the file here would release every POSIX lock this
        # process holds on it through SQLite, so another process could delete the WAL under
        # our live connections (sqlite.org/howtocorrupt.html §2.2). SQLite itself refuses a
        # foreign file ("file is not a database").
        if not self.path.is_file():
            raise KeystoreUnavailable(f"no keystore at {self.path} (run `signserv init` first)")
        try:
            connection = self._sqlite.connection()
            check = "quick_check" if self._checked_whole else "integrity_check"
            (integrity,) = connection.execute(f"PRAGMA {check}").fetchone()
            if integrity != "ok":
                raise KeystoreCorrupt(f"the keystore {self.path} fails its integrity check")
        except sqlite3.Error as exc:
            raise translate(exc, self.path) from None
        self._checked_whole = True
        if self._schema_version() != SCHEMA_VERSION:
            self._migrate()

    def _schema_version(self) -> int | None:
        return _parse_version(
            self._database.query("SELECT value FROM meta WHERE name = 'schema_version'")
        )

    def _migrate(self) -> None:
        """Bring an older schema to :data:`SCHEMA_VERSION` in one transaction; refuse others.

        Several workers may open an old file at once: the version is read again inside the
        write transaction, so only the first one migrates.
        """
        with self._database.transaction() as connection:
            version = _parse_version(
                connection.execute(
                    "SELECT value FROM meta WHERE name = 'schema_version'"
                ).fetchall()
            )
            if version == SCHEMA_VERSION:
                return
            if version not in _MIGRATIONS:
                raise KeystoreCorrupt(
                    f"the keystore {self.path} has schema version {version}, "
                    f"this signserv reads versions 1 to {SCHEMA_VERSION}"
                )
            for step in range(version, SCHEMA_VERSION):
                connection.execute(_MIGRATIONS[step])
            connection.execute(
                "UPDATE meta SET value = ? WHERE name = 'schema_version'", (str(SCHEMA_VERSION),)
            )

    # --- SQLite only: backup -----------------------------------------------------------------

    def copy_to(self, destination: Path) -> None:
        """Copy a consistent snapshot (still sealed) into the database file ``destination``.

        SQLite's online backup API: readers and writers may go on meanwhile. The copy leaves WAL
        mode, so it is one self-contained file.
        """
        try:
            with closing(sqlite3.connect(destination)) as target:
                self._sqlite.connection().backup(target)
                target.execute("PRAGMA journal_mode=DELETE")
        except sqlite3.Error as exc:
            raise translate(exc, destination) from None
