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
from keystore.postgres import (
    PostgresDatabase,
    PostgresFailureCounters,
    create_postgres_keystore,
    open_postgres_keystore,
)
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
