"""The per-worker cache of unlocked keys, so warm requests run neither argon2id nor an unseal.

DESIGN §3. Entries are keyed by the key name and an HMAC of the token under a random per-process
key, so the cache never holds a token and a different token never hits. Each entry remembers the
record generation it was unlocked at; a token rotation, disable or enable bumps the
generation, and the next request drops the stale entry (a master-key rotation does not: the
private keys themselves do not change). Bounded by size (least
recently used goes first) and by age.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec


@dataclass(frozen=True)
class CachedKey:
    """A private key as held in the cache, with its public key already encoded for GET /keys."""

    private_key: ec.EllipticCurvePrivateKey
    public_key_der: bytes
    generation: int
    expires_at: float

    def __repr__(self) -> str:
        return f"CachedKey(generation={self.generation})"


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

    def get(self, name: str, token: str, generation: int) -> CachedKey | None:
        """The cached key if this exact token unlocked it at this generation and it is fresh."""
        slot = self._slot(name, token)
        with self._lock:
            entry = self._entries.get(slot)
            if entry is None:
                return None
            if entry.generation != generation or entry.expires_at <= self._clock():
                del self._entries[slot]
                return None
            self._entries.move_to_end(slot)
            return entry

    def put(
        self,
        name: str,
        token: str,
        private_key: ec.EllipticCurvePrivateKey,
        public_key_der: bytes,
        generation: int,
    ) -> None:
        """Remember an unlocked key; a no-op when the cache is disabled."""
        if self._ttl <= 0:
            return
        entry = CachedKey(private_key, public_key_der, generation, self._clock() + self._ttl)
        slot = self._slot(name, token)
        with self._lock:
            self._entries[slot] = entry
            self._entries.move_to_end(slot)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

    @contextmanager
    def unlocking(self, name: str, token: str) -> Iterator[None]:
        """Held while unlocking ``name`` with ``token``: threads with the same pair take turns."""
        slot = self._slot(name, token)
        with self._lock:
            turn, holders = self._unlocking.get(slot, (threading.Lock(), 0))
            self._unlocking[slot] = (turn, holders + 1)
        try:
            with turn:
                yield
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
