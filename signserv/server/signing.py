"""The contract's two operations over the keystore: fetch a public key, sign bytes.

Framework-free so the Flask routes stay thin. A request checks the record's enabled flag and
generation (one indexed read), then uses the worker's unlocked-key cache. Only a miss consults
the lockout, runs argon2id and unseals the key: a cache hit already proves the exact token.
Concurrent misses with the same key name and token run that cold path one at a time, so a
burst of first requests costs one argon2id run, not one per thread. Both the cold path and that
wait are bounded per worker: at most ``cold_request_slots`` requests unlock (run argon2id or
wait for it) and at most as many more wait for another request's unlock with the same name and
token; the next is refused at once with :class:`ColdPathBusy`. So a flood of unknown names or
wrong tokens, one name and token repeated included, never takes the threads warm requests need,
and a burst of first requests with the right token mostly waits for one unlock instead of being
refused.

A key's signing policy (:mod:`signserv.host.key_policy`) is judged only once the token is
proven, warm or cold: its client-certificate binding on both operations, its input rules on
signing. A refusal then is not an authentication failure, and reveals nothing to a caller
without the token.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

from keystore import (
    KeyNotFound,
    KeyStore,
    KeystoreCorrupt,
    KeystoreError,
    MasterKeyMismatch,
    SigningKey,
    SigningKeyLost,
    TokenRejected,
    UnlockedKey,
)
from signserv.contract import PublicPoint, encode_public_key
from signserv.errors import SignservError
from signserv.host.key_policy import KeyPolicy, PolicyInvalid
from signserv.secret import Secret
from signserv.server.lockout import LockedOut, LockoutGuard
from signserv.server.unlock_cache import CachedKey, UnlockCache
from signserv.tke.wire.signed_input import SignedInput

LAST_USED_RESOLUTION_SECONDS = 60
COLD_PATH_RETRY_SECONDS = 1
_logger = logging.getLogger(__name__)


class ColdPathBusy(SignservError):
    """Every cold-path slot of this worker is taken: try again after ``retry_after`` seconds."""

    def __init__(self) -> None:
        super().__init__("too many requests are unlocking keys; retry shortly")
        self.retry_after = COLD_PATH_RETRY_SECONDS


@contextmanager
def _admitted(slots: threading.BoundedSemaphore) -> Iterator[None]:
    """Hold one of ``slots`` for the block, or refuse at once with :class:`ColdPathBusy`."""
    if not slots.acquire(blocking=False):
        raise ColdPathBusy
    try:
        yield
    finally:
        slots.release()


def public_key_der(signing_key: SigningKey) -> bytes:
    """The contract's DER ``SEQUENCE{X, Y}`` for a signing key's public point."""
    return encode_public_key(PublicPoint.from_uncompressed(signing_key.public_point))


def _readable_policy(unlocked: UnlockedKey) -> KeyPolicy | None:
    """The unlocked key's policy; one this signserv cannot read fails closed, as a damaged record."""
    if unlocked.policy is None:
        return None
    try:
        return KeyPolicy.from_bytes(unlocked.policy)
    except PolicyInvalid as exc:
        raise KeystoreCorrupt(f"the signing policy of key {unlocked.name!r}: {exc}") from None


class SigningService:
    """Public keys and signatures for token holders; raises the keystore's errors on refusal."""

    def __init__(
        self,
        keystore: KeyStore,
        cache: UnlockCache,
        guard: LockoutGuard,
        record_cache_result: Callable[[bool], None],
        cold_request_slots: int,
    ) -> None:
        self._cold_slots = threading.BoundedSemaphore(cold_request_slots)
        self._waiting_slots = threading.BoundedSemaphore(cold_request_slots)
        self._keystore = keystore
        self._cache = cache
        self._guard = guard
        self._record_cache_result = record_cache_result
        self._last_stamped: dict[str, float] = {}

    def public_key(
        self, name: str, token: Secret[str], address: str, client_certificate: bytes | None
    ) -> bytes:
        """DER ``SEQUENCE{X, Y}`` of ``name``'s public key, for a client at ``address``.

        ``client_certificate`` is the DER of the TLS peer's verified certificate, if any; a key
        bound to one raises :class:`ClientCertificateRequired` without it.
        """
        key = self._unlocked(name, token, address)
        if key.policy is not None:
            key.policy.check_client(client_certificate)
        return key.public_key_der

    def sign_digest(
        self,
        name: str,
        token: Secret[str],
        digest: bytes,
        address: str,
        client_certificate: bytes | None,
        signed: SignedInput,
    ) -> bytes:
        """DER ``(R, S)``: ECDSA P-521 over ``digest``, the SHA-512 of the input (§1.7).

        The caller hashes the input once, for the audit record and the signature alike; the
        digest is not hashed again. ``signed`` describes the input for the key's policy, which
        raises :class:`PolicyRefused` or :class:`ClientCertificateRequired` before anything
        is signed.
        """
        lost: SigningKey | None = None
        while True:
            key = self._unlocked(name, token, address, lost)
            if key.policy is not None:
                key.policy.check_client(client_certificate)
                key.policy.check_input(signed)
            try:
                return key.signing_key.sign_digest(digest)
            except SigningKeyLost:
                # An HSM key's session object went with its connection; only the token unwraps
                # it again, so this request goes cold (once), like the first after a restart.
                if lost is not None:
                    raise
                lost = key.signing_key

    def _unlocked(
        self, name: str, token: Secret[str], address: str, lost: SigningKey | None = None
    ) -> CachedKey:
        """The cached key, else unlocked cold; a cached ``lost`` key counts as a miss."""
        cached = self._cached(name, token, lost)
        if cached is None:
            return self._unlock_admitted(name, token, address, lost)
        self._record_cache_result(True)
        self._stamp_last_used(name)
        return cached

    def _cached(
        self, name: str, token: Secret[str], lost: SigningKey | None = None
    ) -> CachedKey | None:
        """The key if this token unlocked the record's current version and it is enabled."""
        try:
            status = self._keystore.status(name)
        except MasterKeyMismatch:
            self._cache.clear()  # unlocked under a master key rotated away: never used again
            raise
        if status is None or not status.enabled:
            self._cache.forget(name)
            return None
        cached = self._cache.get(name, token.reveal(), status.version)
        if cached is not None and lost is not None and cached.signing_key is lost:
            return None  # the unlock that follows replaces the entry
        return cached

    def _unlock_admitted(
        self, name: str, token: Secret[str], address: str, lost: SigningKey | None
    ) -> CachedKey:
        """The cold path if the pair is not locked (:class:`LockedOut`) and this worker has room
        for it (:class:`ColdPathBusy` if not).

        Requests that miss with the same token take turns: the first unlocks, the others wait
        (each holding a waiting slot, never an unlocking one) and then find its result in the
        cache instead of each running argon2id. Only a request that must unlock takes an
        unlocking slot, and only for as long as it unlocks.
        """
        try:
            self._guard.refuse_if_locked(name, address)
        except LockedOut:
            self._record_cache_result(False)  # refused before the cache could be asked again
            raise
        with self._cache.unlocking(name, token.reveal(), self._waiting_admitted):
            cached = self._cached(name, token, lost)
            self._record_cache_result(cached is not None)
            if cached is not None:
                self._stamp_last_used(name)
                return cached
            with _admitted(self._cold_slots):
                return self._unlock_cold(name, token, address)

    @contextmanager
    def _waiting_admitted(self) -> Iterator[None]:
        try:
            with _admitted(self._waiting_slots):
                yield
        except ColdPathBusy:
            self._record_cache_result(False)  # refused before the cache could be asked again
            raise

    def _unlock_cold(self, name: str, token: Secret[str], address: str) -> CachedKey:
        """Reserve an attempt, run argon2id and unseal; a proven token releases the attempt."""
        self._guard.reserve(name, address)
        try:
            unlocked = self._keystore.unlock(name, token.reveal())
        except (KeyNotFound, TokenRejected):
            raise  # the reserved attempt stays counted: it was a failure
        except KeystoreError:
            # A disabled key, or a storage fault: the token was proven, or never checked.
            self._guard.succeeded(name, address)
            raise
        self._guard.succeeded(name, address)
        policy = _readable_policy(unlocked)
        encoded = public_key_der(unlocked.signing_key)
        self._cache.put(
            name, token.reveal(), unlocked.signing_key, encoded, unlocked.version, policy
        )
        self._stamp_last_used(name)
        return CachedKey(unlocked.signing_key, encoded, unlocked.version, 0.0, policy)

    def _stamp_last_used(self, name: str) -> None:
        """Record ``last_used_at`` at most once a minute per key and worker: a write is costly."""
        now = time.monotonic()
        if now - self._last_stamped.get(name, -LAST_USED_RESOLUTION_SECONDS) < (
            LAST_USED_RESOLUTION_SECONDS
        ):
            return
        self._last_stamped[name] = now
        not_since = datetime.now(timezone.utc) - timedelta(seconds=LAST_USED_RESOLUTION_SECONDS)
        try:
            self._keystore.record_use(name, not_since.isoformat(timespec="seconds"))
        except KeystoreError as exc:
            _logger.warning("could not record last use of key %r: %s", name, exc)
