"""The unlocked-key cache: exact token only, same record version only, bounded by age and size."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from signserv.server.unlock_cache import UnlockCache

TOKEN = "token-a-0123456789abcdef"


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP521R1())


def test_hit_needs_the_same_token_and_record_version(key) -> None:
    cache = UnlockCache(ttl_seconds=60, max_entries=10)
    cache.put("k", TOKEN, key, b"der", version="v1")
    assert cache.get("k", TOKEN, "v1") is not None
    assert cache.get("k", TOKEN + "x", "v1") is None
    assert cache.get("other", TOKEN, "v1") is None
    assert cache.get("k", TOKEN, "v2") is None
    assert cache.get("k", TOKEN, "v1") is None, "a stale version evicts the entry"


def test_entries_expire(key) -> None:
    clock = FakeClock()
    cache = UnlockCache(ttl_seconds=60, max_entries=10, clock=clock)
    cache.put("k", TOKEN, key, b"der", version="v1")
    clock.now += 59
    assert cache.get("k", TOKEN, "v1") is not None
    clock.now += 2
    assert cache.get("k", TOKEN, "v1") is None
    assert len(cache) == 0


def test_size_is_bounded_least_recently_used_first(key) -> None:
    cache = UnlockCache(ttl_seconds=60, max_entries=2)
    cache.put("a", TOKEN, key, b"der", "v1")
    cache.put("b", TOKEN, key, b"der", "v1")
    assert cache.get("a", TOKEN, "v1") is not None
    cache.put("c", TOKEN, key, b"der", "v1")
    assert len(cache) == 2
    assert cache.get("b", TOKEN, "v1") is None
    assert cache.get("a", TOKEN, "v1") is not None


def test_zero_ttl_disables_the_cache(key) -> None:
    cache = UnlockCache(ttl_seconds=0, max_entries=10)
    cache.put("k", TOKEN, key, b"der", "v1")
    assert cache.get("k", TOKEN, "v1") is None


def test_cache_holds_no_token(key) -> None:
    cache = UnlockCache(ttl_seconds=60, max_entries=10)
    cache.put("k", TOKEN, key, b"der", "v1")
    assert TOKEN not in repr(cache._entries)
    assert all(TOKEN.encode() not in slot[1] for slot in cache._entries)


def test_forget_drops_every_entry_of_a_name(key) -> None:
    cache = UnlockCache(ttl_seconds=60, max_entries=10)
    cache.put("k", TOKEN, key, b"der", "v1")
    cache.put("k", TOKEN + "2", key, b"der", "v1")
    cache.put("other", TOKEN, key, b"der", "v1")
    cache.forget("k")
    assert len(cache) == 1 and cache.get("other", TOKEN, "v1") is not None


def test_expired_entries_of_other_keys_are_swept_on_any_access(key) -> None:
    """A key nobody asks for again does not stay in memory past its age limit."""
    clock = FakeClock()
    cache = UnlockCache(ttl_seconds=60, max_entries=10, clock=clock)
    cache.put("idle", TOKEN, key, b"der", "v1")
    clock.now += 61
    assert cache.get("busy", TOKEN, "v1") is None
    assert len(cache) == 0
