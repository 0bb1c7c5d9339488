"""Brute-force defence: the lock schedule, its bounds, and the HTTP answers."""

from __future__ import annotations

import contextlib
import http.client
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from keystore import crypto
from signserv import contract
from signserv.host.config import Settings, load_settings
from signserv.host.home import initialize_home, open_failure_counters, open_keystore
from signserv.server.app import create_app
from signserv.server.lockout import LockedOut, LockoutGuard, LockoutSettings, attempt_rules

from ...conftest import FAST_CONFIG, make_home

WRONG = "wrong-token-0123456789abcdef"
BODY = contract.build_sign_request_body(b"hello")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


POLICY = LockoutSettings(pair_threshold=3, key_threshold=5, pair_max_seconds=8, key_max_seconds=2)


@pytest.fixture
def guard(settings: Settings, clock: Clock) -> LockoutGuard:
    return LockoutGuard(open_failure_counters(settings), POLICY, clock)


def test_lock_time_doubles_from_the_threshold_and_is_bounded() -> None:
    rules = attempt_rules(POLICY)
    assert [rules.pair.lock_seconds(n) for n in range(1, 9)] == [0, 0, 1, 2, 4, 8, 8, 8]
    assert [rules.key.lock_seconds(n) for n in range(4, 9)] == [0, 1, 2, 2, 2]
    assert rules.pair.lock_seconds(10**6) == 8


def test_pair_is_locked_after_the_threshold_and_unlocks_after_retry_after(guard, clock) -> None:
    for _ in range(3):
        guard.reserve("k", "10.0.0.9")
    with pytest.raises(LockedOut) as locked:
        guard.reserve("k", "10.0.0.9")
    assert locked.value.retry_after == 1
    guard.reserve("k", "10.0.0.1")  # another address is not locked
    clock.now += 1
    guard.reserve("k", "10.0.0.9")


def test_key_wide_lock_reaches_failing_addresses_briefly_and_never_a_clean_one(guard, clock):
    """Many attacking addresses lock the key for addresses that failed, never for the owner."""
    for index in range(12):
        guard.reserve("k", f"10.1.0.{index}")
    with pytest.raises(LockedOut) as locked:
        guard.reserve("k", "10.1.0.1")
    assert locked.value.retry_after <= 2
    guard.reserve("k", "192.0.2.1")  # the owner's clean address is not locked
    guard.succeeded("k", "192.0.2.1")
    clock.now += 2
    guard.reserve("k", "10.1.0.1")


def test_a_slow_distributed_attack_never_locks_the_owner_out(guard, clock) -> None:
    """One failure a minute from rotating addresses, for a day: the owner is never refused."""
    for minute in range(24 * 60):
        clock.now += 60
        guard.reserve("k", f"10.3.{minute // 250}.{minute % 250}")
        guard.reserve("k", "192.0.2.1")
        guard.succeeded("k", "192.0.2.1")


def test_an_owner_typo_older_than_the_window_does_not_let_an_attack_lock_the_owner(
    guard, clock
) -> None:
    """Hostile (issue 17): one old typo, then 8 addresses at one request a second for 90 s."""
    guard.reserve("k", "192.0.2.1")  # the owner's typo, counted as a failure
    clock.now += POLICY.window_seconds + 1
    for second in range(90):
        clock.now += 1
        for attacker in range(8):
            with contextlib.suppress(LockedOut):
                guard.reserve("k", f"10.4.0.{attacker}")
        if second % 10 == 0:
            guard.reserve("k", "192.0.2.1")
            guard.succeeded("k", "192.0.2.1")


def test_success_resets_the_pair(guard, clock) -> None:
    guard.reserve("k", "a")
    guard.reserve("k", "a")
    guard.reserve("k", "a")
    guard.succeeded("k", "a")
    guard.reserve("k", "a")
    guard.reserve("k", "a")
    guard.reserve("k", "a")


@pytest.fixture
def locking_settings(tmp_path) -> Settings:
    config = tmp_path / "c.yaml"
    config.write_text(FAST_CONFIG + "lockout:\n  pair_threshold: 5\n  key_threshold: 1000\n")
    settings = load_settings(tmp_path / "home", config)
    initialize_home(settings)
    return settings


def post(client, token, address):
    return client.post(
        "/sign/admin",
        data=BODY,
        headers={"Authorization": token, "Content-Type": "application/json"},
        environ_base={"REMOTE_ADDR": address},
    )


def test_wrong_tokens_lock_the_address_with_429_and_retry_after(locking_settings) -> None:
    token = "admin-token-0123456789abcdef"
    open_keystore(locking_settings).create_key("admin", token)
    client = create_app(locking_settings).test_client()
    statuses = [post(client, WRONG, "127.0.0.2").status_code for _ in range(8)]
    assert statuses == [401] * 5 + [429] * 3
    locked = post(client, WRONG, "127.0.0.2")
    assert int(locked.headers["Retry-After"]) >= 1
    assert locked.json["error"] == "locked_out"
    assert post(client, token, "127.0.0.1").status_code == 200, "the owner elsewhere still signs"


def test_locked_requests_cost_no_argon2_run(locking_settings, monkeypatch) -> None:
    runs = []
    original = crypto.Argon2Runner.derive
    monkeypatch.setattr(
        crypto.Argon2Runner, "derive", lambda self, *a: runs.append(1) or original(self, *a)
    )
    client = create_app(locking_settings).test_client()
    for _ in range(5):
        post(client, WRONG, "127.0.0.3")
    before = len(runs)
    assert post(client, WRONG, "127.0.0.3").status_code == 429
    assert len(runs) == before


def test_unknown_key_locks_the_same_way(locking_settings) -> None:
    client = create_app(locking_settings).test_client()
    statuses = [post(client, WRONG, "127.0.0.4").status_code for _ in range(6)]
    assert statuses == [401] * 5 + [429]


def http_from(address: str, url: str, method: str, path: str, token: str, body: bytes | None):
    """One request whose TCP connection starts at ``address`` (a second loopback address)."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(
        host, int(port), timeout=10, source_address=(address, 0)
    )
    try:
        headers = {"Authorization": token, "Content-Type": "application/json"}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_fifty_wrong_tokens_from_127_0_0_2_lock_it_out_while_the_owner_signs(
    start_signserv, tmp_path, backend_config
) -> None:
    """The issue's scenario over real HTTP against gunicorn with two workers, on each backend."""
    home = make_home(tmp_path / "lockout", backend_config)
    token = home.create_key("admin")
    service = start_signserv(home)
    statuses = [
        http_from("127.0.0.2", service.url, "POST", "/sign/admin", WRONG, BODY)[0]
        for _ in range(50)
    ]
    assert statuses[:10] == [401] * 10, "the default threshold is 10 consecutive failures"
    assert set(statuses[10:]) == {429}
    status, headers, _ = http_from("127.0.0.2", service.url, "GET", "/keys/admin", WRONG, None)
    assert status == 429 and int(headers["Retry-After"]) >= 1
    for _ in range(4):
        status, _, body = http_from("127.0.0.1", service.url, "POST", "/sign/admin", token, BODY)
        assert status == 200, body


def test_64_concurrent_wrong_tokens_check_no_more_tokens_than_the_threshold(
    start_signserv, tmp_path, backend_config
) -> None:
    """Hostile (issue 17): 64 connections race the lock, round after round; only the threshold
    reaches argon2id.

    A 401 means the token was checked (an argon2id run); a 429 means it was refused before; a
    503 means no cold slot was free (refused before the lock was even consulted), and the
    attacker comes back for it in the next round.
    """
    home = make_home(tmp_path / "race", backend_config)
    token = home.create_key("admin")
    service = start_signserv(home)

    def attack_round() -> list[int]:
        start = threading.Barrier(64)

        def attack(_: int) -> int:
            start.wait(timeout=30)
            status, headers, _ = http_from(
                "127.0.0.3", service.url, "POST", "/sign/admin", WRONG, BODY
            )
            assert status != 503 or headers.get("Retry-After") == "1"
            return status

        with ThreadPoolExecutor(max_workers=64) as pool:
            return list(pool.map(attack, range(64)))

    statuses = attack_round()
    for _ in range(10):  # until every cold slot refusal has been retried
        if 503 not in statuses[-64:]:
            break
        statuses += attack_round()
    assert 503 not in statuses[-64:], "the cold slots kept refusing"
    assert set(statuses) <= {401, 429, 503}
    assert statuses.count(401) == 10, "the default pair threshold"
    status, _, body = http_from("127.0.0.1", service.url, "POST", "/sign/admin", token, BODY)
    assert status == 200, body
