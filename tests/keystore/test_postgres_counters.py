"""PostgreSQL failure counters under concurrency: reservations and releases from two connections."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from keystore import AttemptRules, LockSchedule
from keystore.postgres import PostgresDatabase, PostgresFailureCounters, PostgresKeyRecords

# Thresholds no test reaches: every reservation is granted, so only the counts are compared.
GENEROUS = AttemptRules(
    pair=LockSchedule(threshold=10_000, max_seconds=1),
    key=LockSchedule(threshold=10_000, max_seconds=1),
    window_seconds=1000.0,
)
ROUNDS = 320


def test_releases_racing_reservations_over_two_connections_lose_no_decrement(
    postgres_database,
) -> None:
    """Hostile: each round is a proven token (reserve, then release) from its own address,
    half of them through each of two connections' pools; the key-wide count must end at zero.

    A release that did not wait for the reservation's lock would have its decrement overwritten
    by a reservation that read the count before it and wrote it back plus one.
    """
    password = postgres_database.password_file.read_text().strip()
    first, second = (PostgresDatabase(postgres_database.url, password) for _ in range(2))
    try:
        PostgresKeyRecords.create(first, b"check")
        counters = [PostgresFailureCounters(first), PostgresFailureCounters(second)]

        def proven_token(round_number: int) -> None:
            own = counters[round_number % 2]
            address = f"10.0.{round_number // 250}.{round_number % 250}"
            assert own.reserve_attempt("k", address, 100.0, GENEROUS).granted
            own.release_attempt("k", address)

        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(proven_token, range(ROUNDS)))
        state = counters[0].state("k", "10.0.0.1")
        assert state.pair is None
        assert state.key is not None and state.key.failures == 0, state.key
    finally:
        first.close()
        second.close()
