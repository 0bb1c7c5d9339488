"""The SQLite keystore: sealed key records in one file, every change one transaction.

DESIGN §3. WAL mode lets several gunicorn workers read while the CLI writes. Each thread gets
its own connection. The file is created 0600 in a 0700 directory before SQLite touches it, and
the master key is checked against a stored seal on open, so a wrong master key is refused
before any request is served.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from foundation.argon2id import Argon2Parameters
from keystore import crypto
from keystore.errors import (
    KeyDisabled,
    KeyExists,
    KeyNotFound,
    KeystoreCorrupt,
    KeystoreError,
    KeystoreExists,
    KeystoreUnavailable,
    MasterKeyMismatch,
    MasterShareMismatch,
    StorageFull,
)
from keystore.validation import require_key_name, require_token

SCHEMA_VERSION = 1
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
    private_key   BLOB NOT NULL
);
"""
_SEALED_COLUMNS = "record_id, kdf, token_salt, token_share, master_share, private_key"
_INFO_COLUMNS = "name, public_point, enabled, created_at, last_used_at, generation"


@dataclass(frozen=True)
class KeyInfo:
    """What anyone on the host may know about a key: no secret, no private material."""

    name: str
    public_point: bytes
    enabled: bool
    created_at: str
    last_used_at: str | None
    generation: int


@dataclass(frozen=True)
class KeyStatus:
    """What a request checks on every call: is the key enabled, has its record changed."""

    enabled: bool
    generation: int
    record_id: bytes

    @property
    def version(self) -> str:
        """Changes with every change of the record, and differs for a re-created name."""
        return f"{self.record_id.hex()}:{self.generation}"


@dataclass(frozen=True)
class UnlockedKey:
    """A private key recovered with its token, and the record version it came from."""

    name: str
    private_key: ec.EllipticCurvePrivateKey
    generation: int
    version: str

    def __repr__(self) -> str:
        return f"UnlockedKey(name={self.name!r}, version={self.version})"


@dataclass(frozen=True)
class _SealedRecord:
    sealed: crypto.SealedKey
    status: KeyStatus
    public_point: bytes


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _uncompressed_point(private_key: ec.EllipticCurvePrivateKey) -> bytes:
    numbers = private_key.public_key().public_numbers()
    return b"\x04" + numbers.x.to_bytes(66, "big") + numbers.y.to_bytes(66, "big")


def _translate(exc: sqlite3.Error, path: Path) -> KeystoreError:
    """Map SQLite's failure to the condition a caller can act on."""
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and "full" in text:
        return StorageFull(f"the keystore {path} is full (disk or size limit); nothing was changed")
    if isinstance(exc, sqlite3.DatabaseError) and (
        "malformed" in text or "not a database" in text or "no such table" in text
    ):
        return KeystoreCorrupt(f"the keystore {path} is damaged or truncated: {text}")
    return KeystoreUnavailable(f"the keystore {path} cannot be used: {text}")


class KeyStore:
    """Sealed P-521 keys by name; open an existing store with :meth:`open`, a new one with :meth:`create`."""

    def __init__(
        self,
        path: Path,
        master_key: crypto.MasterKey,
        argon2: crypto.Argon2Runner,
        reload_master_key: Callable[[], crypto.MasterKey] | None = None,
    ) -> None:
        self.path = path
        self._master_key = master_key
        self._argon2 = argon2
        self._reload_master_key = reload_master_key
        self._local = threading.local()

    # --- opening -----------------------------------------------------------------------------

    @classmethod
    def create(
        cls, path: Path, master_key: crypto.MasterKey, argon2: crypto.Argon2Runner
    ) -> KeyStore:
        """Create an empty keystore file (0600, parent directory 0700) bound to ``master_key``."""
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            raise KeystoreExists(f"a keystore already exists at {path}") from None
        store = cls(path, master_key, argon2)
        with store._transaction() as connection:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    connection.execute(statement)
            connection.execute(
                "INSERT INTO meta (name, value) VALUES ('schema_version', ?), "
                "('master_key_check', ?), ('created_at', ?)",
                (str(SCHEMA_VERSION), crypto.master_key_check(master_key), _now()),
            )
        return store

    @classmethod
    def open(
        cls,
        path: Path,
        master_key: crypto.MasterKey,
        argon2: crypto.Argon2Runner,
        reload_master_key: Callable[[], crypto.MasterKey] | None = None,
    ) -> KeyStore:
        """Open an existing keystore, refusing a damaged file or a master key that is not its own.

        ``reload_master_key`` re-reads the master key file: a long-running process then follows
        a master-key rotation made by another process (see :meth:`_adopt_rotated_master_key`).
        """
        store = cls(path, master_key, argon2, reload_master_key)
        try:
            store.check_ready()
        except KeystoreError:
            store.close()
            raise
        return store

    def check_ready(self) -> None:
        """Raise unless the file is an intact signserv keystore that this master key opens."""
        self._require_sqlite_file()
        try:
            connection = self._connection()
            (integrity,) = connection.execute("PRAGMA quick_check").fetchone()
            if integrity != "ok":
                raise KeystoreCorrupt(f"the keystore {self.path} fails its integrity check")
            meta = dict(connection.execute("SELECT name, value FROM meta").fetchall())
        except sqlite3.Error as exc:
            raise _translate(exc, self.path) from None
        if meta.get("schema_version") != str(SCHEMA_VERSION):
            raise KeystoreCorrupt(
                f"the keystore {self.path} has schema version {meta.get('schema_version')!r}, "
                f"this signserv reads version {SCHEMA_VERSION}"
            )
        check = meta.get("master_key_check", b"")
        if not crypto.matches_master_key_check(
            self._master_key, check
        ) and not self._adopt_rotated_master_key(check):
            raise MasterKeyMismatch(f"the master key does not open the keystore {self.path}")

    def _adopt_rotated_master_key(self, check: bytes | None = None) -> bool:
        """Take the master key file's current key if it opens this keystore; True if taken.

        After `signserv master-key rotate` in another process, the records are sealed under a
        new key that this process does not hold yet; only a key that passes the stored
        master-key check is ever adopted.
        """
        if self._reload_master_key is None:
            return False
        try:
            candidate = self._reload_master_key()
        except KeystoreError:
            return False
        if check is None:
            rows = self._query("SELECT value FROM meta WHERE name = 'master_key_check'")
            check = bytes(rows[0][0]) if rows else b""
        if not crypto.matches_master_key_check(candidate, check):
            return False
        self._master_key = candidate
        return True

    def _require_sqlite_file(self) -> None:
        # Only stat it. Opening and closing the file here would release every POSIX lock this
        # process holds on it through SQLite, so another process could delete the WAL under
        # our live connections (sqlite.org/howtocorrupt.html §2.2). SQLite itself refuses a
        # foreign file ("file is not a database").
        if not self.path.is_file():
            raise KeystoreUnavailable(f"no keystore at {self.path} (run `signserv init` first)")

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None or getattr(self._local, "pid", None) != os.getpid():
            connection = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
            self._local.connection = connection
            self._local.pid = os.getpid()
        return connection

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: all of it lands, or none of it."""
        connection = self._connection()
        try:
            connection.execute("BEGIN IMMEDIATE")
            yield connection
            connection.execute("COMMIT")
        except BaseException as exc:
            # SQLite has already rolled back after some errors (SQLITE_FULL among them).
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise _translate(exc, self.path) from None
            raise

    def _query(self, sql: str, parameters: tuple[object, ...] = ()) -> list[Any]:
        try:
            return self._connection().execute(sql, parameters).fetchall()
        except sqlite3.Error as exc:
            raise _translate(exc, self.path) from None

    def close(self) -> None:
        """Close this thread's connection (others close when their threads end)."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    # --- reading -----------------------------------------------------------------------------

    def list_keys(self) -> list[KeyInfo]:
        """Every key's public information, by name."""
        rows = self._query(f"SELECT {_INFO_COLUMNS} FROM keys ORDER BY name")  # noqa: S608
        return [self._info_from_row(row) for row in rows]

    def count_keys(self) -> int:
        """How many keys are stored."""
        return int(self._query("SELECT COUNT(*) FROM keys")[0][0])

    def info(self, name: str) -> KeyInfo:
        """One key's public information."""
        rows = self._query(
            f"SELECT {_INFO_COLUMNS} FROM keys WHERE name = ?",  # noqa: S608
            (require_key_name(name),),
        )
        if not rows:
            raise KeyNotFound(f"no key named {name!r}")
        return self._info_from_row(rows[0])

    def status(self, name: str) -> KeyStatus | None:
        """Enabled flag and generation of ``name``, or None when there is no such key."""
        rows = self._query(
            "SELECT enabled, generation, record_id FROM keys WHERE name = ?", (name,)
        )
        if not rows:
            return None
        enabled, generation, record_id = rows[0]
        return KeyStatus(
            enabled=bool(enabled), generation=int(generation), record_id=bytes(record_id)
        )

    @staticmethod
    def _info_from_row(row: Any) -> KeyInfo:
        name, point, enabled, created_at, last_used_at, generation = row
        return KeyInfo(
            name=str(name),
            public_point=bytes(point),
            enabled=bool(enabled),
            created_at=str(created_at),
            last_used_at=None if last_used_at is None else str(last_used_at),
            generation=int(generation),
        )

    def _sealed(self, name: str) -> _SealedRecord | None:
        rows = self._query(
            f"SELECT {_SEALED_COLUMNS}, enabled, generation, public_point "  # noqa: S608
            "FROM keys WHERE name = ?",
            (name,),
        )
        if not rows:
            return None
        sealed = self._sealed_key_from_row(rows[0][:6])
        enabled, generation, point = rows[0][6:]
        status = KeyStatus(
            enabled=bool(enabled), generation=int(generation), record_id=sealed.record_id
        )
        return _SealedRecord(sealed=sealed, status=status, public_point=bytes(point))

    @staticmethod
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

    # --- unlocking ---------------------------------------------------------------------------

    def unlock(self, name: str, token: str) -> UnlockedKey:
        """The private key of ``name`` if ``token`` is its token and the key is enabled.

        An unknown name costs the same argon2id run as a wrong token, so timing does not tell
        the two apart. A disabled key is reported only after its token was proven.
        """
        found = self._sealed(name)
        if found is None:
            self._argon2.spend_like_a_lookup(token, self._typical_kdf())
            raise KeyNotFound(f"no key named {name!r}")
        if not found.status.enabled:
            crypto.verify_token(name, found.sealed, token, self._argon2)
            raise KeyDisabled(f"key {name!r} is disabled")
        try:
            private_key = crypto.unseal_private_key(
                name, found.sealed, token, self._master_key, self._argon2
            )
        except MasterShareMismatch:
            if not self._adopt_rotated_master_key():
                raise
            private_key = crypto.unseal_private_key(
                name, found.sealed, token, self._master_key, self._argon2
            )
        if _uncompressed_point(private_key) != found.public_point:
            raise KeystoreCorrupt(
                f"the public key stored for {name!r} does not match its private key"
            )
        return UnlockedKey(
            name=name,
            private_key=private_key,
            generation=found.status.generation,
            version=found.status.version,
        )

    def _typical_kdf(self) -> Argon2Parameters:
        """The argon2id cost most stored keys carry (the configured one when there are none).

        An unknown name must cost what a wrong token costs; after a change of the configured
        cost, stored records keep theirs, so the configured cost alone would tell them apart.
        """
        rows = self._query("SELECT kdf FROM keys GROUP BY kdf ORDER BY COUNT(*) DESC, kdf LIMIT 1")
        if not rows:
            return self._argon2.parameters
        return crypto.parse_kdf_record(str(rows[0][0]))

    # --- writing -----------------------------------------------------------------------------

    def create_key(self, name: str, token: str) -> KeyInfo:
        """Generate a new P-521 key under ``name``, sealed under ``token`` and the master key."""
        return self.add_key(name, ec.generate_private_key(ec.SECP521R1()), token)

    def add_key(self, name: str, private_key: ec.EllipticCurvePrivateKey, token: str) -> KeyInfo:
        """Store an existing P-521 private key under a new ``name``; never replaces a key."""
        require_key_name(name)
        require_token(token)
        if not isinstance(private_key.curve, ec.SECP521R1):
            raise ValueError("only P-521 keys can be stored (the TKE contract is P-521 only)")
        sealed = crypto.seal_private_key(name, private_key, token, self._master_key, self._argon2)
        with self._transaction() as connection:
            if connection.execute("SELECT 1 FROM keys WHERE name = ?", (name,)).fetchone():
                raise KeyExists(f"a key named {name!r} already exists")
            (check,) = connection.execute(
                "SELECT value FROM meta WHERE name = 'master_key_check'"
            ).fetchone()
            if not crypto.matches_master_key_check(self._master_key, check):
                # A master-key rotation committed since this store was opened (a key import can
                # wait minutes at a password prompt): seal under the new key, never the retired one.
                if not self._adopt_rotated_master_key(bytes(check)):
                    raise MasterKeyMismatch(
                        f"the master key does not open the keystore {self.path}"
                    )
                sealed = crypto.seal_private_key(
                    name, private_key, token, self._master_key, self._argon2
                )
            connection.execute(
                f"INSERT INTO keys (name, public_point, enabled, created_at, generation, "  # noqa: S608
                f"{_SEALED_COLUMNS}) VALUES (?, ?, 1, ?, 1, ?, ?, ?, ?, ?, ?)",
                (
                    name,
                    _uncompressed_point(private_key),
                    _now(),
                    sealed.record_id,
                    sealed.kdf.as_record(),
                    sealed.token_salt,
                    sealed.token_share,
                    sealed.master_share,
                    sealed.private_key,
                ),
            )
        return self.info(name)

    def set_enabled(self, name: str, enabled: bool) -> None:
        """Enable or disable a key; a change of state invalidates every worker's cached unlock."""
        with self._transaction() as connection:
            changed = connection.execute(
                "UPDATE keys SET enabled = ?, generation = generation + 1 WHERE name = ?",
                (int(enabled), require_key_name(name)),
            ).rowcount
        if not changed:
            raise KeyNotFound(f"no key named {name!r}")

    def delete_key(self, name: str) -> None:
        """Delete a key for good."""
        with self._transaction() as connection:
            deleted = connection.execute(
                "DELETE FROM keys WHERE name = ?", (require_key_name(name),)
            ).rowcount
        if not deleted:
            raise KeyNotFound(f"no key named {name!r}")

    def rotate_token(self, name: str, old_token: str, new_token: str) -> None:
        """Replace a key's token; proves ``old_token`` first, never touches the master key."""
        require_token(new_token)
        found = self._sealed(require_key_name(name))
        if found is None:
            raise KeyNotFound(f"no key named {name!r}")
        resealed = crypto.reseal_for_new_token(
            name, found.sealed, old_token, new_token, self._argon2
        )
        with self._transaction() as connection:
            changed = connection.execute(
                "UPDATE keys SET kdf = ?, token_salt = ?, token_share = ?, "
                "generation = generation + 1 WHERE name = ? AND generation = ?",
                (
                    resealed.kdf.as_record(),
                    resealed.token_salt,
                    resealed.token_share,
                    name,
                    found.status.generation,
                ),
            ).rowcount
        if not changed:
            raise KeystoreError(f"key {name!r} changed while its token was rotated; try again")

    def record_use(self, name: str, not_since: str) -> None:
        """Stamp ``last_used_at`` now unless it is already newer than ``not_since`` (ISO time)."""
        with self._transaction() as connection:
            connection.execute(
                "UPDATE keys SET last_used_at = ? WHERE name = ? "
                "AND (last_used_at IS NULL OR last_used_at < ?)",
                (_now(), name, not_since),
            )

    # --- server-wide secrets ----------------------------------------------------------------

    def server_secret(self, purpose: str) -> bytes:
        """A random 32-byte secret for ``purpose`` (e.g. the audit MAC key), made on first use.

        Stored sealed under the master key, so it survives restarts and master-key rotation,
        and is shared by every worker.
        """
        meta_name = f"server_secret:{purpose}"
        candidate = crypto.seal_server_secret(self._master_key, purpose, os.urandom(32))
        with self._transaction() as connection:
            connection.execute(
                "INSERT OR IGNORE INTO meta (name, value) VALUES (?, ?)", (meta_name, candidate)
            )
            (sealed,) = connection.execute(
                "SELECT value FROM meta WHERE name = ?", (meta_name,)
            ).fetchone()
        return crypto.open_server_secret(self._master_key, purpose, bytes(sealed))

    # --- maintenance: master-key rotation, backup and restore ------------------------------

    def reseal_master_shares(self, new_master_key: crypto.MasterKey) -> int:
        """Re-seal master shares, server secrets and the master-key check under ``new_master_key``.

        One transaction: after a crash the keystore opens with the old master key or with the
        new one, never with a mix. Generations stay: the private keys themselves do not change,
        so every worker's unlocked keys remain right. Returns the number of keys re-sealed.
        """
        with self._transaction() as connection:
            rows = connection.execute(f"SELECT name, {_SEALED_COLUMNS} FROM keys").fetchall()  # noqa: S608
            for name, *sealed_columns in rows:
                resealed = crypto.reseal_for_new_master_key(
                    name,
                    self._sealed_key_from_row(sealed_columns),
                    self._master_key,
                    new_master_key,
                )
                connection.execute(
                    "UPDATE keys SET master_share = ? WHERE name = ?", (resealed.master_share, name)
                )
            server_secrets = connection.execute(
                "SELECT name, value FROM meta WHERE name LIKE 'server_secret:%'"
            ).fetchall()
            for meta_name, sealed in server_secrets:
                purpose = str(meta_name).removeprefix("server_secret:")
                resealed_secret = crypto.reseal_server_secret(
                    purpose, bytes(sealed), self._master_key, new_master_key
                )
                connection.execute(
                    "UPDATE meta SET value = ? WHERE name = ?", (resealed_secret, meta_name)
                )
            connection.execute(
                "UPDATE meta SET value = ? WHERE name = 'master_key_check'",
                (crypto.master_key_check(new_master_key),),
            )
        self._master_key = new_master_key
        return len(rows)

    def copy_to(self, destination: Path) -> None:
        """Copy a consistent snapshot (still sealed) into the database file ``destination``.

        SQLite's online backup API: readers and writers may go on meanwhile. The copy leaves WAL
        mode, so it is one self-contained file.
        """
        try:
            with closing(sqlite3.connect(destination)) as target:
                self._connection().backup(target)
                target.execute("PRAGMA journal_mode=DELETE")
        except sqlite3.Error as exc:
            raise _translate(exc, destination) from None


def decide_interrupted_commit(path: Path) -> None:
    """Commit one small write to the keystore at ``path`` so that a commit cut short is decided.

    A writer killed after appending its commit to the write-ahead log, but before publishing
    it in the shared WAL index, leaves a transaction that connections still open do not see,
    while a later recovery (the next first connection) would bring it back. The next write
    settles it for good, one way or the other; decisions that depend on which transaction
    won must be taken after it.
    """
    try:
        with closing(
            sqlite3.connect(
                f"{path.resolve().as_uri()}?mode=rw", uri=True, isolation_level=None, timeout=10.0
            )
        ) as connection:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute(
                "INSERT OR REPLACE INTO meta (name, value) VALUES ('last_settled_at', ?)", (_now(),)
            )
            connection.execute("COMMIT")
    except sqlite3.Error as exc:
        raise _translate(exc, path) from None
