"""Sealed key records in the SQLite file: the ``keys`` and ``meta`` tables (DESIGN §3)."""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

from foundation.argon2id import Argon2Parameters
from keystore import crypto
from keystore.errors import (
    KeyExists,
    KeystoreCorrupt,
    KeystoreExists,
    KeystoreUnavailable,
    RecordsChanged,
)
from keystore.records import KeyInfo, KeyStatus, MasterSeals, NewKeyRecord, SealedRecord
from keystore.sqlite.database import SqliteDatabase, now_text, translate

SCHEMA_VERSION = 2
"""Version 2 added ``keys.kind``; a version-1 file is migrated when it is opened."""
_MIGRATIONS = {
    1: "ALTER TABLE keys ADD COLUMN kind TEXT NOT NULL DEFAULT 'software'",
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
    kind          TEXT NOT NULL DEFAULT 'software'
);
"""
_SEALED_COLUMNS = "record_id, kdf, token_salt, token_share, master_share, private_key"
_INFO_COLUMNS = "name, public_point, enabled, created_at, last_used_at, generation, kind"
_SERVER_SECRET_PREFIX = "server_secret:"  # noqa: S105 (a row name, the value is sealed)


def _parse_version(rows: list[Any]) -> int | None:
    """The schema version stored in ``meta`` (None when missing or not a number)."""
    text = str(rows[0][0]) if rows else ""
    return int(text) if text.isdigit() else None


def _info_from_row(row: Any) -> KeyInfo:
    name, point, enabled, created_at, last_used_at, generation, kind = row
    return KeyInfo(
        name=str(name),
        public_point=bytes(point),
        enabled=bool(enabled),
        created_at=str(created_at),
        last_used_at=None if last_used_at is None else str(last_used_at),
        generation=int(generation),
        kind=str(kind),
    )


def _sealed_key_from_row(row: Any) -> crypto.SealedKey:
    """A :class:`crypto.SealedKey` from the ``_SEALED_COLUMNS`` of one row."""
    record_id, kdf, salt, token_share, master_share, private_key = row
    return crypto.SealedKey(
        record_id=bytes(record_id),
        kdf=crypto.parse_kdf_record(str(kdf)),
        token_salt=bytes(salt),
        token_share=bytes(token_share),
        master_share=bytes(master_share),
        private_key=bytes(private_key),
    )


def _read_master_seals(connection: sqlite3.Connection) -> MasterSeals:
    rows = connection.execute(f"SELECT name, {_SEALED_COLUMNS} FROM keys").fetchall()  # noqa: S608
    secrets = connection.execute(
        "SELECT name, value FROM meta WHERE name LIKE 'server_secret:%'"
    ).fetchall()
    (check,) = connection.execute(
        "SELECT value FROM meta WHERE name = 'master_key_check'"
    ).fetchone()
    return MasterSeals(
        master_key_check=bytes(check),
        keys={str(name): _sealed_key_from_row(columns) for name, *columns in rows},
        server_secrets={
            str(name).removeprefix(_SERVER_SECRET_PREFIX): bytes(value) for name, value in secrets
        },
    )


def _same_records(first: MasterSeals, second: MasterSeals) -> bool:
    """Same check, same keys (same record ids) and same server secrets."""
    return (
        first.master_key_check == second.master_key_check
        and {name: sealed.record_id for name, sealed in first.keys.items()}
        == {name: sealed.record_id for name, sealed in second.keys.items()}
        and first.server_secrets.keys() == second.server_secrets.keys()
    )


class SqliteKeyRecords:
    """:class:`keystore.records.KeyRecordStore` in one SQLite file."""

    def __init__(self, database: SqliteDatabase) -> None:
        self._database = database
        self.path = database.path
        self.location = str(database.path)
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
            connection = self._database.connection()
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

    def close(self) -> None:
        self._database.close()

    # --- reading -----------------------------------------------------------------------------

    def list_keys(self) -> list[KeyInfo]:
        rows = self._database.query(f"SELECT {_INFO_COLUMNS} FROM keys ORDER BY name")  # noqa: S608
        return [_info_from_row(row) for row in rows]

    def count_keys(self) -> int:
        return int(self._database.query("SELECT COUNT(*) FROM keys")[0][0])

    def info(self, name: str) -> KeyInfo | None:
        rows = self._database.query(
            f"SELECT {_INFO_COLUMNS} FROM keys WHERE name = ?",  # noqa: S608
            (name,),
        )
        return _info_from_row(rows[0]) if rows else None

    def status(self, name: str) -> KeyStatus | None:
        rows = self._database.query(
            "SELECT enabled, generation, record_id, token_salt FROM keys WHERE name = ?", (name,)
        )
        if not rows:
            return None
        enabled, generation, record_id, token_salt = rows[0]
        return KeyStatus(
            enabled=bool(enabled),
            generation=int(generation),
            record_id=bytes(record_id),
            token_salt=bytes(token_salt),
        )

    def sealed(self, name: str) -> SealedRecord | None:
        rows = self._database.query(
            f"SELECT {_SEALED_COLUMNS}, enabled, generation, public_point, kind "  # noqa: S608
            "FROM keys WHERE name = ?",
            (name,),
        )
        if not rows:
            return None
        sealed = _sealed_key_from_row(rows[0][:6])
        enabled, generation, point, kind = rows[0][6:]
        status = KeyStatus(
            enabled=bool(enabled),
            generation=int(generation),
            record_id=sealed.record_id,
            token_salt=sealed.token_salt,
        )
        return SealedRecord(sealed=sealed, status=status, public_point=bytes(point), kind=str(kind))

    def kdf_costs(self) -> set[Argon2Parameters]:
        rows = self._database.query("SELECT DISTINCT kdf FROM keys")
        return {crypto.parse_kdf_record(str(row[0])) for row in rows}

    def master_key_check(self) -> bytes:
        rows = self._database.query("SELECT value FROM meta WHERE name = 'master_key_check'")
        return bytes(rows[0][0]) if rows else b""

    # --- writing -----------------------------------------------------------------------------

    def insert_key(self, record: NewKeyRecord, expected_master_key_check: bytes) -> None:
        sealed = record.sealed
        with self._database.transaction() as connection:
            if connection.execute("SELECT 1 FROM keys WHERE name = ?", (record.name,)).fetchone():
                raise KeyExists(f"a key named {record.name!r} already exists")
            (check,) = connection.execute(
                "SELECT value FROM meta WHERE name = 'master_key_check'"
            ).fetchone()
            if bytes(check) != expected_master_key_check:
                raise RecordsChanged(f"the master key of {self.path} changed; seal again")
            connection.execute(
                f"INSERT INTO keys (name, public_point, enabled, created_at, generation, kind, "  # noqa: S608
                f"{_SEALED_COLUMNS}) VALUES (?, ?, 1, ?, 1, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.name,
                    record.public_point,
                    record.created_at,
                    record.kind,
                    sealed.record_id,
                    sealed.kdf.as_record(),
                    sealed.token_salt,
                    sealed.token_share,
                    sealed.master_share,
                    sealed.private_key,
                ),
            )

    def set_enabled(self, name: str, enabled: bool) -> bool:
        with self._database.transaction() as connection:
            changed = connection.execute(
                "UPDATE keys SET enabled = ?, generation = generation + 1 WHERE name = ?",
                (int(enabled), name),
            ).rowcount
        return bool(changed)

    def delete_key(self, name: str) -> bool:
        with self._database.transaction() as connection:
            deleted = connection.execute("DELETE FROM keys WHERE name = ?", (name,)).rowcount
        return bool(deleted)

    def replace_token_seal(self, name: str, generation: int, resealed: crypto.SealedKey) -> bool:
        with self._database.transaction() as connection:
            changed = connection.execute(
                "UPDATE keys SET kdf = ?, token_salt = ?, token_share = ?, "
                "generation = generation + 1 WHERE name = ? AND generation = ?",
                (
                    resealed.kdf.as_record(),
                    resealed.token_salt,
                    resealed.token_share,
                    name,
                    generation,
                ),
            ).rowcount
        return bool(changed)

    def record_use(self, name: str, used_at: str, not_since: str) -> None:
        with self._database.transaction() as connection:
            connection.execute(
                "UPDATE keys SET last_used_at = ? WHERE name = ? "
                "AND (last_used_at IS NULL OR last_used_at < ?)",
                (used_at, name, not_since),
            )

    def server_secret(self, purpose: str, candidate: bytes) -> bytes:
        meta_name = _SERVER_SECRET_PREFIX + purpose
        with self._database.transaction() as connection:
            connection.execute(
                "INSERT OR IGNORE INTO meta (name, value) VALUES (?, ?)", (meta_name, candidate)
            )
            (sealed,) = connection.execute(
                "SELECT value FROM meta WHERE name = ?", (meta_name,)
            ).fetchone()
        return bytes(sealed)

    def replace_server_secret(self, purpose: str, sealed: bytes) -> None:
        """Store ``sealed`` for ``purpose``, replacing any (a restore keeps the home's audit key)."""
        with self._database.transaction() as connection:
            connection.execute(
                "INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)",
                (_SERVER_SECRET_PREFIX + purpose, sealed),
            )

    def master_seals(self) -> MasterSeals:
        with self._database.transaction() as connection:
            return _read_master_seals(connection)

    def replace_master_seals(self, read: MasterSeals, resealed: MasterSeals) -> None:
        with self._database.transaction() as connection:
            if not _same_records(_read_master_seals(connection), read):
                raise RecordsChanged(f"the keystore {self.path} changed during the re-seal")
            for name, sealed in resealed.keys.items():
                connection.execute(
                    "UPDATE keys SET master_share = ? WHERE name = ?", (sealed.master_share, name)
                )
            for purpose, sealed_secret in resealed.server_secrets.items():
                connection.execute(
                    "UPDATE meta SET value = ? WHERE name = ?",
                    (sealed_secret, _SERVER_SECRET_PREFIX + purpose),
                )
            connection.execute(
                "UPDATE meta SET value = ? WHERE name = 'master_key_check'",
                (resealed.master_key_check,),
            )

    # --- SQLite only: backup -----------------------------------------------------------------

    def copy_to(self, destination: Path) -> None:
        """Copy a consistent snapshot (still sealed) into the database file ``destination``.

        SQLite's online backup API: readers and writers may go on meanwhile. The copy leaves WAL
        mode, so it is one self-contained file.
        """
        try:
            with closing(sqlite3.connect(destination)) as target:
                self._database.connection().backup(target)
                target.execute("PRAGMA journal_mode=DELETE")
        except sqlite3.Error as exc:
            raise translate(exc, destination) from None
