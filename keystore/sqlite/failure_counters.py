"""Failed-authentication counters in the keystore's SQLite file, so every worker agrees (DESIGN §5).

The service chooses the lock schedule; this module applies it inside one ``BEGIN IMMEDIATE``
transaction, so that checking a lock and counting an attempt cannot interleave between workers.
"""

from __future__ import annotations

from typing import Any

from keystore.records import ANY_ADDRESS, AttemptRules, FailureCount, FailureState, Reservation
from keystore.sqlite.database import SqliteDatabase

# ``locked_until`` predates the split of counting from policy and stays for the schema's sake;
# it is written as the failure time, and read by nothing.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS auth_failures (
    key_name      TEXT NOT NULL,
    address       TEXT NOT NULL,
    failures      INTEGER NOT NULL,
    locked_until  REAL NOT NULL,
    last_failure  REAL NOT NULL,
    PRIMARY KEY (key_name, address)
)
"""


_SELECT_STATE = (
    "SELECT address, failures, last_failure FROM auth_failures "
    "WHERE key_name = ? AND address IN (?, ?)"
)


def _state(rows: list[Any], address: str) -> FailureState:
    found = {row[0]: FailureCount(int(row[1]), float(row[2])) for row in rows}
    return FailureState(pair=found.get(address), key=found.get(ANY_ADDRESS))


class SqliteFailureCounters:
    """:class:`keystore.records.FailureCounterStore` in the keystore's SQLite file."""

    def __init__(self, database: SqliteDatabase) -> None:
        self._database = database
        with database.transaction() as connection:
            connection.execute(_SCHEMA)

    def state(self, key_name: str, address: str) -> FailureState:
        rows = self._database.query(_SELECT_STATE, (key_name, address, ANY_ADDRESS))
        return _state(rows, address)

    def reserve_attempt(
        self, key_name: str, address: str, now: float, rules: AttemptRules
    ) -> Reservation:
        with self._database.transaction() as connection:
            rows = connection.execute(_SELECT_STATE, (key_name, address, ANY_ADDRESS))
            state = _state(rows.fetchall(), address)
            locked_until = rules.locked_until(state, now)
            if locked_until > now:
                return Reservation(granted=False, locked_until=locked_until)
            for row_address, count in ((address, state.pair), (ANY_ADDRESS, state.key)):
                live = rules.live(count, now)
                connection.execute(
                    "INSERT OR REPLACE INTO auth_failures VALUES (?, ?, ?, ?, ?)",
                    (key_name, row_address, (live.failures if live else 0) + 1, now, now),
                )
        return Reservation(granted=True, locked_until=0.0)

    def release_attempt(self, key_name: str, address: str) -> None:
        with self._database.transaction() as connection:
            connection.execute(
                "DELETE FROM auth_failures WHERE key_name = ? AND address = ?",
                (key_name, address),
            )
            connection.execute(
                "UPDATE auth_failures SET failures = failures - 1 "
                "WHERE key_name = ? AND address = ? AND failures > 0",
                (key_name, ANY_ADDRESS),
            )

    def forget_older_than(self, cutoff: float) -> int:
        with self._database.transaction() as connection:
            return int(
                connection.execute(
                    "DELETE FROM auth_failures WHERE last_failure < ?", (cutoff,)
                ).rowcount
            )
