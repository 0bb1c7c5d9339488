"""Failure counters shared through the keystore database: they count, and decide nothing."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from keystore import FailureCounterStore, KeyStore
from keystore.sqlite import SqliteDatabase, SqliteFailureCounters

from .conftest import Backend


@pytest.fixture
def counters(backend: Backend, master_key, argon2) -> FailureCounterStore:
    """Each backend's counters in turn."""
    return backend.counters(backend.create(master_key, argon2))


@pytest.fixture
def sqlite_counters(store: KeyStore, store_path: Path) -> FailureCounterStore:
    return SqliteFailureCounters(SqliteDatabase(store_path))


def test_failures_count_per_pair_and_per_key(counters: FailureCounterStore) -> None:
    counters.record_failure("k", "10.0.0.1", 100.0, forget_before=0.0)
    counters.record_failure("k", "10.0.0.1", 101.0, forget_before=0.0)
    state = counters.record_failure("k", "10.0.0.2", 102.0, forget_before=0.0)
    assert state.pair is not None and state.pair.failures == 1
    assert state.key is not None and state.key.failures == 3
    assert counters.state("k", "10.0.0.1").pair.failures == 2


def test_unknown_names_are_counted_like_known_ones(counters: FailureCounterStore) -> None:
    """Lockout must not reveal which names exist."""
    state = counters.record_failure("no-such-key", "10.0.0.1", 1.0, forget_before=0.0)
    assert state.pair.failures == 1


def test_counts_remember_when_the_last_failure_was(counters: FailureCounterStore) -> None:
    """The policy derives lock times from the count and this time; the store stores no policy."""
    counters.record_failure("k", "a", 50.0, forget_before=0.0)
    counters.record_failure("k", "b", 57.0, forget_before=0.0)
    state = counters.state("k", "a")
    assert state.pair.last_failure == 50.0 and state.key.last_failure == 57.0


def test_old_failures_are_forgotten(counters: FailureCounterStore) -> None:
    counters.record_failure("k", "a", 10.0, forget_before=0.0)
    state = counters.record_failure("k", "a", 5000.0, forget_before=1400.0)
    assert state.pair.failures == 1
    assert counters.forget_older_than(6000.0) == 2
    assert counters.state("k", "a").pair is None


def test_success_clears_only_the_pair(counters: FailureCounterStore) -> None:
    counters.record_failure("k", "a", 1.0, forget_before=0.0)
    counters.clear_pair("k", "a")
    state = counters.state("k", "a")
    assert state.pair is None and state.key.failures == 1


def test_counters_are_shared_between_connections(backend: Backend, master_key, argon2) -> None:
    """Two workers (two connections) see the same counts."""
    store = backend.create(master_key, argon2)
    backend.counters(store).record_failure("k", "a", 1.0, forget_before=0.0)
    other = backend.counters(backend.open(master_key, argon2))
    assert other.state("k", "a").pair.failures == 1


def test_concurrent_failures_from_many_connections_are_all_counted(
    backend: Backend, master_key, argon2
) -> None:
    """No lost increments: 4 threads, each its own connection, count 10 failures each."""
    backend.create(master_key, argon2).close()

    def fail_ten(address: str) -> None:
        own = backend.counters(backend.open(master_key, argon2))
        for second in range(10):
            own.record_failure("k", address, 1000.0 + second, forget_before=0.0)

    threads = [threading.Thread(target=fail_ten, args=(f"10.0.0.{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    state = backend.counters(backend.open(master_key, argon2)).state("k", "10.0.0.1")
    assert state.key.failures == 40 and state.pair.failures == 10


def test_counts_written_by_the_previous_release_are_read(store_path, sqlite_counters) -> None:
    """Rows that carry a lock time computed before the split still count (same schema)."""
    database = SqliteDatabase(store_path)
    with database.transaction() as connection:
        connection.execute("INSERT INTO auth_failures VALUES ('k', 'a', 4, 99.0, 90.0)")
    assert sqlite_counters.state("k", "a").pair.failures == 4
    assert sqlite_counters.state("k", "a").pair.last_failure == 90.0
