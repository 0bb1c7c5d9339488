"""The key-record store written once in SQL, for every SQL backend (SQLite, PostgreSQL).

:class:`SqlKeyRecords` implements :class:`keystore.records.KeyRecordStore` over a
:class:`SqlDatabase`: statements use ``?`` placeholders and SQL both dialects read; a backend's
database object translates placeholders if its driver needs to, and says how a transaction locks
the master-key check row (PostgreSQL row locks; SQLite locks the whole file on write). Backends
subclass it only for what really differs: creating the storage and checking that it is ready.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from foundation.argon2id import Argon2Parameters
from keystore import crypto
from keystore.errors import KeyExists, KeystoreExists, RecordsChanged
from keystore.record_rows import (
    INFO_COLUMN_COUNT,
    INFO_COLUMNS,
    SEALED_COLUMNS,
    SERVER_SECRET_PREFIX,
    STATUS_COLUMNS,
    info_from_row,
    key_row,
    master_seals_from_rows,
    same_records,
    sealed_key_from_row,
    sealed_record_from_row,
    status_from_row,
)
from keystore.records import (
    KeyInfo,
    KeyStatus,
    KeystoreSnapshot,
    MasterSeals,
    NewKeyRecord,
    SealedRecord,
    StoredKey,
)


class SqlCursor(Protocol):
    """What a statement returns (DB-API)."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class SqlStatements(Protocol):
    """A connection inside a transaction, taking ``?`` placeholders."""

    def execute(self, sql: str, parameters: Sequence[object] = (), /) -> SqlCursor: ...

    def executemany(self, sql: str, rows: Sequence[Sequence[object]], /) -> object: ...


class SqlDatabase(Protocol):
    """One database: transactions, reads, and the row-lock clauses its dialect needs."""

    location: str
    shared_row_lock: str
    exclusive_row_lock: str

    def transaction(self) -> AbstractContextManager[SqlStatements]: ...

    def query(self, sql: str, parameters: tuple[object, ...] = ()) -> list[Any]: ...

    def close(self) -> None: ...


_INSERT_KEY = (
    f"INSERT INTO keys ({INFO_COLUMNS}, {SEALED_COLUMNS}) "  # noqa: S608
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING"
)
_SERVER_SECRETS = "name LIKE 'server_secret:%'"


def _stored_check(connection: SqlStatements, lock: str = "") -> bytes:
    row = connection.execute(
        "SELECT value FROM meta WHERE name = 'master_key_check'" + lock  # noqa: S608
    ).fetchone()
    return bytes(row[0]) if row else b""


def _server_secret_rows(connection: SqlStatements) -> list[Any]:
    return connection.execute(f"SELECT name, value FROM meta WHERE {_SERVER_SECRETS}").fetchall()  # noqa: S608


class SqlKeyRecords:
    """:class:`keystore.records.KeyRecordStore` over any :class:`SqlDatabase`.

    A re-seal locks the master-key check row exclusively and an insert shares it, so no record
    sealed under a master key that a concurrent re-seal retires ever lands.
    """

    def __init__(self, database: SqlDatabase) -> None:
        self._database = database
        self.location = database.location

    def close(self) -> None:
        self._database.close()

    # --- reading -----------------------------------------------------------------------------

    def list_keys(self) -> list[KeyInfo]:
        rows = self._database.query(f"SELECT {INFO_COLUMNS} FROM keys ORDER BY name")  # noqa: S608
        return [info_from_row(row) for row in rows]

    def count_keys(self) -> int:
        return int(self._database.query("SELECT count(*) FROM keys")[0][0])

    def info(self, name: str) -> KeyInfo | None:
        rows = self._database.query(
            f"SELECT {INFO_COLUMNS} FROM keys WHERE name = ?",  # noqa: S608
            (name,),
        )
        return info_from_row(rows[0]) if rows else None

    def status(self, name: str) -> KeyStatus | None:
        rows = self._database.query(
            f"SELECT {STATUS_COLUMNS} FROM keys WHERE name = ?",  # noqa: S608
            (name,),
        )
        return status_from_row(rows[0]) if rows else None

    def sealed(self, name: str) -> SealedRecord | None:
        rows = self._database.query(
            f"SELECT {SEALED_COLUMNS}, enabled, generation, public_point, kind "  # noqa: S608
            "FROM keys WHERE name = ?",
            (name,),
        )
        return sealed_record_from_row(rows[0]) if rows else None

    def kdf_costs(self) -> set[Argon2Parameters]:
        rows = self._database.query("SELECT DISTINCT kdf FROM keys")
        return {crypto.parse_kdf_record(str(row[0])) for row in rows}

    def master_key_check(self) -> bytes:
        rows = self._database.query("SELECT value FROM meta WHERE name = 'master_key_check'")
        return bytes(rows[0][0]) if rows else b""

    # --- writing -----------------------------------------------------------------------------

    def insert_key(self, record: NewKeyRecord, expected_master_key_check: bytes) -> None:
        info = KeyInfo(
            record.name, record.public_point, True, record.created_at, None, 1, record.kind
        )
        with self._database.transaction() as connection:
            check = _stored_check(connection, self._database.shared_row_lock)
            if check != expected_master_key_check:
                raise RecordsChanged(f"the master key of {self.location} changed; seal again")
            inserted = connection.execute(_INSERT_KEY, key_row(StoredKey(info, record.sealed)))
            if inserted.rowcount != 1:
                raise KeyExists(f"a key named {record.name!r} already exists")

    def set_enabled(self, name: str, enabled: bool) -> bool:
        with self._database.transaction() as connection:
            changed = connection.execute(
                "UPDATE keys SET enabled = ?, generation = generation + 1 WHERE name = ?",
                (enabled, name),
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

    def replace_policy(
        self,
        name: str,
        generation: int,
        resealed: crypto.SealedKey,
        expected_master_key_check: bytes,
    ) -> bool:
        with self._database.transaction() as connection:
            check = _stored_check(connection, self._database.shared_row_lock)
            if check != expected_master_key_check:
                raise RecordsChanged(f"the master key of {self.location} changed; seal again")
            changed = connection.execute(
                "UPDATE keys SET master_share = ?, policy = ?, generation = generation + 1 "
                "WHERE name = ? AND generation = ? AND record_id = ?",
                (resealed.master_share, resealed.policy, name, generation, resealed.record_id),
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
        meta_name = SERVER_SECRET_PREFIX + purpose
        with self._database.transaction() as connection:
            connection.execute(
                "INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
                (meta_name, candidate),
            )
            (sealed,) = connection.execute(
                "SELECT value FROM meta WHERE name = ?", (meta_name,)
            ).fetchone()
        return bytes(sealed)

    def replace_server_secret(self, purpose: str, sealed: bytes) -> None:
        """Store ``sealed`` for ``purpose``, replacing any (a restore keeps the home's audit key)."""
        with self._database.transaction() as connection:
            connection.execute(
                "INSERT INTO meta (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (SERVER_SECRET_PREFIX + purpose, sealed),
            )

    def _read_master_seals(self, connection: SqlStatements) -> MasterSeals:
        check = _stored_check(connection, self._database.exclusive_row_lock)
        keys = connection.execute(f"SELECT name, {SEALED_COLUMNS} FROM keys").fetchall()  # noqa: S608
        return master_seals_from_rows(check, keys, _server_secret_rows(connection))

    def master_seals(self) -> MasterSeals:
        with self._database.transaction() as connection:
            return self._read_master_seals(connection)

    def replace_master_seals(self, read: MasterSeals, resealed: MasterSeals) -> None:
        with self._database.transaction() as connection:
            if not same_records(self._read_master_seals(connection), read):
                raise RecordsChanged(f"the keystore {self.location} changed during the re-seal")
            connection.executemany(
                "UPDATE keys SET master_share = ? WHERE name = ?",
                [(sealed.master_share, name) for name, sealed in resealed.keys.items()],
            )
            connection.executemany(
                "UPDATE meta SET value = ? WHERE name = ?",
                [
                    (sealed_secret, SERVER_SECRET_PREFIX + purpose)
                    for purpose, sealed_secret in resealed.server_secrets.items()
                ],
            )
            connection.execute(
                "UPDATE meta SET value = ? WHERE name = 'master_key_check'",
                (resealed.master_key_check,),
            )

    # --- moving between backends -------------------------------------------------------------

    def snapshot(self) -> KeystoreSnapshot:
        with self._database.transaction() as connection:
            check = _stored_check(connection, self._database.exclusive_row_lock)
            rows = connection.execute(
                f"SELECT {INFO_COLUMNS}, {SEALED_COLUMNS} FROM keys ORDER BY name"  # noqa: S608
            ).fetchall()
            secrets = master_seals_from_rows(check, [], _server_secret_rows(connection))
        keys = tuple(
            StoredKey(
                info_from_row(row[:INFO_COLUMN_COUNT]), sealed_key_from_row(row[INFO_COLUMN_COUNT:])
            )
            for row in rows
        )
        return KeystoreSnapshot(check, keys, secrets.server_secrets)

    def load_snapshot(self, snapshot: KeystoreSnapshot, *, replace: bool) -> None:
        with self._database.transaction() as connection:
            _stored_check(connection, self._database.exclusive_row_lock)
            (present,) = connection.execute("SELECT count(*) FROM keys").fetchone()
            if present and not replace:
                raise KeystoreExists(f"the keystore {self.location} already holds keys")
            connection.execute("DELETE FROM keys")
            connection.execute(f"DELETE FROM meta WHERE {_SERVER_SECRETS}")  # noqa: S608
            connection.executemany(_INSERT_KEY, [key_row(stored) for stored in snapshot.keys])
            connection.executemany(
                "INSERT INTO meta (name, value) VALUES (?, ?)",
                [
                    (SERVER_SECRET_PREFIX + purpose, sealed)
                    for purpose, sealed in snapshot.server_secrets.items()
                ],
            )
            connection.execute(
                "UPDATE meta SET value = ? WHERE name = 'master_key_check'",
                (snapshot.master_key_check,),
            )
