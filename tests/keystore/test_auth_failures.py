"""Failure counters shared through the keystore database: attempts reserved atomically."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from keystore import AttemptRules, FailureCounterStore, KeyStore, LockSchedule
from keystore.sqlite import SqliteDatabase, SqliteFailureCounters

RULES = AttemptRules(
    pair=LockSchedule(threshold=3, max_seconds=8),
    key=LockSchedule(threshold=5, max_seconds=2),
    window_seconds=1000.0,
)


@pytest.fixture
def counters(store: KeyStore, store_path: Path) -> FailureCounterStore:
    return SqliteFailureCounters(SqliteDatabase(store_path))


def test_attempts_count_per_pair_and_per_key(counters: FailureCounterStore) -> None:
    counters.reserve_attempt("k", "10.0.0.1", 100.0, RULES)
    counters.reserve_attempt("k", "10.0.0.1", 101.0, RULES)
    assert counters.reserve_attempt("k", "10.0.0.2", 102.0, RULES).granted
    state = counters.state("k", "10.0.0.1")
    assert state.pair is not None and state.pair.failures == 2
    assert state.key is not None and state.key.failures == 3


def test_unknown_names_are_counted_like_known_ones(counters: FailureCounterStore) -> None:
    """Lockout must not reveal which names exist."""
    counters.reserve_attempt("no-such-key", "10.0.0.1", 1.0, RULES)
    assert counters.state("no-such-key", "10.0.0.1").pair.failures == 1


def test_a_locked_pair_is_refused_without_counting(counters: FailureCounterStore) -> None:
    for second in range(3):
        assert counters.reserve_attempt("k", "a", 50.0 + second, RULES).granted
    refused = counters.reserve_attempt("k", "a", 52.5, RULES)
    assert not refused.granted and refused.locked_until == 53.0
    assert counters.state("k", "a").pair.failures == 3
    assert counters.reserve_attempt("k", "a", 53.0, RULES).granted


def test_failures_older_than_the_window_are_forgotten(counters: FailureCounterStore) -> None:
    """An old typo neither locks nor lets the key-wide lock reach the owner (issue 17)."""
    for _ in range(3):
        counters.reserve_attempt("k", "owner", 10.0, RULES)
    for index in range(5):
        counters.reserve_attempt("k", f"attacker-{index}", 1500.0, RULES)
    assert counters.reserve_attempt("k", "owner", 1500.5, RULES).granted
    assert counters.state("k", "owner").pair.failures == 1, "the old count restarted"
    assert counters.forget_older_than(1400.0) == 0
    assert counters.forget_older_than(6000.0) == 7


def test_release_clears_the_pair_and_takes_the_attempt_back_from_the_key(
    counters: FailureCounterStore,
) -> None:
    counters.reserve_attempt("k", "a", 1.0, RULES)
    counters.reserve_attempt("k", "b", 1.0, RULES)
    counters.release_attempt("k", "a")
    state = counters.state("k", "a")
    assert state.pair is None and state.key.failures == 1


def test_counters_are_shared_between_connections(counters, store_path) -> None:
    """Two workers (two connections) see the same counts."""
    counters.reserve_attempt("k", "a", 1.0, RULES)
    other = SqliteFailureCounters(SqliteDatabase(store_path))
    assert other.state("k", "a").pair.failures == 1


def test_64_concurrent_reservations_grant_exactly_the_threshold(counters, store_path) -> None:
    """Hostile: 64 threads with their own connections race; the check and the count are one."""

    def reserve(_: int) -> bool:
        own = SqliteFailureCounters(SqliteDatabase(store_path))
        return own.reserve_attempt("k", "a", 100.0, RULES).granted

    with ThreadPoolExecutor(max_workers=64) as pool:
        granted = list(pool.map(reserve, range(64)))
    assert granted.count(True) == RULES.pair.threshold


def test_counts_written_by_the_previous_release_are_read(store_path, counters) -> None:
    """Rows that carry a lock time computed before the split still count (same schema)."""
    database = SqliteDatabase(store_path)
    with database.transaction() as connection:
        connection.execute("INSERT INTO auth_failures VALUES ('k', 'a', 4, 99.0, 90.0)")
    assert counters.state("k", "a").pair.failures == 4
    assert counters.state("k", "a").pair.last_failure == 90.0
