"""Brute-force defence: lock a (key, address) pair, and bound a key-wide lock (DESIGN §5).

After ``pair_threshold`` consecutive failures from one address on one key, that pair is locked
with exponential backoff (1 s, 2 s, 4 s, … up to ``pair_max_seconds``). Failures on one key from
all addresses past ``key_threshold`` lock the key, for at most ``key_max_seconds`` at a time, for
every address that has itself failed on it: a distributed attack then gets one guess per
address per lock, while an address with no failures (the owner's) is never locked out by other
addresses' failures, however long the attack lasts. A locked request is refused before argon2id
runs; a success clears its pair.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from keystore.auth_failures import AuthFailureStore, FailureCount
from signserv.errors import SignservError
from signserv.host.config import LockoutSettings

PRUNE_EVERY_FAILURES = 256


class LockedOut(SignservError):
    """Too many failed authentications: refused until ``retry_after`` seconds have passed."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed authentications; retry after {retry_after} s")
        self.retry_after = retry_after


class LockoutGuard:
    """Consulted on every cold-path authentication; shared state lives in the keystore."""

    def __init__(
        self,
        store: AuthFailureStore,
        settings: LockoutSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock
        self._failures_since_prune = 0

    def lock_seconds(self, failures: int, key_wide: bool) -> float:
        """How long a count of ``failures`` locks: 0 below the threshold, then doubling, bounded."""
        threshold = self._settings.key_threshold if key_wide else self._settings.pair_threshold
        bound = self._settings.key_max_seconds if key_wide else self._settings.pair_max_seconds
        if failures < threshold:
            return 0.0
        exponent = min(failures - threshold, 32)
        return float(min(2**exponent, bound))

    def check(self, key_name: str, address: str) -> bool:
        """Raise :class:`LockedOut` if the pair is locked, or the key and this address has failed on it.

        Returns True if the pair has failed before.
        """
        state = self._store.state(key_name, address)
        if state.pair is None:
            return False  # the key-wide lock does not reach an address that never failed
        now = self._clock()
        waits = [count.locked_until - now for count in (state.pair, state.key) if count is not None]
        longest = max(waits, default=0.0)
        if longest > 0:
            raise LockedOut(retry_after=max(1, math.ceil(longest)))
        return state.pair is not None

    def failed(self, key_name: str, address: str) -> FailureCount | None:
        """Count a failed authentication; returns the pair's new count."""
        now = self._clock()
        state = self._store.record_failure(
            key_name,
            address,
            now,
            self.lock_seconds,
            forget_before=now - self._settings.window_seconds,
        )
        self._failures_since_prune += 1
        if self._failures_since_prune >= PRUNE_EVERY_FAILURES:
            self._failures_since_prune = 0
            self._store.forget_older_than(now - self._settings.window_seconds)
        return state.pair

    def succeeded(self, key_name: str, address: str, had_failures: bool) -> None:
        """A correct token clears its pair's count (no write when there was nothing to clear)."""
        if had_failures:
            self._store.clear_pair(key_name, address)
