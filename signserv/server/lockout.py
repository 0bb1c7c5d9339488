"""Brute-force defence: lock a (key, address) pair, and bound a key-wide lock (DESIGN §5).

After ``pair_threshold`` consecutive failures from one address on one key, that pair is locked
with exponential backoff (1 s, 2 s, 4 s, … up to ``pair_max_seconds``). Failures on one key from
all addresses past ``key_threshold`` lock the key, for at most ``key_max_seconds`` at a time, for
every address that has itself failed on it: a distributed attack then gets one guess per
address per lock, while an address with no failures (the owner's) is never locked out by other
addresses' failures, however long the attack lasts. A locked request is refused before argon2id
runs; a success clears its pair.

Storage counts, this module decides: a counter's lock ends ``lock_seconds(failures)`` after its
last failure, computed here when a request is checked.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from keystore import FailureCount, FailureCounterStore
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
        store: FailureCounterStore,
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

    def _locked_until(self, count: FailureCount, key_wide: bool) -> float:
        return count.last_failure + self.lock_seconds(count.failures, key_wide)

    def check(self, key_name: str, address: str) -> bool:
        """Raise :class:`LockedOut` if the pair is locked, or the key and this address has failed on it.

        Returns True if the pair has failed before.
        """
        state = self._store.state(key_name, address)
        if state.pair is None:
            return False  # the key-wide lock does not reach an address that never failed
        ends = [self._locked_until(state.pair, key_wide=False)]
        if state.key is not None:
            ends.append(self._locked_until(state.key, key_wide=True))
        longest = max(ends) - self._clock()
        if longest > 0:
            raise LockedOut(retry_after=max(1, math.ceil(longest)))
        return True

    def failed(self, key_name: str, address: str) -> None:
        """Count a failed authentication."""
        now = self._clock()
        self._store.record_failure(
            key_name, address, now, forget_before=now - self._settings.window_seconds
        )
        self._failures_since_prune += 1
        if self._failures_since_prune >= PRUNE_EVERY_FAILURES:
            self._failures_since_prune = 0
            self._store.forget_older_than(now - self._settings.window_seconds)

    def succeeded(self, key_name: str, address: str, had_failures: bool) -> None:
        """A correct token clears its pair's count (no write when there was nothing to clear)."""
        if had_failures:
            self._store.clear_pair(key_name, address)
