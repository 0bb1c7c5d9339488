"""Failed-authentication counters in the keystore's SQLite file, so every worker agrees (DESIGN §5).

Counting only: the lock a count earns is the service's policy, derived from the count and the
time of the last failure when a request is checked.
"""

from __future__ import annotations

from keystore.records import ANY_ADDRESS, FailureCount, FailureState
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


class SqliteFailureCounters:
    """:class:`keystore.records.FailureCounterStore` in the keystore's SQLite file."""

    def __init__(self, database: SqliteDatabase) -> None:
        self._database = database
        with database.transaction() as connection:
            connection.execute(_SCHEMA)

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
        updated: dict[str, FailureCount] = {}
        with self._database.transaction() as connection:
            for row_address in (address, ANY_ADDRESS):
                row = connection.execute(
                    "SELECT failures, last_failure FROM auth_failures "
                    "WHERE key_name = ? AND address = ?",
                    (key_name, row_address),
                ).fetchone()
                previous = int(row[0]) if row and float(row[1]) >= forget_before else 0
                failures = previous + 1
                connection.execute(
                    "INSERT INTO auth_failures VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (key_name, address) DO UPDATE SET failures = excluded.failures, "
                    "locked_until = excluded.locked_until, last_failure = excluded.last_failure",
                    (key_name, row_address, failures, now, now),
                )
                updated[row_address] = FailureCount(failures, now)
        return FailureState(pair=updated[address], key=updated[ANY_ADDRESS])

    def clear_pair(self, key_name: str, address: str) -> None:
        with self._database.transaction() as connection:
            connection.execute(
                "DELETE FROM auth_failures WHERE key_name = ? AND address = ?",
                (key_name, address),
            )

    def forget_older_than(self, cutoff: float) -> int:
        with self._database.transaction() as connection:
            return int(
                connection.execute(
                    "DELETE FROM auth_failures WHERE last_failure < ?", (cutoff,)
                ).rowcount
            )
