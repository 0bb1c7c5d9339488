"""Keystore fixtures: a fresh store with a test-cost argon2id and a spy on argon2id runs.

``store`` is the SQLite store (for tests of the file itself); ``backend`` and ``any_store`` run
a test once per storage backend, SQLite and a real PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from keystore import Argon2Parameters, Argon2Runner, FailureCounterStore, KeyStore, MasterKey
from keystore.file_audit_chain import FileAuditChain
from keystore.postgres import (
    PostgresAuditChain,
    PostgresDatabase,
    PostgresFailureCounters,
    PostgresKeyRecords,
    create_postgres_keystore,
    open_postgres_keystore,
)
from keystore.records import AuditChainStore
from keystore.sqlite import (
    SqliteDatabase,
    SqliteFailureCounters,
    create_sqlite_keystore,
    open_sqlite_keystore,
)

FAST_ARGON2 = Argon2Parameters(time_cost=1, memory_cost_kib=8192, parallelism=1)
TOKEN = "token-for-tests-0123456789"
OTHER_TOKEN = "another-token-9876543210"


class CountingArgon2(Argon2Runner):
    """A real argon2id runner that also counts its runs."""

    def __init__(self) -> None:
        super().__init__(FAST_ARGON2, max_concurrent=2)
        self.runs = 0

    def derive(self, token: str, salt: bytes, parameters: Argon2Parameters) -> bytes:
        self.runs += 1
        return super().derive(token, salt, parameters)


@pytest.fixture
def argon2() -> CountingArgon2:
    return CountingArgon2()


@pytest.fixture
def master_key() -> MasterKey:
    return MasterKey.generate()


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "home" / "keystore.db"


@pytest.fixture
def store(store_path: Path, master_key: MasterKey, argon2: CountingArgon2) -> KeyStore:
    return create_sqlite_keystore(store_path, master_key, argon2)


@dataclass(frozen=True)
class Backend:
    """One storage backend's keystore, opened as often as a test needs (each open: a new process's view)."""

    name: str
    create: Callable[[MasterKey, Argon2Runner], KeyStore]
    open: Callable[[MasterKey, Argon2Runner], KeyStore]
    counters: Callable[[KeyStore], FailureCounterStore]


def _sqlite_backend(path: Path) -> Backend:
    return Backend(
        "sqlite",
        create=lambda key, argon2: create_sqlite_keystore(path, key, argon2),
        open=lambda key, argon2: open_sqlite_keystore(path, key, argon2),
        counters=lambda _store: SqliteFailureCounters(SqliteDatabase(path)),
    )


def _postgres_backend(request: pytest.FixtureRequest) -> Backend:
    database = request.getfixturevalue("postgres_database")
    password = database.password_file.read_text().strip()
    opened: list[PostgresDatabase] = []

    def connect() -> PostgresDatabase:
        opened.append(PostgresDatabase(database.url, password))
        return opened[-1]

    request.addfinalizer(lambda: [each.close() for each in opened])
    return Backend(
        "postgres",
        create=lambda key, argon2: create_postgres_keystore(connect(), key, argon2),
        open=lambda key, argon2: open_postgres_keystore(connect(), key, argon2),
        counters=lambda _store: PostgresFailureCounters(connect()),
    )


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, store_path: Path) -> Backend:
    """Each storage backend in turn."""
    if request.param == "sqlite":
        return _sqlite_backend(store_path)
    return _postgres_backend(request)


@pytest.fixture
def any_store(backend: Backend, master_key: MasterKey, argon2: CountingArgon2) -> KeyStore:
    """A new, empty keystore in each backend in turn."""
    return backend.create(master_key, argon2)


MAC_KEY = b"m" * 32


@dataclass
class StoredChain:
    """A chain, a way to overwrite its stored records behind its back, and a fresh writer on
    them (as a restarted service would open)."""

    chain: AuditChainStore
    overwrite: Callable[[list[bytes]], None]
    reopen: Callable[[], AuditChainStore]


def _file_chain(tmp_path: Path) -> StoredChain:
    path = tmp_path / "audit.log"
    return StoredChain(
        FileAuditChain(path, MAC_KEY, fsync=False),
        lambda records: path.write_bytes(b"".join(record + b"\n" for record in records)),
        lambda: FileAuditChain(path, MAC_KEY, fsync=False),
    )


def _postgres_chain(request: pytest.FixtureRequest) -> StoredChain:
    url = request.getfixturevalue("postgres_database")
    database = PostgresDatabase(url.url, url.password_file.read_text().strip())
    request.addfinalizer(database.close)
    PostgresKeyRecords.create(database, b"check")

    def overwrite(records: list[bytes]) -> None:
        with database.transaction() as statements:
            statements.execute("DELETE FROM audit_records")
            statements.executemany(
                "INSERT INTO audit_records (seq, record) VALUES (?, ?)",
                [(position, record) for position, record in enumerate(records, start=1)],
            )

    return StoredChain(
        PostgresAuditChain(database, MAC_KEY),
        overwrite,
        lambda: PostgresAuditChain(database, MAC_KEY),
    )


@pytest.fixture(params=["file", "postgres"])
def stored(request: pytest.FixtureRequest, tmp_path: Path) -> StoredChain:
    """Five records in each chain backend in turn."""
    chain = _file_chain(tmp_path) if request.param == "file" else _postgres_chain(request)
    for number in range(5):
        chain.chain.append({"what": f"event {number}"})
    return chain
