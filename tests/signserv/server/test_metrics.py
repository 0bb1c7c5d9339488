"""/metrics: Prometheus text that parses, and counts what was done, across workers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import requests
from prometheus_client.parser import text_string_to_metric_families

from signserv import contract
from signserv.host.config import load_settings
from signserv.host.home import initialize_home, open_keystore
from signserv.server.app import create_app

from ...conftest import FAST_CONFIG, make_home

BODY = contract.build_sign_request_body(b"hello")
WRONG = "wrong-token-0123456789abcdef"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, by name and labels (parsed by prometheus-client's own parser)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_count_requests_failures_cache_and_lockouts(tmp_path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(FAST_CONFIG + "lockout:\n  pair_threshold: 2\n")
    settings = load_settings(tmp_path / "home", config)
    initialize_home(settings)
    token = "admin-token-0123456789abcdef"
    open_keystore(settings).create_key("admin", token)
    client = create_app(settings).test_client()
    good = {"Authorization": token, "Content-Type": "application/json"}
    for _ in range(3):
        assert client.post("/sign/admin", data=BODY, headers=good).status_code == 200
    bad = {"Authorization": WRONG, "Content-Type": "application/json"}
    statuses = [client.post("/sign/admin", data=BODY, headers=bad).status_code for _ in range(3)]
    assert statuses == [401, 401, 429]

    scraped = samples(client.get("/metrics").get_data(as_text=True))
    assert (
        scraped[("signserv_requests_total", (("endpoint", "/sign/<name>"), ("status", "200")))] == 3
    )
    assert (
        scraped[("signserv_requests_total", (("endpoint", "/sign/<name>"), ("status", "401")))] == 2
    )
    assert scraped[("signserv_auth_failures_total", ())] == 2
    assert scraped[("signserv_lockouts_total", ())] == 1
    assert scraped[("signserv_unlock_cache_total", (("result", "hit"),))] == 2
    # one cold unlock, then the three wrong tokens (the locked one too: lookup comes first)
    assert scraped[("signserv_unlock_cache_total", (("result", "miss"),))] == 4
    assert scraped[("signserv_sign_seconds_count", ())] == 6
    assert scraped[("signserv_keys", ())] == 1


def test_metrics_add_up_across_gunicorn_workers(start_signserv, tmp_path) -> None:
    """Both workers sign (one cold unlock each); every scrape, whichever worker answers, sums both."""
    # 8 first requests at once may land in one worker: as many cold slots as threads, so that
    # none is shed (shedding is test_slow_clients.py's business).
    home = make_home(tmp_path / "metrics", "server:\n  cold_request_slots: 16\n")
    token = home.create_key("admin")
    service = start_signserv(home, workers=2)
    headers = {"Authorization": token, "Content-Type": "application/json"}

    def sign(_: int) -> int:  # a new connection each time, so both workers accept some
        return requests.post(
            f"{service.url}/sign/admin", data=BODY, headers=headers, timeout=10
        ).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert set(pool.map(sign, range(40))) == {200}
    scrapes = [requests.get(f"{service.url}/metrics", timeout=10).text for _ in range(6)]
    for text in scrapes:
        scraped = samples(text)
        key = ("signserv_requests_total", (("endpoint", "/sign/<name>"), ("status", "200")))
        assert scraped[key] == 40, "every worker's scrape reports all workers' requests"
        assert scraped[("signserv_sign_seconds_count", ())] == 40
        assert scraped[("signserv_unlock_cache_total", (("result", "miss"),))] == 2, (
            "one cold unlock in each of the two workers: both are counted"
        )
        assert scraped[("signserv_unlock_cache_total", (("result", "hit"),))] == 38
