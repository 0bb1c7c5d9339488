"""The optional per-address rate limit."""

from __future__ import annotations

from signserv import contract
from signserv.host.config import load_settings
from signserv.host.home import initialize_home
from signserv.server.app import create_app
from signserv.server.rate_limit import MAX_TRACKED_ADDRESSES, RateLimiter

from ...conftest import FAST_CONFIG


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=2, burst=3, clock=clock)
    assert [limiter.retry_after("a") for _ in range(4)] == [0, 0, 0, 1]
    assert limiter.retry_after("b") == 0, "addresses are independent"
    clock.now += 0.5
    assert limiter.retry_after("a") == 0
    assert limiter.retry_after("a") == 1


def test_memory_is_bounded() -> None:
    limiter = RateLimiter(rate=1, burst=1)
    for number in range(MAX_TRACKED_ADDRESSES + 50):
        limiter.retry_after(f"10.0.{number // 256}.{number % 256}")
    assert len(limiter._buckets) == MAX_TRACKED_ADDRESSES


def test_service_answers_429_with_retry_after(tmp_path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(FAST_CONFIG + "server:\n  rate_limit_per_second: 1\n  rate_limit_burst: 2\n")
    settings = load_settings(tmp_path / "home", config)
    initialize_home(settings)
    client = create_app(settings).test_client()
    answers = [
        client.post(
            "/sign/k",
            data=contract.build_sign_request_body(b"x"),
            headers={"Authorization": "wrong-token-00000000000"},
            environ_base={"REMOTE_ADDR": "192.0.2.7"},
        )
        for _ in range(3)
    ]
    assert [answer.status_code for answer in answers] == [401, 401, 429]
    assert answers[2].headers["Retry-After"] == "1"
    assert answers[2].json["error"] == "rate_limited"
    assert client.get("/healthz", environ_base={"REMOTE_ADDR": "192.0.2.7"}).status_code == 200
