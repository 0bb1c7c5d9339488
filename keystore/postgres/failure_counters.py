"""Failed-authentication counters in PostgreSQL, shared by every replica (DESIGN §5).

Each count is one upsert that increments in the database (``failures + 1`` under the row's
lock), so guesses spread over replicas and workers are never lost: an attacker meets the same
thresholds as against one process. Counting only: the lock a count earns is the service's policy.
"""

from __future__ import annotations

from keystore.postgres.database import PostgresDatabase
from keystore.records import ANY_ADDRESS, FailureCount, FailureState

_COUNT_ONE = (
    "INSERT INTO auth_failures (key_name, address, failures, last_failure) VALUES (?, ?, 1, ?) "
    "ON CONFLICT (key_name, address) DO UPDATE SET "
    "failures = CASE WHEN auth_failures.last_failure >= ? THEN auth_failures.failures + 1 ELSE 1 END, "
    "last_failure = excluded.last_failure "
    "RETURNING failures, last_failure"
)


class PostgresFailureCounters:
    """:class:`keystore.records.FailureCounterStore` in the keystore's PostgreSQL database."""

    def __init__(self, database: PostgresDatabase) -> None:
        self._database = database

    def state(self, key_name: str, address: str) -> FailureState:
        rows = self._database.query(
            "SELECT address, failures, last_failure FROM auth_failures "
            "WHERE key_name = ? AND address IN (?, ?)",
            (key_name, address, ANY_ADDRESS),
        )
        found = {row[0]: FailureCount(int(row[1]), float(row[2])) for row in rows}
        return FailureState(pair=found.get(address), key=found.get(ANY_ADDRESS))

    def record_failure(
        self, key_name: str, address: str, now: float, forget_before: float
    ) -> FailureState:
        counts: list[FailureCount] = []
        with self._database.transaction() as statements:
            # Pair first, then key: every transaction locks the two rows in the same order.
            for row_address in (address, ANY_ADDRESS):
                row = statements.execute(
                    _COUNT_ONE, (key_name, row_address, now, forget_before)
                ).fetchone()
                assert row is not None  # RETURNING yields the upserted row
                counts.append(FailureCount(int(row[0]), float(row[1])))
        return FailureState(pair=counts[0], key=counts[1])

    def clear_pair(self, key_name: str, address: str) -> None:
        with self._database.transaction() as statements:
            statements.execute(
                "DELETE FROM auth_failures WHERE key_name = ? AND address = ?", (key_name, address)
            )

    def forget_older_than(self, cutoff: float) -> int:
        with self._database.transaction() as statements:
            return statements.execute(
                "DELETE FROM auth_failures WHERE last_failure < ?", (cutoff,)
            ).rowcount
