"""Brute-force defence: lock a (key, address) pair, and bound a key-wide lock (DESIGN §5).

After ``pair_threshold`` consecutive failures from one address on one key, that pair is locked
with exponential backoff (1 s, 2 s, 4 s, … up to ``pair_max_seconds``). Failures on one key from
all addresses past ``key_threshold`` lock the key, for at most ``key_max_seconds`` at a time, for
every address that has itself failed on it within ``window_seconds``: a distributed attack then
gets one guess per address per lock, while an address with no recent failures (the owner's) is
never locked out by other addresses' failures, however long the attack lasts. Failures older
than ``window_seconds`` are forgotten.

Every cold-path attempt is reserved before argon2id runs: the reservation counts it as a
failure, atomically with the lock check, and a correct token takes it back. However many
requests arrive at once, no more tokens are checked than the schedule allows.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from keystore import AttemptRules, FailureCounterStore, LockSchedule
from signserv.errors import SignservError
from signserv.host.config import LockoutSettings

PRUNE_EVERY_ATTEMPTS = 256


class LockedOut(SignservError):
    """Too many failed authentications: refused until ``retry_after`` seconds have passed."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed authentications; retry after {retry_after} s")
        self.retry_after = retry_after


def attempt_rules(settings: LockoutSettings) -> AttemptRules:
    """The lock schedules and window the settings describe."""
    return AttemptRules(
        pair=LockSchedule(settings.pair_threshold, settings.pair_max_seconds),
        key=LockSchedule(settings.key_threshold, settings.key_max_seconds),
        window_seconds=settings.window_seconds,
    )


class LockoutGuard:
    """Consulted on every cold-path authentication; shared state lives in the keystore."""

    def __init__(
        self,
        store: FailureCounterStore,
        settings: LockoutSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._rules = attempt_rules(settings)
        self._clock = clock
        self._attempts_since_prune = 0

    def refuse_if_locked(self, key_name: str, address: str) -> None:
        """Raise :class:`LockedOut` if the pair is locked now (a read: nothing is counted).

        Asked before a request takes a cold slot, so a locked-out flood is answered 429 without
        holding the slots other clients' cold requests need; :meth:`reserve` decides for good.
        """
        now = self._clock()
        locked_until = self._rules.locked_until(self._store.state(key_name, address), now)
        if locked_until > now:
            raise LockedOut(retry_after=max(1, math.ceil(locked_until - now)))

    def reserve(self, key_name: str, address: str) -> None:
        """Count an attempt as failed before its token is checked, or raise :class:`LockedOut`."""
        now = self._clock()
        reservation = self._store.reserve_attempt(key_name, address, now, self._rules)
        if not reservation.granted:
            raise LockedOut(retry_after=max(1, math.ceil(reservation.locked_until - now)))
        self._attempts_since_prune += 1
        if self._attempts_since_prune >= PRUNE_EVERY_ATTEMPTS:
            self._attempts_since_prune = 0
            self._store.forget_older_than(now - self._rules.window_seconds)

    def succeeded(self, key_name: str, address: str) -> None:
        """The reserved attempt proved its token: it was no failure, and the pair starts over."""
        self._store.release_attempt(key_name, address)
