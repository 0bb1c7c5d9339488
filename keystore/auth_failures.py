"""Failed-authentication counters, kept in the keystore's database so every worker agrees.

DESIGN §5. One row per (key name, client address) and one per key (address ``*``). Rows exist
for unknown names too, so lockout behaviour does not reveal which keys exist. The policy that
turns counts into lock times lives with the caller; this module only counts and remembers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from keystore.store import KeyStore

ANY_ADDRESS = "*"
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


@dataclass(frozen=True)
class FailureCount:
    """Consecutive failures of one (key, address) pair, or of a key from anywhere."""

    failures: int
    locked_until: float


@dataclass(frozen=True)
class FailureState:
    """The two counters a cold-path request consults."""

    pair: FailureCount | None
    key: FailureCount | None


# (failures so far, is the key-wide row) -> seconds to lock, 0 for none
LockTime = Callable[[int, bool], float]


class AuthFailureStore:
    """Counters of failed authentications in the keystore's SQLite file."""

    def __init__(self, keystore: KeyStore) -> None:
        self._keystore = keystore
        with keystore._transaction() as connection:
            connection.execute(_SCHEMA)

    def state(self, key_name: str, address: str) -> FailureState:
        """The pair's and the key's counters (None where nothing failed)."""
        rows = self._keystore._query(
            "SELECT address, failures, locked_until FROM auth_failures "
            "WHERE key_name = ? AND address IN (?, ?)",
            (key_name, address, ANY_ADDRESS),
        )
        found = {row[0]: FailureCount(int(row[1]), float(row[2])) for row in rows}
        return FailureState(pair=found.get(address), key=found.get(ANY_ADDRESS))

    def record_failure(
        self, key_name: str, address: str, now: float, lock_time: LockTime, forget_before: float
    ) -> FailureState:
        """Count one failure for the pair and the key; a count older than ``forget_before`` restarts."""
        updated: dict[str, FailureCount] = {}
        with self._keystore._transaction() as connection:
            for row_address in (address, ANY_ADDRESS):
                row = connection.execute(
                    "SELECT failures, last_failure FROM auth_failures "
                    "WHERE key_name = ? AND address = ?",
                    (key_name, row_address),
                ).fetchone()
                previous = int(row[0]) if row and float(row[1]) >= forget_before else 0
                failures = previous + 1
                locked_until = now + lock_time(failures, row_address == ANY_ADDRESS)
                connection.execute(
                    "INSERT INTO auth_failures VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (key_name, address) DO UPDATE SET failures = excluded.failures, "
                    "locked_until = excluded.locked_until, last_failure = excluded.last_failure",
                    (key_name, row_address, failures, locked_until, now),
                )
                updated[row_address] = FailureCount(failures, locked_until)
        return FailureState(pair=updated[address], key=updated[ANY_ADDRESS])

    def clear_pair(self, key_name: str, address: str) -> None:
        """Forget the pair's failures after a success (the key-wide count stays)."""
        with self._keystore._transaction() as connection:
            connection.execute(
                "DELETE FROM auth_failures WHERE key_name = ? AND address = ?",
                (key_name, address),
            )

    def forget_older_than(self, cutoff: float) -> int:
        """Drop counters whose last failure is older than ``cutoff``; returns how many."""
        with self._keystore._transaction() as connection:
            return int(
                connection.execute(
                    "DELETE FROM auth_failures WHERE last_failure < ?", (cutoff,)
                ).rowcount
            )
