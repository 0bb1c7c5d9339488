"""Failure counters shared through the keystore database."""

from __future__ import annotations

from keystore import KeyStore
from keystore.auth_failures import AuthFailureStore


def no_lock(failures: int, key_wide: bool) -> float:
    return 0.0


def test_failures_count_per_pair_and_per_key(store: KeyStore) -> None:
    counters = AuthFailureStore(store)
    counters.record_failure("k", "10.0.0.1", 100.0, no_lock, forget_before=0.0)
    counters.record_failure("k", "10.0.0.1", 101.0, no_lock, forget_before=0.0)
    state = counters.record_failure("k", "10.0.0.2", 102.0, no_lock, forget_before=0.0)
    assert state.pair is not None and state.pair.failures == 1
    assert state.key is not None and state.key.failures == 3
    assert counters.state("k", "10.0.0.1").pair.failures == 2


def test_unknown_names_are_counted_like_known_ones(store: KeyStore) -> None:
    """Lockout must not reveal which names exist."""
    counters = AuthFailureStore(store)
    state = counters.record_failure("no-such-key", "10.0.0.1", 1.0, no_lock, forget_before=0.0)
    assert state.pair.failures == 1


def test_lock_time_is_stored_from_the_policy(store: KeyStore) -> None:
    counters = AuthFailureStore(store)
    state = counters.record_failure(
        "k", "a", 50.0, lambda failures, key_wide: 7.0 if not key_wide else 0.0, forget_before=0.0
    )
    assert state.pair.locked_until == 57.0 and state.key.locked_until == 50.0


def test_old_failures_are_forgotten(store: KeyStore) -> None:
    counters = AuthFailureStore(store)
    counters.record_failure("k", "a", 10.0, no_lock, forget_before=0.0)
    state = counters.record_failure("k", "a", 5000.0, no_lock, forget_before=1400.0)
    assert state.pair.failures == 1
    assert counters.forget_older_than(6000.0) == 2
    assert counters.state("k", "a").pair is None


def test_success_clears_only_the_pair(store: KeyStore) -> None:
    counters = AuthFailureStore(store)
    counters.record_failure("k", "a", 1.0, no_lock, forget_before=0.0)
    counters.clear_pair("k", "a")
    state = counters.state("k", "a")
    assert state.pair is None and state.key.failures == 1


def test_counters_are_shared_between_connections(store, store_path, master_key, argon2) -> None:
    """Two workers (two connections) see the same counts."""
    AuthFailureStore(store).record_failure("k", "a", 1.0, no_lock, forget_before=0.0)
    other = KeyStore.open(store_path, master_key, argon2)
    assert AuthFailureStore(other).state("k", "a").pair.failures == 1
