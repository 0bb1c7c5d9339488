"""Concurrent cache misses with one token share one unlock; other tokens still get their own."""

from __future__ import annotations

import hashlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from keystore import FailureCounterStore, KeyStore, TokenRejected, UnlockedKey
from signserv.contract import decode_public_key
from signserv.host.config import Settings
from signserv.host.home import open_failure_counters, open_keystore
from signserv.secret import Secret
from signserv.server.lockout import LockoutGuard, LockoutSettings
from signserv.server.signing import ColdPathBusy, SigningService
from signserv.server.unlock_cache import UnlockCache
from signserv.tke.wire.signed_input import InputKind, SignedInput

TOKEN = "right-token-0123456789abcdef"
OPAQUE_INPUT = SignedInput(InputKind.OPAQUE)
THREADS = 8


class CountingSlowUnlocks:
    """Wraps KeyStore.unlock: counts the calls and holds each long enough for others to pile up."""

    seconds = 0.05

    def __init__(self, store: KeyStore) -> None:
        self.calls = 0
        self._unlock = store.unlock
        self._lock = threading.Lock()

    def __call__(self, name: str, token: str) -> UnlockedKey:
        with self._lock:
            self.calls += 1
        time.sleep(self.seconds)
        return self._unlock(name, token)


@pytest.fixture
def store(settings: Settings) -> KeyStore:
    opened = open_keystore(settings)
    opened.create_key("admin", TOKEN)
    return opened


@pytest.fixture
def unlocks(store: KeyStore, monkeypatch: pytest.MonkeyPatch) -> CountingSlowUnlocks:
    counting = CountingSlowUnlocks(store)
    monkeypatch.setattr(store, "unlock", counting)
    return counting


@pytest.fixture
def counters(settings: Settings) -> FailureCounterStore:
    return open_failure_counters(settings)


def signing_service(
    store: KeyStore,
    counters: FailureCounterStore,
    cache_seconds: int = 300,
    cold_request_slots: int = THREADS,
) -> SigningService:
    guard = LockoutGuard(counters, LockoutSettings())
    return SigningService(
        store, UnlockCache(cache_seconds, 16), guard, lambda hit: None, cold_request_slots
    )


def sign_together(service: SigningService, tokens: list[str]) -> list[object]:
    """Every token signs at the same moment; each result is a signature or the raised error."""
    start = threading.Barrier(len(tokens))

    def sign(token: str) -> object:
        start.wait()
        try:
            digest = hashlib.sha512(b"payload").digest()
            return service.sign_digest(
                "admin", Secret(token), digest, "127.0.0.1", None, OPAQUE_INPUT
            )
        except (TokenRejected, ColdPathBusy) as exc:
            return exc

    with ThreadPoolExecutor(max_workers=len(tokens)) as pool:
        return list(pool.map(sign, tokens))


def test_a_burst_of_first_requests_with_one_token_unlocks_once(
    store: KeyStore, counters: FailureCounterStore, unlocks: CountingSlowUnlocks
) -> None:
    service = signing_service(store, counters)
    signatures = sign_together(service, [TOKEN] * THREADS)
    assert unlocks.calls == 1
    public_key = service_public_key(service)
    for signature in signatures:
        assert isinstance(signature, bytes)
        public_key.verify(signature, b"payload", ec.ECDSA(hashes.SHA512()))


def test_wrong_tokens_each_pay_their_own_unlock_and_count_as_failures(
    store: KeyStore, counters: FailureCounterStore, unlocks: CountingSlowUnlocks
) -> None:
    service = signing_service(store, counters)
    wrong = [f"wrong-token-{number:020d}" for number in range(3)] * 2
    outcomes = sign_together(service, wrong)
    assert all(isinstance(outcome, TokenRejected) for outcome in outcomes)
    assert unlocks.calls == len(wrong)
    assert counters.state("admin", "127.0.0.1").pair.failures == len(wrong)


def test_with_the_cache_off_every_request_unlocks(
    store: KeyStore, counters: FailureCounterStore, unlocks: CountingSlowUnlocks
) -> None:
    service = signing_service(store, counters, cache_seconds=0)
    assert all(isinstance(result, bytes) for result in sign_together(service, [TOKEN] * 4))
    assert unlocks.calls == 4


def test_a_flood_repeating_one_wrong_token_is_refused_beyond_the_cold_slots_at_once(
    store: KeyStore, counters: FailureCounterStore, unlocks: CountingSlowUnlocks
) -> None:
    """Hostile: 8 requests with one name and one wrong token, 2 cold slots. One unlocks, two
    wait their turn (each in a waiting slot); the other five are refused at once, not parked on
    the shared unlock, where they would hold threads warm requests need. Each that waited
    still pays its own argon2id run: a wrong token is never taken from another's result."""
    service = signing_service(store, counters, cold_request_slots=2)
    started = time.monotonic()
    outcomes = sign_together(service, ["wrong-token-repeated-000000"] * THREADS)
    refused = [outcome for outcome in outcomes if isinstance(outcome, ColdPathBusy)]
    assert len(refused) == THREADS - 1 - 2
    assert sum(isinstance(outcome, TokenRejected) for outcome in outcomes) == 3
    assert unlocks.calls == 3
    assert time.monotonic() - started < 3 * unlocks.seconds + 1.0


def test_a_burst_of_first_requests_waits_for_one_unlock_up_to_the_waiting_slots(
    store: KeyStore, counters: FailureCounterStore, unlocks: CountingSlowUnlocks
) -> None:
    """8 first requests with the right token, 2 cold slots: one unlocks, two wait for it and
    sign with its result; the five beyond the waiting slots are refused at once (503 with
    Retry-After through the app) rather than holding threads."""
    service = signing_service(store, counters, cold_request_slots=2)
    outcomes = sign_together(service, [TOKEN] * THREADS)
    assert sum(isinstance(outcome, ColdPathBusy) for outcome in outcomes) == THREADS - 1 - 2
    assert sum(isinstance(outcome, bytes) for outcome in outcomes) == 3
    assert unlocks.calls == 1


def service_public_key(service: SigningService) -> ec.EllipticCurvePublicKey:
    point = decode_public_key(service.public_key("admin", Secret(TOKEN), "127.0.0.1", None))
    return ec.EllipticCurvePublicNumbers(point.x, point.y, ec.SECP521R1()).public_key()
