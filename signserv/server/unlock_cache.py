"""The per-worker cache of unlocked keys, so warm requests run neither argon2id nor an unseal.

DESIGN §3. Entries are keyed by the key name and an HMAC of the token under a random per-process
key, so the cache never holds a token and a different token never hits. Each entry remembers the
record version it was unlocked at (record id, generation, token seal's salt): a token rotation,
disable or enable bumps the generation, a token rotation also draws a new salt (so a restored
backup, whose generations start lower again, never reaches a cached version), and a deleted and
re-created name has a new record id, so the next request never uses a stale entry (a master-key
rotation changes none of them: the private keys do not change). A request that finds its key
disabled or deleted drops the name's entries at once, and every access sweeps out expired
entries, so no key stays in memory long past its age limit while the worker serves requests.
Bounded by size (least recently used goes first) and by age. An entry also holds the key's
signing policy as the unseal proved it, so a warm request judges its input without reading or
verifying the policy again; setting a policy bumps the generation, which drops the entry.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

from keystore import SigningKey
from signserv.host.key_policy import KeyPolicy


@dataclass(frozen=True)
class CachedKey:
    """An unlocked key as held in the cache, with its public key already encoded for GET /keys."""

    signing_key: SigningKey
    public_key_der: bytes
    version: str
    expires_at: float
    policy: KeyPolicy | None = None
    """The key's signing policy, proven by the unseal; None when the key has none."""

    def __repr__(self) -> str:
        return f"CachedKey(version={self.version})"


class UnlockCache:
    """Bounded, expiring map (name, token) -> CachedKey; ``ttl_seconds`` 0 disables it."""

    def __init__(
        self,
        ttl_seconds: float,
        max_entries: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl_seconds
        self._max_entries = max_entries
        self._clock = clock
        self._hmac_key = secrets.token_bytes(32)
        self._entries: OrderedDict[tuple[str, bytes], CachedKey] = OrderedDict()
        self._lock = threading.Lock()
        # Per (name, token) slot: the lock unlocking threads take turns on, and how many hold or
        # wait for it; an entry lives only while someone does, so this stays small.
        self._unlocking: dict[tuple[str, bytes], tuple[threading.Lock, int]] = {}

    def _slot(self, name: str, token: str) -> tuple[str, bytes]:
        digest = hmac.new(self._hmac_key, token.encode("utf-8"), hashlib.sha256).digest()
        return name, digest

    def _sweep_expired(self) -> None:
        """Drop every expired entry (least recently used first); call with the lock held."""
        now = self._clock()
        for slot in [slot for slot, entry in self._entries.items() if entry.expires_at <= now]:
            del self._entries[slot]

    def get(self, name: str, token: str, version: str) -> CachedKey | None:
        """The cached key if this exact token unlocked this version of the record, still fresh."""
        slot = self._slot(name, token)
        with self._lock:
            self._sweep_expired()
            entry = self._entries.get(slot)
            if entry is None:
                return None
            if entry.version != version:
                del self._entries[slot]
                return None
            self._entries.move_to_end(slot)
            return entry

    def forget(self, name: str) -> None:
        """Drop every entry of ``name`` (its key was found disabled or deleted)."""
        with self._lock:
            for slot in [slot for slot in self._entries if slot[0] == name]:
                del self._entries[slot]

    def clear(self) -> None:
        """Drop every entry (the keystore is sealed under a master key this process lacks)."""
        with self._lock:
            self._entries.clear()

    def put(
        self,
        name: str,
        token: str,
        signing_key: SigningKey,
        public_key_der: bytes,
        version: str,
        policy: KeyPolicy | None = None,
    ) -> None:
        """Remember an unlocked key and its policy; a no-op when the cache is disabled."""
        if self._ttl <= 0:
            return
        entry = CachedKey(signing_key, public_key_der, version, self._clock() + self._ttl, policy)
        slot = self._slot(name, token)
        with self._lock:
            self._sweep_expired()
            self._entries[slot] = entry
            self._entries.move_to_end(slot)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

    @contextmanager
    def unlocking(
        self, name: str, token: str, while_waiting: Callable[[], AbstractContextManager[object]]
    ) -> Iterator[None]:
        """Held while unlocking ``name`` with ``token``: threads with the same pair take turns.

        A thread that finds the turn taken waits inside ``while_waiting()``, which may refuse
        (raise) to bound how many wait.
        """
        slot = self._slot(name, token)
        with self._lock:
            turn, holders = self._unlocking.get(slot, (threading.Lock(), 0))
            self._unlocking[slot] = (turn, holders + 1)
        try:
            if not turn.acquire(blocking=False):
                with while_waiting():
                    turn.acquire()
            try:
                yield
            finally:
                turn.release()
        finally:
            with self._lock:
                turn, holders = self._unlocking[slot]
                if holders == 1:
                    del self._unlocking[slot]
                else:
                    self._unlocking[slot] = (turn, holders - 1)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
