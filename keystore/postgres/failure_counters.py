"""Failed-authentication counters in PostgreSQL, shared by every replica (DESIGN §5).

A reservation is one transaction under a transaction-scoped advisory lock on the key name: the
lock check and the count cannot interleave between workers or replicas, so guesses spread over
replicas meet the same thresholds as against one process, and no increment is lost.
"""

from __future__ import annotations

from typing import Any

from keystore.postgres.database import PostgresDatabase, PostgresStatements
from keystore.postgres.schema import FAILURE_COUNT_LOCK
from keystore.records import ANY_ADDRESS, AttemptRules, FailureCount, FailureState, Reservation

_SELECT_STATE = (
    "SELECT address, failures, last_failure FROM auth_failures "
    "WHERE key_name = ? AND address IN (?, ?)"
)
_STORE_COUNT = (
    "INSERT INTO auth_failures (key_name, address, failures, last_failure) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (key_name, address) DO UPDATE SET "
    "failures = excluded.failures, last_failure = excluded.last_failure"
)


def _state(rows: list[Any], address: str) -> FailureState:
    found = {row[0]: FailureCount(int(row[1]), float(row[2])) for row in rows}
    return FailureState(pair=found.get(address), key=found.get(ANY_ADDRESS))


def _lock_key_counts(statements: PostgresStatements, key_name: str) -> None:
    """Hold ``key_name``'s counts until the transaction ends: reservations and releases take turns."""
    # The key's rows may not exist yet, so row locks cannot serialise the first attempts.
    statements.execute(
        "SELECT pg_advisory_xact_lock(?, hashtext(?))", (FAILURE_COUNT_LOCK, key_name)
    )


class PostgresFailureCounters:
    """:class:`keystore.records.FailureCounterStore` in the keystore's PostgreSQL database."""

    def __init__(self, database: PostgresDatabase) -> None:
        self._database = database

    def state(self, key_name: str, address: str) -> FailureState:
        return _state(
            self._database.query(_SELECT_STATE, (key_name, address, ANY_ADDRESS)), address
        )

    def reserve_attempt(
        self, key_name: str, address: str, now: float, rules: AttemptRules
    ) -> Reservation:
        with self._database.transaction() as statements:
            _lock_key_counts(statements, key_name)
            rows = statements.execute(_SELECT_STATE, (key_name, address, ANY_ADDRESS)).fetchall()
            state = _state(rows, address)
            locked_until = rules.locked_until(state, now)
            if locked_until > now:
                return Reservation(granted=False, locked_until=locked_until)
            for row_address, count in ((address, state.pair), (ANY_ADDRESS, state.key)):
                live = rules.live(count, now)
                failures = (live.failures if live else 0) + 1
                statements.execute(_STORE_COUNT, (key_name, row_address, failures, now))
        return Reservation(granted=True, locked_until=0.0)

    def release_attempt(self, key_name: str, address: str) -> None:
        with self._database.transaction() as statements:
            # The reservation's lock: a reservation reads the key-wide count and writes it back
            # plus one, so a decrement committed in between would be overwritten and lost.
            _lock_key_counts(statements, key_name)
            statements.execute(
                "DELETE FROM auth_failures WHERE key_name = ? AND address = ?", (key_name, address)
            )
            statements.execute(
                "UPDATE auth_failures SET failures = failures - 1 "
                "WHERE key_name = ? AND address = ? AND failures > 0",
                (key_name, ANY_ADDRESS),
            )

    def forget_older_than(self, cutoff: float) -> int:
        with self._database.transaction() as statements:
            return statements.execute(
                "DELETE FROM auth_failures WHERE last_failure < ?", (cutoff,)
            ).rowcount
